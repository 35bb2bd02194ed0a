"""Plan: which method hides each face of this tick, within the latency budget.

Diffusion costs tens of milliseconds per batched call; blur costs well under one. A latency model
learnt from the renderer's own measured calls predicts what inpainting N faces will cost; the
planner gives diffusion to as many faces as fit the time left (largest faces first, where a
realistic replacement matters most) and blur to the rest. A wrong prediction is safe: the renderer
aborts when it sees it will overrun, and the pipeline blurs those faces.
"""
from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from .track import Face

log = logging.getLogger("ldfa_ros")

BUCKETS = (1, 2, 4, 8)  # batch sizes the diffusion renderer is called with, so shapes repeat


@dataclass(frozen=True)
class Decision:
    """The method chosen for one face and why (kept in the frame's record)."""

    method: str
    reason: str


class DeadlineExceeded(RuntimeError):
    """A renderer stopped because it would finish after the frame's deadline; its faces get blur.

    `projected_ms` is what the whole call was heading for: the latency model learns it.
    """

    def __init__(self, message: str, projected_ms: float) -> None:
        super().__init__(message)
        self.projected_ms = projected_ms


def batches(faces: int, buckets: Sequence[int] = BUCKETS) -> list[int]:
    """Bucket sizes of the calls that render `faces` faces: full calls of the largest bucket, then
    the smallest bucket that holds the rest (padded)."""
    largest = max(buckets)
    sizes = [largest] * (faces // largest)
    rest = faces % largest
    if rest:
        sizes.append(min(b for b in buckets if b >= rest))
    return sizes


class LatencyModel:
    """Milliseconds per renderer call, learnt per (batch bucket, resolution) from measured calls.

    The prediction is a high percentile of a recent window ("lower" interpolation: with few samples
    one slow outlier, such as a first CUDA call, does not dominate; with many it is a true p90).
    A bucket never measured is bounded from a measured neighbour at the same resolution.
    """

    def __init__(self, window: int = 32, quantile: float = 90.0) -> None:
        if window < 1 or not 0 <= quantile <= 100:
            raise ValueError(f"latency window must be >= 1 and quantile within [0, 100], got {window}, {quantile}")
        self.window = window
        self.quantile = quantile
        self._samples: dict[tuple[int, int], deque[float]] = {}

    def observe(self, bucket: int, resolution: int, ms: float) -> None:
        """Record one measured call."""
        key = (bucket, resolution)
        if key not in self._samples:
            self._samples[key] = deque(maxlen=self.window)
        self._samples[key].append(float(ms))

    def counts(self) -> dict[tuple[int, int], int]:
        """How many calls are remembered per (bucket, resolution)."""
        return {key: len(samples) for key, samples in self._samples.items()}

    def predict(self, bucket: int, resolution: int) -> float | None:
        """Expected ms of one call, or None when nothing at this resolution was measured yet."""
        samples = self._samples.get((bucket, resolution))
        if samples:
            return float(np.percentile(list(samples), self.quantile, method="lower"))
        measured = sorted(b for b, r in self._samples if r == resolution)
        if not measured:
            return None
        above = [b for b in measured if b > bucket]
        if above:  # a smaller batch never costs more than a larger one
            return self.predict(above[0], resolution)
        below = measured[-1]  # linear in batch size: an upper bound, batching is sub-linear
        ms = self.predict(below, resolution)
        return None if ms is None else ms * bucket / below

    def cost(self, faces: int, resolution: int, buckets: Sequence[int] = BUCKETS) -> float | None:
        """Expected ms to render `faces` faces in bucketed calls; None when unknown."""
        total = 0.0
        for size in batches(faces, buckets):
            ms = self.predict(size, resolution)
            if ms is None:
                return None
            total += ms
        return total

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "quantile": self.quantile,
                "samples": [{"bucket": b, "resolution": r, "ms": [round(v, 3) for v in s]}
                            for (b, r), s in sorted(self._samples.items())]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> LatencyModel:
        model = LatencyModel(int(data["window"]), float(data["quantile"]))
        for row in data["samples"]:
            for ms in row["ms"]:
                model.observe(int(row["bucket"]), int(row["resolution"]), float(ms))
        return model

    def save(self, path: Path, signature: dict[str, Any]) -> None:
        """Persist the table with what it was measured on (model, steps, device...)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"signature": signature, **self.to_json()}, indent=1) + "\n")

    @staticmethod
    def load(path: Path, signature: dict[str, Any]) -> LatencyModel | None:
        """The table saved at `path` if it was measured with the same `signature`, else None."""
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("signature") != signature:
                log.info("latency table %s was measured with other settings; measuring again", path)
                return None
            return LatencyModel.from_json(data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("latency table %s is unreadable (%s); measuring again", path, exc)
            return None


def face_size(face: Face) -> float:
    """The larger side of a face box, in pixels."""
    x1, y1, x2, y2 = (float(v) for v in face.box[:4])
    return max(x2 - x1, y2 - y1)


class Planner:
    """Chooses each face's method.

    Classic methods cost little and are applied as configured. For `ldfa` and `auto`,
    `diffusion_cost(n)` (ms to inpaint n faces, None when unknown) decides how many faces fit the
    time left; without it, diffusion is unavailable (weights or packages missing) and `auto` blurs.
    """

    def __init__(self, diffusion_cost: Callable[[int], float | None] | None = None) -> None:
        self.diffusion_cost = diffusion_cost

    def plan(self, method: str, faces_per_frame: list[list[Face]], remaining_ms: float | None) -> list[list[Decision]]:
        """Decisions for every face of every frame of the tick; `remaining_ms` is None without a budget."""
        if method not in ("ldfa", "auto"):
            return [[Decision(method, "configured") for _ in faces] for faces in faces_per_frame]
        if self.diffusion_cost is None:
            chosen = Decision("blur", "auto: ldfa unavailable") if method == "auto" else None
            return [[chosen or Decision("ldfa", "configured") for _ in faces] for faces in faces_per_frame]
        if remaining_ms is None:
            return [[Decision("ldfa", "no budget") for _ in faces] for faces in faces_per_frame]
        order = sorted(((i, j) for i, faces in enumerate(faces_per_frame) for j in range(len(faces))),
                       key=lambda ij: -face_size(faces_per_frame[ij[0]][ij[1]]))
        fit, fit_reason = self._fit(len(order), remaining_ms)
        over = self._over_reason(fit + 1, remaining_ms) if fit < len(order) else ""
        plans = [[Decision("blur", over) for _ in faces] for faces in faces_per_frame]
        for i, j in order[:fit]:
            plans[i][j] = Decision("ldfa", fit_reason)
        return plans

    def _fit(self, faces: int, remaining_ms: float) -> tuple[int, str]:
        """The most faces whose predicted cost fits `remaining_ms`, and the reason to record."""
        assert self.diffusion_cost is not None
        for n in range(faces, 0, -1):
            cost = self.diffusion_cost(n)
            if cost is None:
                return n, "within budget: no timing measured yet"
            if cost <= remaining_ms:
                return n, f"within budget: {n} face(s) ~{cost:.0f} ms of {remaining_ms:.0f} ms left"
        return 0, ""

    def _over_reason(self, faces: int, remaining_ms: float) -> str:
        assert self.diffusion_cost is not None
        cost = self.diffusion_cost(faces)
        return f"over budget: ldfa for {faces} face(s) ~{cost or 0:.0f} ms > {max(remaining_ms, 0):.0f} ms left"
