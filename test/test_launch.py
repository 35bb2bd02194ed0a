"""Packaging of the node: launch files, config, package.xml, entry point and the README table.

The ROS launch API cannot be installed here, so the launch files are built only where it is
importable; their pure-Python parts (in ldfa_ros.node_config and ldfa_ros.record) are tested always.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

from ldfa_ros import node_config
from ldfa_ros.node_config import effective_parameters, launch_overrides, parameters_from_file, split_list

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
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
    assert '"ldfa_node = ldfa_ros.node:main"' in (ROOT / "setup.py").read_text()
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


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="ROS 2 launch API not installed")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_descriptions_build(path: Path) -> None:  # pragma: no cover - runs where ROS 2 is installed
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
