"""Stand-in of rclpy.publisher.Publisher: publish() records the message on the bus."""
from __future__ import annotations

from typing import Any

from standin import BUS


class Publisher:
    def __init__(self, msg_type: Any, topic: str, qos_profile: Any) -> None:
        self.msg_type, self.topic, self.qos_profile = msg_type, topic, qos_profile

    @property
    def topic_name(self) -> str:
        return self.topic

    def publish(self, msg: Any) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(f"Expected {self.msg_type.__name__}, got {type(msg).__name__}")
        with BUS.lock:
            BUS.published[self.topic].append(msg)
