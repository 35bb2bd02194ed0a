"""The `ldfa` command: anonymize images, bags and streams, detect faces, evaluate, benchmark."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from .settings import OFFLINE_PRESET, Settings, SettingsError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}  # what the frames codec reads (PNG, JPEG)
# Modules that add their own subcommands with `add_commands(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = ("ldfa_ros.images", "ldfa_ros.bag", "ldfa_ros.eval.cli", "ldfa_ros.render.models",
                                    "ldfa_ros.fleet")


# The `Settings` fields by the stage that reads them, so each command offers only the options it uses.
DETECT_OPTIONS = ("preset", "threshold", "scales", "flip", "device")
HIDE_OPTIONS = ("mask_scale", "shape", "feather", "method", "on_error", "budget_ms")
DIFFUSION_OPTIONS = ("model", "lora", "tiny_vae", "scheduler", "steps", "resolution", "prompt", "negative_prompt",
                     "guidance", "seed", "diffusion_device", "latency_file")
IMAGE_OPTIONS = DETECT_OPTIONS + HIDE_OPTIONS + DIFFUSION_OPTIONS  # one file at a time: nothing to carry
STREAM_OPTIONS = IMAGE_OPTIONS + ("carry_frames",)  # frames in sequence: faces carried between them


def add_settings_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = (),
                           only: tuple[str, ...] = STREAM_OPTIONS) -> None:
    """One option per `Settings` field the command uses (`only`), less those it defines its own way
    (`exclude`, e.g. `ldfa eval --method` takes a list)."""
    group = parser.add_argument_group("anonymization")
    for row in Settings.describe():
        if row["name"] in exclude or row["name"] not in only:
            continue
        flag = "--" + row["name"].replace("_", "-")
        default = row["default"]
        text = f"{row['description']} (default {OFFLINE_PRESET if row['name'] == 'preset' else default})"
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif isinstance(default, tuple):
            group.add_argument(flag, type=float, nargs="+", default=None, help=text)
        else:
            group.add_argument(flag, type=type(default), choices=row["choices"], default=None, help=text)


def settings_from_args(args: argparse.Namespace, preset: str = OFFLINE_PRESET) -> Settings:
    """Settings from the shared options (only those given), validated; offline commands take the
    high-recall `preset` unless told otherwise."""
    given = {row["name"]: getattr(args, row["name"], None) for row in Settings.describe()}
    given["preset"] = given["preset"] or preset
    return Settings().updated(**{k: v for k, v in given.items() if v is not None})


def at_least(low: float, kind: type = int, strict: bool = False) -> Callable[[str], Any]:
    """An argparse `type` that parses `kind` and refuses values below `low` (or equal to it, `strict`)."""
    def parse(text: str) -> Any:
        value = kind(text)
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {'more than' if strict else 'at least'} {low}, got {text}")
        return value
    return parse


def image_paths(inputs: Sequence[str]) -> tuple[list[tuple[Path, Path]], list[str], list[Path]]:
    """(file, path relative to its input root) for image files given directly or inside directories;
    the inputs that do not exist; and the files inside directories that are not images we read."""
    found: list[tuple[Path, Path]] = []
    missing: list[str] = []
    skipped: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if not p.is_file() or p.name.startswith(".ldfa-"):
                    continue
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    found.append((p, p.relative_to(path)))
                else:
                    skipped.append(p)
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            missing.append(item)
    return found, missing, skipped


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
    except OSError as exc:  # a write the command did not expect to fail: full disk, read-only folder
        print(f"ldfa {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ldfa {args.command}: interrupted", file=sys.stderr)
        return 130


def node_main() -> None:
    """Entry point of `ldfa_node`: the ROS 2 node (its exit status passed on), or one line saying ROS 2
    is missing."""
    try:
        from .node import main as run_node
    except ImportError as exc:
        sys.exit(f"ldfa_node: error: ROS 2 (rclpy) is not available ({exc}); source your ROS 2 setup "
                 "(e.g. /opt/ros/jazzy/setup.bash) and run it with `ros2 run ldfa_ros ldfa_node`")
    sys.exit(run_node())


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, creating the parent folder; atomically, so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.ldfa-tmp-{os.getpid()}")
    try:
        partial.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
