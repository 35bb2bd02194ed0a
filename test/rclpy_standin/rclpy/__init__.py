"""Stand-in of rclpy's module functions (tests only; see test/rclpy_standin/README.md)."""
from __future__ import annotations

from typing import Any

from standin import BUS


def init(*, args: list[str] | None = None, **_: Any) -> None:
    assert not BUS.initialized, "rclpy.init called twice"
    BUS.initialized = True


def spin(node: Any, executor: Any = None) -> None:
    """The real one blocks until shutdown; the stand-in runs what the test put in BUS.on_spin."""
    BUS.on_spin(node)


def ok() -> bool:
    return BUS.initialized


def try_shutdown() -> None:
    if BUS.initialized:
        BUS.initialized = False
        BUS.shutdowns += 1


def shutdown() -> None:
    assert BUS.initialized, "rclpy.shutdown called without init"
    try_shutdown()
