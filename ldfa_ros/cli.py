"""The `ldfa` command: anonymize images, bags and streams, detect faces, evaluate, benchmark."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from .settings import METHODS, Settings, SettingsError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# Modules that add their own subcommands with `add_commands(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = ("ldfa_ros.images",)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """The anonymization options shared by every command that anonymizes."""
    d = Settings()
    group = parser.add_argument_group("anonymization")
    group.add_argument("--method", choices=METHODS, default=d.method, help=f"how faces are hidden (default {d.method})")
    group.add_argument("--threshold", type=float, default=d.threshold,
                       help=f"detector score threshold (default {d.threshold})")
    group.add_argument("--scales", type=float, nargs="+", default=list(d.scales),
                       help="detector passes as scale factors, e.g. 1 2 to also find faces half as large "
                            f"(default {' '.join(map(str, d.scales))})")
    group.add_argument("--flip", action="store_true", help="also detect on the mirrored frame (higher recall)")
    group.add_argument("--mask-scale", type=float, default=d.mask_scale,
                       help=f"face box dilation before hiding (default {d.mask_scale})")
    group.add_argument("--shape", choices=("ellipse", "box"), default=d.shape, help="region shape")
    group.add_argument("--carry-frames", type=int, default=d.carry_frames,
                       help=f"frames a face stays hidden after it was last detected (default {d.carry_frames})")
    group.add_argument("--on-error", choices=("blur", "drop"), default=d.on_error,
                       help="what a frame becomes when any stage fails (default: blurred whole)")
    group.add_argument("--device", choices=("cpu", "cuda", "tensorrt"), default=d.device,
                       help="detector runtime (default cpu)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the shared options, validated."""
    return Settings().updated(
        method=args.method, threshold=args.threshold, scales=tuple(args.scales), flip=args.flip,
        mask_scale=args.mask_scale, shape=args.shape, carry_frames=args.carry_frames,
        on_error=args.on_error, device=args.device,
    )


def image_paths(inputs: Sequence[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(file, path relative to its input root) for image files given directly or inside directories;
    and the inputs that do not exist."""
    found: list[tuple[Path, Path]] = []
    missing: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [(p, p.relative_to(path)) for p in sorted(path.rglob("*"))
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            missing.append(item)
    return found, missing


def progress(items: Sequence[Any], desc: str, unit: str) -> Any:
    """A progress bar on stderr when there are many items."""
    return tqdm(items, desc=desc, unit=unit, disable=len(items) < 2, file=sys.stderr, dynamic_ncols=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ldfa", description="Anonymize faces in camera images, ROS bags and live ROS 2 streams.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every fallback and failure")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (SettingsError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"ldfa {args.command}: error: {exc}", file=sys.stderr)
        return 2


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, creating the parent folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
