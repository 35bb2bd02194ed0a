"""What a renderer receives: one frame's faces to hide. It lives with the renderers so that render/
never imports pipeline.py (the data flows one way: pipeline.py builds jobs, render/ consumes them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

from .regions import Region

if TYPE_CHECKING:
    from ..track import Face


@dataclass
class RenderJob:
    """One frame's faces for one renderer; `image` is the frame's output copy, changed in place.
    `deadline` (a `time.perf_counter()` instant, None without a budget) is when the frame is due;
    `hidden` holds all face regions of the frame, which a generative renderer must not show its model."""

    image: np.ndarray
    stream: str
    faces: list[Face]
    regions: list[Region]
    deadline: float | None = None
    hidden: list[Region] = field(default_factory=list)  # every face region of the frame, whatever its method


class Renderer(Protocol):
    """Hides faces. One call takes the faces of many frames, so a GPU renderer can batch them."""

    def render(self, jobs: Sequence[RenderJob]) -> None: ...
