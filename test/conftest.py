"""Shared fixtures: real faces (the astronaut photo, and WIDER FACE dev images where present)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ros_env import ros_domain  # noqa: F401 - the fixture of tests that start ROS 2 nodes

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ASTRONAUT_FACE = np.array([181.0, 58.0, 270.0, 178.0])  # the face box in skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def detector():
    from ldfa_ros.detect import CenterFace

    return CenterFace()


@pytest.fixture(scope="session")
def faces_dev() -> tuple[Path, list[dict]]:
    """The labelled WIDER FACE dev set in ../shared/data (CI has it; a user's machine may not)."""
    root = SHARED_DATA / "faces-dev"
    if not (root / "labels.json").is_file():
        pytest.skip(f"labelled dev set not present at {root}")
    return root, json.loads((root / "labels.json").read_text())
