"""Packaging of the node: launch files, config, package.xml, entry point and the README table, and the
vehicle engineer's path on a real ROS 2 Jazzy: colcon build, `ros2 launch`, real cameras, Ctrl-C.

The pure-Python parts (in ldfa_ros.node_config and ldfa_ros.record) are tested always; the rest needs
the runtime `scripts/ros_setup.sh` installs (launch_ros, colcon, vision_msgs from ../shared/ros2) and skips,
saying so, where it is missing.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ldfa_ros import node_config
from ldfa_ros.node_config import effective_parameters, launch_overrides, parameters_from_file, split_list

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
ROS_RUNTIME = all(importlib.util.find_spec(m) for m in ("rclpy", "launch_ros", "vision_msgs")) and bool(
    shutil.which("colcon", path=os.path.dirname(sys.executable)))
needs_ros = pytest.mark.skipif(not ROS_RUNTIME, reason="no ROS 2 launch runtime in this Python (rclpy, launch_ros, "
                               "vision_msgs, colcon): scripts/ros_setup.sh VENV installs it from ../shared/ros2")
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "diagnostic_msgs", "vision_msgs", "launch",
                "launch_ros", "ament_index_python"}


def test_config_file_lists_every_parameter_at_its_default() -> None:
    assert parameters_from_file(ROOT / "config" / "ldfa.yaml") == {s.name: s.default for s in node_config.parameters()}


def test_readme_section_has_the_generated_parameter_table() -> None:
    assert node_config.markdown_table() in (ROOT / "README.md").read_text()


def test_package_xml_is_valid_and_declares_what_the_node_imports() -> None:
    catkin = pytest.importorskip("catkin_pkg.package")
    package = catkin.parse_package(str(ROOT / "package.xml"))
    package.validate()
    depends = {d.name for d in package.exec_depends}
    imported = set()
    for path in [ROOT / "ldfa_ros" / "node.py", *LAUNCH_FILES]:
        for stmt in ast.walk(ast.parse(path.read_text())):
            if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
                imported.add(stmt.module.split(".")[0])
            elif isinstance(stmt, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in stmt.names)
    assert imported & ROS_PACKAGES <= depends
    assert "ros2bag" in depends  # record.launch.py runs `ros2 bag record`


def test_console_script_is_where_ros2_run_looks() -> None:
    assert '"ldfa_node = ldfa_ros.cli:node_main"' in (ROOT / "setup.py").read_text()
    assert "install_scripts=$base/lib/ldfa_ros" in (ROOT / "setup.cfg").read_text()


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_use_existing_helpers(path: Path) -> None:
    """Every name a launch file takes from ldfa_ros exists (they cannot be imported here)."""
    tree = ast.parse(path.read_text(), str(path))
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith("ldfa_ros"):
            module = importlib.import_module(stmt.module)
            for alias in stmt.names:
                assert hasattr(module, alias.name), f"{path.name}: {stmt.module}.{alias.name} does not exist"
    assert any(isinstance(f, ast.FunctionDef) and f.name == "generate_launch_description" for f in tree.body)


@needs_ros
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_descriptions_build(path: Path, ros, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the package installed by colcon (the launch file finds config/ in its share directory)."""
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{ros[2].parent / 'ldfa_ros'}:{sys.prefix}")
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities


def test_split_list() -> None:
    assert split_list(" /a, /b  /c,,") == ["/a", "/b", "/c"] and split_list("") == []


def test_launch_overrides_convert_text_to_parameter_types() -> None:
    assert launch_overrides({"cameras": "/a/image_raw,/b/image_raw/compressed", "method": "pixelate",
                             "budget_ms": "80", "publish_detections": "True", "record_path": "",
                             "output_suffix": " "}) == {
        "cameras": ["/a/image_raw", "/b/image_raw/compressed"], "method": "pixelate", "budget_ms": 80.0,
        "publish_detections": True}
    assert launch_overrides({"scales": "1 2", "carry_frames": "7"}) == {"scales": [1.0, 2.0], "carry_frames": 7}
    with pytest.raises(ValueError, match="publish_detections"):
        launch_overrides({"publish_detections": "yes"})
    with pytest.raises(ValueError, match="budget_ms"):
        launch_overrides({"budget_ms": "fast"})
    with pytest.raises(ValueError, match="bag"):
        launch_overrides({"bag": "x"})


