"""Plan: which method hides each face of this tick, within the latency budget."""
from __future__ import annotations

from dataclasses import dataclass

from .track import Face


@dataclass(frozen=True)
class Decision:
    """The method chosen for one face and why (kept in the frame's record)."""

    method: str
    reason: str


class Planner:
    """Chooses each face's method. Classic methods cost little and are always applied as configured."""

    def plan(self, method: str, faces_per_frame: list[list[Face]], remaining_ms: float | None) -> list[list[Decision]]:
        """Decisions for every face of every frame of the tick; `remaining_ms` is None without a budget."""
        return [[Decision(method, "configured") for _ in faces] for faces in faces_per_frame]
