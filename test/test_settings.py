"""The settings schema: validation with clear reasons, and a description of every field."""
from __future__ import annotations

import pytest

from ldfa_ros.settings import Settings, SettingsError, from_parameters


@pytest.mark.parametrize("change, message", [
    ({"threshold": 1.5}, "threshold must be within"),
    ({"threshold": "high"}, "threshold must be a number"),
    ({"method": "smudge"}, "method must be one of"),
    ({"carry_frames": 2.5}, "whole number"),
    ({"scales": []}, "must not be empty"),
    ({"scales": 2.0}, "list of numbers"),
    ({"flip": "yes"}, "flip must be a bool"),
    ({"nope": 1}, "unknown setting 'nope'"),
])
def test_bad_values_are_rejected_with_the_reason(change, message):
    with pytest.raises(SettingsError, match=message):
        Settings().updated(**change)


def test_good_values_are_converted():
    s = Settings().updated(threshold=1 / 2, carry_frames=3.0, scales=[1, 2])
    assert s.threshold == 0.5 and s.carry_frames == 3 and isinstance(s.carry_frames, int)
    assert s.scales == (1.0, 2.0)


def test_every_field_is_described():
    rows = Settings.describe()
    assert {r["name"] for r in rows} >= {"threshold", "method", "carry_frames", "on_error"}
    for row in rows:
        assert row["description"] and row["type"] in {"float", "int", "str", "bool", "tuple"}
        assert row["choices"] or row["low"] is not None or row["type"] in {"bool", "str"}


def test_presets_set_the_detector_and_explicit_values_win():
    assert Settings().preset == "realtime" and Settings() == Settings().updated(preset="realtime")
    recall = Settings().updated(preset="recall")
    assert (recall.threshold, recall.scales, recall.flip) == (0.22, (1.0, 2.0), True)
    mixed = Settings().updated(preset="recall", threshold=0.4)
    assert (mixed.threshold, mixed.scales, mixed.flip) == (0.4, (1.0, 2.0), True)
    with pytest.raises(SettingsError, match="preset must be one of realtime, recall"):
        Settings().updated(preset="fast")


@pytest.mark.parametrize("argv", [
    ["image", "in.png", "-o", "out"], ["detect", "in.png", "--json", "b.json"], ["demo", "-o", "d"],
    ["bag", "in.bag", "-o", "out.bag"], ["eval", "set", "-o", "report"],
])
def test_offline_commands_default_to_the_recall_preset(argv):
    from ldfa_ros.cli import build_parser, settings_from_args

    assert settings_from_args(build_parser().parse_args(argv)).preset == "recall"
    fast = settings_from_args(build_parser().parse_args(argv + ["--preset", "realtime"]))
    assert (fast.preset, fast.scales, fast.flip) == ("realtime", (1.0,), False)
    own = settings_from_args(build_parser().parse_args(argv + ["--scales", "1"]))
    assert (own.scales, own.flip, own.threshold) == ((1.0,), True, 0.22)


def test_the_live_node_defaults_to_realtime_and_can_opt_in():
    """The node hands every parameter over, defaults included: those left at their defaults follow the preset."""
    params = {row["name"]: row["default"] for row in Settings.describe()}
    assert from_parameters(params) == Settings()
    recall = from_parameters({**params, "preset": "recall"})
    assert (recall.threshold, recall.scales, recall.flip) == (0.22, (1.0, 2.0), True)
    tuned = from_parameters({**params, "preset": "recall", "threshold": 0.3})
    assert (tuned.threshold, tuned.scales) == (0.3, (1.0, 2.0))