def test_frame_sizes_are_width_by_height_and_bad_ones_are_named() -> None:
    sizes = launch_overrides({"frame_sizes": "1920x1080, 1280x720"})["frame_sizes"]
    assert node_config.frame_sizes(sizes) == [(1080, 1920), (720, 1280)]
    assert node_config.frame_sizes(["640X480"]) == [(480, 640)]
    for bad, expected in ((["1920*1080"], "'1920\\*1080' is not WIDTHxHEIGHT"), (["0x720"], "'0x720'"),
                          ([], "non-empty"), ("1920x1080", "non-empty list")):
        with pytest.raises(ValueError, match=expected):
            node_config.frame_sizes(bad)


def test_effective_parameters_layer_defaults_file_and_overrides(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters:\n    method: mask\n    output_suffix: anon\n"
                      "/car/ldfa_node:\n  ros__parameters:\n    publish_detections: true\n"
                      "other_node:\n  ros__parameters:\n    method: ldfa\n")
    values = effective_parameters(params, {"cameras": ["/x/image"]})
    assert (values["method"], values["output_suffix"], values["publish_detections"], values["cameras"]) == (
        "mask", "anon", True, ["/x/image"])
    assert values["threshold"] == 0.2
    params.write_text("- not a params file\n")
    with pytest.raises(ValueError, match="params file"):
        parameters_from_file(params)


# --- the vehicle engineer's path on real ROS 2 ---------------------------------------------------------------

CAMERAS = ["/cam_front/image_raw", "/cam_rear/image_raw/compressed"]
OUTPUTS = ["/cam_front/image_raw/anonymized", "/cam_rear/image_raw/anonymized/compressed"]


@pytest.fixture(scope="module")
def ros(tmp_path_factory: pytest.TempPathFactory):
    """A colcon workspace with this package built, and the loopback-only DDS environment of this test run."""
    if not ROS_RUNTIME:
        pytest.skip(needs_ros.kwargs["reason"])
    import ros_peers

    env = ros_peers.ros_env(50 + os.getpid() % 50)
    setup_bash = ros_peers.build_workspace(tmp_path_factory.mktemp("ws"), env)
    return ros_peers, env, setup_bash


def _run_with_cameras(ros, tmp: Path, launch: str, min_frames: int = 3, topics: list[str] = OUTPUTS,
                      reliable: bool = False, presses: int = 1) -> tuple:
    """Cameras and a listener as processes, then `ros2 launch ...` from the built workspace; Ctrl-C once every
    output topic had MIN_FRAMES. `reliable`: cameras and listener reliable (then the launch must make the
    node's subscriptions reliable too, as the README advises for raw frames: best-effort loses most raw
    frames on a loaded machine). `presses`: Ctrl-C pressed that many times. Returns (exit code, launch
    output, listener report)."""
    peers, env, setup_bash = ros
    qos = ["--reliable"] if reliable else []
    cameras = [peers.peer("camera", None, [topic], env, tmp / f"camera{i}.log", "--rate", "5", *qos)
               for i, topic in enumerate(CAMERAS)]
    listener = peers.peer("listen", tmp / "listen.json", topics, env, tmp / "listen.log", *qos)
    process = peers.start(launch, env, tmp / "launch.log", setup_bash)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            report = peers.read_json(tmp / "listen.json").get("topics", {})
            if report and all(report[t]["frames"] >= min_frames for t in topics):
                break
            time.sleep(1)
        code = peers.interrupt(process, presses=presses)
    finally:
        for other in [*cameras, listener]:
            peers.interrupt(other)
    return code, (tmp / "launch.log").read_text(), peers.read_json(tmp / "listen.json")


