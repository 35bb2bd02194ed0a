"""Stand-in of rclpy.qos_overriding_options."""
from __future__ import annotations

from typing import Any

POLICIES = ("history", "depth", "reliability")


class QoSOverridingOptions:
    def __init__(self, policy_kinds: tuple[str, ...], *, callback: Any = None, entity_id: str | None = None) -> None:
        self.policy_kinds, self.callback, self.entity_id = policy_kinds, callback, entity_id

    @classmethod
    def with_default_policies(cls, *, callback: Any = None, entity_id: str | None = None) -> QoSOverridingOptions:
        return cls(POLICIES, callback=callback, entity_id=entity_id)
