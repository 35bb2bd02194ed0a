"""Stand-in of rclpy.qos: profiles and the policies the node sets."""
from __future__ import annotations

from enum import IntEnum
from typing import Any


class HistoryPolicy(IntEnum):
    SYSTEM_DEFAULT, KEEP_LAST, KEEP_ALL, UNKNOWN = 0, 1, 2, 3


class ReliabilityPolicy(IntEnum):
    SYSTEM_DEFAULT, RELIABLE, BEST_EFFORT, UNKNOWN = 0, 1, 2, 3


class QoSProfile:
    __slots__ = ["history", "depth", "reliability"]

    def __init__(self, **kwargs: Any) -> None:
        assert set(kwargs) <= set(self.__slots__), f"Invalid arguments passed to constructor: {kwargs.keys()}"
        assert "history" in kwargs or "depth" in kwargs, "QoSProfile needs a history or a depth"
        self.history = HistoryPolicy(kwargs.get("history", HistoryPolicy.KEEP_LAST))
        self.depth = int(kwargs.get("depth", 0))
        self.reliability = ReliabilityPolicy(kwargs.get("reliability", ReliabilityPolicy.RELIABLE))

    def copy(self) -> QoSProfile:
        return QoSProfile(history=self.history, depth=self.depth, reliability=self.reliability)
