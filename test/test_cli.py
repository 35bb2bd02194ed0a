"""The `ldfa` command as a user runs it: image, detect, demo, help and errors."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from ldfa_ros.cli import build_parser, main
from ldfa_ros.detect import iou_matrix


@pytest.fixture()
def inputs(tmp_path, astronaut):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    bgr = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "face.png"), bgr)
    cv2.imwrite(str(folder / "sub" / "face.jpg"), bgr)
    cv2.imwrite(str(folder / "grey.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def test_image_anonymizes_keeps_names_formats_and_reports_failures(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["image", str(inputs), str(tmp_path / "missing.png"), "-o", str(out)])
    assert code == 1, "an unreadable and a missing input make the exit code say so"
    err = capsys.readouterr().err
    assert "broken.png" in err and "missing.png" in err
    summary = json.loads((out / "ldfa_summary.json").read_text())
    assert set(summary["failed"]) == {str(inputs / "broken.png"), str(tmp_path / "missing.png")}
    raw = cv2.imread(str(inputs / "face.png"))
    png = cv2.imread(str(out / "face.png"), cv2.IMREAD_UNCHANGED)
    assert png.shape == raw.shape
    changed = np.any(png != raw, axis=2)
    x1, y1, x2, y2 = ASTRONAUT_FACE.astype(int)
    assert changed[y1:y2, x1:x2].mean() > 0.9
    assert changed.mean() < 0.15, "PNG: pixels outside the face are bit-identical"
    assert (out / "sub" / "face.jpg").is_file()
    assert cv2.imread(str(out / "grey.png"), cv2.IMREAD_UNCHANGED).ndim == 2, "grey stays grey"
    record = summary["images"][str(inputs / "face.png")]
    assert record["faces"][0]["method"] == "blur"


def test_detect_writes_raw_boxes_keyed_by_path_as_given(inputs, tmp_path):
    target = tmp_path / "boxes.json"
    given = str(inputs / "face.png")
    assert main(["detect", given, "--json", str(target)]) == 0
    boxes = json.loads(target.read_text())
    assert list(boxes) == [given]
    (row,) = boxes[given]
    assert len(row) == 5 and 0 < row[4] <= 1
    assert iou_matrix(np.array([row[:4]]), ASTRONAUT_FACE)[0, 0] > 0.6


def test_demo_writes_viewable_output(tmp_path):
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    for name in ("astronaut.png", "street_1080p.png"):
        pair = cv2.imread(str(tmp_path / "demo" / f"before_after_{name}"))
        assert pair is not None and pair.shape[1] % 2 == 0
    summary = json.loads((tmp_path / "demo" / "anonymized" / "ldfa_summary.json").read_text())
    assert sum(len(v["faces"]) for v in summary["images"].values()) >= 4


def test_every_command_has_complete_help():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - walk the real parser
    for name, sub in commands.items():
        text = sub.format_help()
        assert sub.description, f"ldfa {name} has no description"
        for action in sub._actions:  # noqa: SLF001
            assert action.help, f"ldfa {name}: option {action.option_strings or action.dest} undocumented"
        assert "usage: ldfa" in text


def test_bad_option_value_is_a_clear_error(inputs, tmp_path, capsys):
    assert main(["image", str(inputs / "face.png"), "-o", str(tmp_path / "o"), "--threshold", "3"]) == 2
    assert "threshold must be within" in capsys.readouterr().err


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "ldfa_ros.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "image" in result.stdout
