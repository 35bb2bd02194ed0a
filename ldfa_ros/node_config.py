"""The live node's configuration as plain data: its parameters and the topic names they produce.

ROS-free on purpose: `node.py` declares its ROS parameters from `parameters()`, and the README's
parameter table is generated from the same list (`python -m ldfa_ros.node_config`), so the two
cannot drift apart. The anonymization parameters are the core `Settings` fields; the node adds the
few that only make sense for live topics.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from .settings import Settings

BUDGET_REFERENCES = ("stamp", "arrival")
# image_transport publishes a codec's stream as `<base>/<transport>`; this one carries CompressedImage.
COMPRESSED_TRANSPORT = "compressed"
# A header stamp is trusted as the latency reference only this close to the node clock (an unsynced
# camera clock would otherwise make every frame look late, or early).
STAMP_MAX_AGE_S = 2.0
STAMP_MAX_AHEAD_S = 0.1
_TOPIC = re.compile(r"^(~/|/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter: what `Settings.describe()` gives for a setting, in the same shape."""

    name: str
    default: Any
    type: str
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    runtime: bool = False


NODE_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("cameras", ["image"], "list",
                  "input image topics, one per camera; a topic whose last name is 'compressed' is a "
                  "sensor_msgs/CompressedImage (image_transport naming), any other a raw sensor_msgs/Image. "
                  "Relative names are wired by remapping; absolute names may be listed directly"),
    ParameterSpec("output_suffix", "anonymized", "str",
                  "output topic of a camera: '<input>/<suffix>', or '<base>/<suffix>/compressed' for "
                  "'<base>/compressed' inputs, so image_transport subscribers find it"),
    ParameterSpec("publish_detections", False, "bool",
                  "also publish each camera's faces as vision_msgs/Detection2DArray (class_id 'face')"),
    ParameterSpec("detections_suffix", "faces", "str",
                  "detections topic of a camera: '<base>/<suffix>' where <base> is the input without "
                  "'/compressed'"),
    ParameterSpec("budget_reference", "stamp", "str",
                  "what budget_ms and the reported latency are measured from: the header stamp (used only "
                  f"when it lies within {STAMP_MAX_AGE_S:g} s before and {STAMP_MAX_AHEAD_S:g} s after the node "
                  "clock, else arrival) or the arrival time at the node", choices=BUDGET_REFERENCES, runtime=True),
    ParameterSpec("record_path", "", "str",
                  "if set, write the anonymized outputs (and detections, if published) to a new MCAP bag at "
                  "this path while running; raw frames never reach it"),
    ParameterSpec("diagnostics_period", 1.0, "float", "seconds between /diagnostics reports", low=0.1,
                  high=60.0),
    ParameterSpec("frame_sizes", ["1920x1080"], "list",
                  "the cameras' frame sizes, WIDTHxHEIGHT: with device tensorrt the detector's engines are built "
                  "(or loaded from their cache) for them at start-up; a frame of another size gets its engine when "
                  "it first arrives (seconds, while frames wait). The warm-up frame takes the first size"),
)
_FRAME_SIZE = re.compile(r"^([1-9][0-9]{0,4})[xX]([1-9][0-9]{0,4})$")


def parameters() -> list[ParameterSpec]:
    """Every parameter the node declares: the anonymization settings, then the node's own."""
    return [_from_setting(row) for row in Settings.describe()] + list(NODE_PARAMETERS)


def _from_setting(row: dict[str, Any]) -> ParameterSpec:
    if isinstance(row["default"], tuple):  # ROS has arrays, not tuples
        return ParameterSpec(**{**row, "default": list(row["default"]), "type": "list"})
    return ParameterSpec(**row)


def node_spec(name: str) -> ParameterSpec:
    """The node-only parameter `name`; KeyError if it is a Settings field or unknown."""
    for spec in NODE_PARAMETERS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def check_node_value(name: str, value: Any) -> Any:
    """Validate a node-only parameter value; ValueError names the parameter and what is allowed."""
    spec = node_spec(name)
    if spec.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if spec.choices and value not in spec.choices:
        raise ValueError(f"{name} must be one of {', '.join(spec.choices)}, got {value!r}")
    if spec.low is not None and spec.high is not None and not spec.low <= value <= spec.high:
        raise ValueError(f"{name} must be within [{spec.low}, {spec.high}], got {value!r}")
    return value


def frame_sizes(sizes: Sequence[str]) -> list[tuple[int, int]]:
    """(H, W) of each 'WIDTHxHEIGHT' in the `frame_sizes` parameter; ValueError names a malformed one."""
    if isinstance(sizes, str) or not sizes:
        raise ValueError(f"frame_sizes must be a non-empty list like ['1920x1080'], got {sizes!r}")
    out = []
    for size in sizes:
        match = _FRAME_SIZE.match(str(size).strip())
        if match is None:
            raise ValueError(f"frame_sizes: {size!r} is not WIDTHxHEIGHT in pixels, e.g. '1920x1080'")
        out.append((int(match[2]), int(match[1])))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class CameraTopics:
    """The topics of one camera: where frames come in, where anonymized frames and faces go out."""

    input: str
    output: str
    detections: str
    compressed: bool