def _assert_anonymized(report: dict, topics: list[str], min_frames: int) -> None:
    for topic in topics:
        seen = report["topics"][topic]
        assert seen["frames"] >= min_frames, (topic, seen)
        assert seen["raw"] == 0, f"{topic}: {seen['raw']} output(s) were the raw input"
        assert seen["face_change_min"] > 15, f"{topic}: a face changed by only {seen['face_change_min']:.1f} levels"


@needs_ros
def test_colcon_workspace_ros2_launch_anonymizes_and_ctrl_c_exits_cleanly(ros, tmp_path: Path) -> None:
    code, log, report = _run_with_cameras(ros, tmp_path, "ros2 launch ldfa_ros ldfa.launch.py cameras:=" +
                                          ",".join(CAMERAS))
    _assert_anonymized(report, OUTPUTS, 3)
    assert "Traceback" not in log and "process has died" not in log, log[-3000:]
    assert code == 0, log[-3000:]


@needs_ros
def test_record_launch_writes_only_anonymized_topics_and_exits_cleanly(ros, tmp_path: Path) -> None:
    """`recorder:=node` (rosbag2, for `ros2 bag record`, has no wheels and no sources here); Ctrl-C pressed
    twice, so the node gets a second SIGINT while it shuts down and must still exit 0 with the bag whole."""
    from rclpy.serialization import deserialize_message
    from rosbags.highlevel import AnyReader
    from sensor_msgs.msg import Image

    peers = ros[0]
    bag = tmp_path / "drive_0001"
    params = tmp_path / "reliable.yaml"  # the README's advice for raw cameras, through the params file
    params.write_text(f"/**:\n  ros__parameters:\n    qos_overrides:\n      {CAMERAS[0]}:\n        subscription:\n"
                      "          reliability: reliable\n          depth: 5\n")
    code, log, report = _run_with_cameras(ros, tmp_path, f"ros2 launch ldfa_ros record.launch.py cameras:={CAMERAS[0]} "
                                          f"bag:={bag} recorder:=node params_file:={params}", topics=OUTPUTS[:1],
                                          reliable=True, presses=2)  # an impatient user: Ctrl-C twice
    _assert_anonymized(report, OUTPUTS[:1], 3)
    raw = peers.frame("astronaut", (512, 512))
    x1, y1, x2, y2 = peers.ASTRONAUT_FACE
    with AnyReader([bag]) as reader:
        assert {c.topic for c in reader.connections} == {OUTPUTS[0]}
        records = list(reader.messages())
        assert len(records) >= 3
        for connection, _, data in records:
            msg = deserialize_message(data, Image)
            assert msg.header.frame_id == CAMERAS[0] and (msg.width, msg.height, msg.encoding) == (512, 512, "rgb8")
            rgb = reader.deserialize(data, connection.msgtype).data.reshape(512, 512, 3)
            assert bytes(msg.data) == rgb.tobytes()
            assert np.abs(rgb[y1:y2, x1:x2].astype(int) - raw[y1:y2, x1:x2]).mean() > 15
    assert "Traceback" not in log and code == 0, log[-3000:]


@needs_ros
def test_record_launch_refuses_other_topics_for_the_node_recorder(ros, tmp_path: Path) -> None:
    peers, env, setup_bash = ros
    process = peers.start(f"ros2 launch ldfa_ros record.launch.py cameras:={CAMERAS[0]} bag:={tmp_path / 'b'} "
                          "recorder:=node extra_topics:=/tf", env, tmp_path / "launch.log", setup_bash)
    assert process.wait(120) != 0
    log = (tmp_path / "launch.log").read_text()
    assert "use recorder:=ros2bag for other topics" in log and "Traceback" not in log, log
    assert not (tmp_path / "b").exists()
