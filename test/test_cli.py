"""The `ldfa` command as a user runs it: image, detect, demo, help and errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def test_detect_never_replaces_an_existing_file_unless_told(inputs, tmp_path, capsys):
    target = tmp_path / "notes.json"
    target.write_text("mine")
    assert main(["detect", str(inputs / "face.png"), "--json", str(target)]) == 2
    assert target.read_text() == "mine"
    assert "notes.json exists" in capsys.readouterr().err
    assert main(["detect", str(inputs / "face.png"), "--json", str(target), "--overwrite"]) == 0
    assert list(json.loads(target.read_text())) == [str(inputs / "face.png")]


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


def digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_image_output_must_not_be_in_or_around_an_input(inputs, tmp_path, capsys, where):
    before = digest(inputs)
    out = {"same": inputs, "inside": inputs / "anon", "containing": inputs.parent}[where]
    assert main(["image", str(inputs), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "must not be, contain or lie inside the input" in err and len(err.strip().splitlines()) == 1
    assert digest(inputs) == before and not (inputs / "anon").exists()


def test_image_refuses_to_write_over_an_input_file(inputs, capsys):
    before = digest(inputs)
    assert main(["image", str(inputs / "face.png"), "-o", str(inputs)]) == 2
    assert "would replace the input" in capsys.readouterr().err and digest(inputs) == before


def test_image_name_collisions_across_inputs_are_refused(tmp_path, astronaut, capsys):
    for cam in ("front", "rear"):
        (tmp_path / "cams" / cam).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "cams" / cam / "000001.jpg"), astronaut)
    out = tmp_path / "out"
    assert main(["image", str(tmp_path / "cams" / "front"), str(tmp_path / "cams" / "rear"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "front/000001.jpg and" in err and "rear/000001.jpg would both be written" in err and not out.exists()
    assert main(["image", str(tmp_path / "cams"), "-o", str(out)]) == 0, "relative paths under one root differ"
    assert {p.name for p in out.iterdir()} == {"front", "rear", "ldfa_summary.json"}


def test_image_existing_outputs_need_overwrite_and_must_be_ldfas(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "face.png").write_bytes(b"a user's own file")
    assert main(["image", str(inputs / "face.png"), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["image", str(inputs / "face.png"), "-o", str(out), "--overwrite"]) == 2
    assert "not listed" in capsys.readouterr().err and (out / "face.png").read_bytes() == b"a user's own file"
    (out / "face.png").unlink()
    assert main(["image", str(inputs / "face.png"), "-o", str(out)]) == 0
    assert main(["image", str(inputs / "face.png"), "-o", str(out), "--overwrite"]) == 0, "ldfa's own output"
    assert cv2.imread(str(out / "face.png")) is not None


@pytest.mark.parametrize("files", [[], ["a.bmp", "b.tif", "c.webp"]])
def test_image_nothing_to_do(tmp_path, capsys, files):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in files:
        (folder / name).write_bytes(b"pixels")
    assert main(["image", str(folder), "-o", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "nothing to do" in err and ("skipped 3 file(s)" in err) == bool(files)
    assert not (tmp_path / "out").exists()


def test_image_read_only_output_folder_is_one_line(inputs, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(out)],
                                                   capture_output=True).returncode == 0
    if not mounted:
        out.chmod(0o555)
    try:
        done = subprocess.run([sys.executable, "-m", "ldfa_ros.cli", "image", str(inputs), "-o", str(out)],
                              capture_output=True, text=True)
    finally:
        subprocess.run(["umount", str(out)], check=True) if mounted else out.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert "cannot write the output folder" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_image_ctrl_c_leaves_only_whole_files(tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(40):
        cv2.imwrite(str(folder / f"{i:03d}.png"), astronaut)
    out = tmp_path / "out"
    # Ctrl-C's default action even where this test runs in a background job, whose children inherit SIGINT ignored
    child = subprocess.Popen([sys.executable, "-m", "ldfa_ros.cli", "image", str(folder), "-o", str(out)],
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while not (out.is_dir() and list(out.glob("*.png"))) and child.poll() is None:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    written = sorted(out.glob("*.png"))
    assert 0 < len(written) < 40
    assert all(cv2.imread(str(p)) is not None for p in written), "every file left is whole"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary files left"
    listed = json.loads((out / "ldfa_summary.json").read_text())["images"]
    assert {Path(v["output"]).name for v in listed.values()} == {p.name for p in written}


def test_each_command_offers_only_the_options_it_uses(inputs, tmp_path, capsys):
    for argv in (["detect", str(inputs), "--json", "x.json", "--method", "ldfa"],
                 ["detect", str(inputs), "--json", "x.json", "--steps", "4"],
                 ["image", str(inputs), "-o", "x", "--carry-frames", "3"],
                 ["models", "check", "--threshold", "0.3"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err, argv
    assert build_parser().parse_args(["bag", "in", "-o", "out", "--carry-frames", "3"]).carry_frames == 3


def test_ldfa_node_without_ros_is_one_line():
    code = "import sys; sys.modules['rclpy'] = None; from ldfa_ros.cli import node_main; node_main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "ROS 2 (rclpy) is not available" in done.stderr
