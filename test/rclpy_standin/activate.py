"""Put the stand-in in front of sys.path for a block of code and take it away afterwards, so the
rest of the test session (and any real or intellisense-only rclpy on the path) is unaffected."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent
PACKAGES = ("standin", "rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "builtin_interfaces",
            "diagnostic_msgs", "vision_msgs", "geometry_msgs")
ADAPTERS = ("ldfa_ros.node",)  # modules bound to whichever rclpy was imported first


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES or name in ADAPTERS


@contextlib.contextmanager
def standin_imports() -> Iterator[None]:
    saved = {name: module for name, module in sys.modules.items() if _ours(name)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(ROOT))
    try:
        yield
    finally:
        sys.path.remove(str(ROOT))
        for name in [n for n in sys.modules if _ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
