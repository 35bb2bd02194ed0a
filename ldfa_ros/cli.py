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

from .settings import OFFLINE_PRESET, Settings, SettingsError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}  # what the frames codec reads (PNG, JPEG)
# Modules that add their own subcommands with `add_commands(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = ("ldfa_ros.images", "ldfa_ros.bag", "ldfa_ros.eval.cli", "ldfa_ros.render.models")


def add_settings_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """The anonymization options shared by every command that anonymizes, one per `Settings` field
    (less those a command defines its own way, e.g. `ldfa eval --method` takes a list)."""
    group = parser.add_argument_group("anonymization")
    for row in Settings.describe():
        if row["name"] in exclude:
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