def camera_topics(cameras: Sequence[str], output_suffix: str = "anonymized",
                  detections_suffix: str = "faces") -> list[CameraTopics]:
    """Topic names for each camera (see the `cameras` and `output_suffix` parameters).

    ValueError names the camera when a list is empty, has duplicates or a name is not a topic name."""
    if isinstance(cameras, str) or not cameras:
        raise ValueError(f"cameras must be a non-empty list of topic names, got {cameras!r}")
    for suffix, what in ((output_suffix, "output_suffix"), (detections_suffix, "detections_suffix")):
        if not suffix or not _TOPIC.match(suffix) or suffix.startswith("/") or suffix == COMPRESSED_TRANSPORT:
            raise ValueError(f"{what} must be a relative topic name other than 'compressed', got {suffix!r}")
    topics = []
    for camera in cameras:
        name = camera.rstrip("/")
        if not _TOPIC.match(name):
            raise ValueError(f"camera {camera!r} is not a valid ROS topic name")
        base, _, last = name.rpartition("/")
        compressed = last == COMPRESSED_TRANSPORT and bool(base)
        if compressed:
            output = f"{base}/{output_suffix}/{COMPRESSED_TRANSPORT}"
        else:
            base, output = name, f"{name}/{output_suffix}"
        topics.append(CameraTopics(name, output, f"{base}/{detections_suffix}", compressed))
    names = [t.input for t in topics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"cameras lists {', '.join(duplicates)} more than once")
    return topics


# Parameters that the launch files also take as launch arguments ('' leaves them to the params file).
LAUNCH_ARGUMENTS = ("cameras", "method", "device", "frame_sizes", "budget_ms", "publish_detections", "output_suffix",
                    "record_path")


def split_list(text: str) -> list[str]:
    """Items of a list given as one launch argument: separated by commas and/or spaces."""
    return [item for item in re.split(r"[,\s]+", text.strip()) if item]


def launch_overrides(arguments: dict[str, str]) -> dict[str, Any]:
    """Parameter values from launch arguments (text); empty ones are left out.

    ValueError names the argument when it is not a parameter or its text is not of its type."""
    specs = {spec.name: spec for spec in parameters()}
    out: dict[str, Any] = {}
    for name, text in arguments.items():
        if name not in specs:
            raise ValueError(f"launch argument {name!r} is not an ldfa_node parameter")
        if text.strip():
            out[name] = _parse(specs[name], text.strip())
    return out


def _parse(spec: ParameterSpec, text: str) -> Any:
    try:
        if spec.type == "list":
            items = split_list(text)
            return [float(i) for i in items] if isinstance(spec.default[0], float) else items
        if spec.type == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return text.lower() == "true"
        if spec.type in ("int", "float"):
            return int(text) if spec.type == "int" else float(text)
    except ValueError as exc:
        raise ValueError(f"launch argument {spec.name}:={text!r} is not a valid {spec.type}: {exc}") from exc
    return text


def parameters_from_file(path: str | Path, node_name: str = "ldfa_node") -> dict[str, Any]:
    """The ros__parameters a ROS 2 params file gives this node (under '/**' or its name)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a ROS 2 params file (expected '<node>: ros__parameters: ...')")
    out: dict[str, Any] = {}
    for key, section in data.items():
        if key in ("/**", node_name) or str(key).endswith("/" + node_name):
            out.update((section or {}).get("ros__parameters", {}))
    return out


def effective_parameters(params_file: str | Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """What the node will run with: defaults, then the params file, then launch overrides."""
    return {**{spec.name: spec.default for spec in parameters()}, **parameters_from_file(params_file), **overrides}


def _range(spec: ParameterSpec) -> str:
    if spec.choices:
        return ", ".join(spec.choices)
    if spec.low is not None and spec.high is not None:
        return f"[{_number(spec.low)}, {_number(spec.high)}]"
    return ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _cell(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (bool, list)) else str(value)
    text = text.replace("|", "\\|")
    return f"`{text}`" if text else "`''`"


def markdown_table() -> str:
    """The README parameter table, one row per declared parameter."""
    rows = ["| parameter | type | default | range | changeable at runtime | description |",
            "| --- | --- | --- | --- | --- | --- |"]
    for spec in parameters():
        rows.append(f"| `{spec.name}` | {spec.type} | {_cell(spec.default)} | {_range(spec)} | "
                    f"{'yes' if spec.runtime else 'no'} | {spec.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
