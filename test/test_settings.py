"""The settings schema: validation with clear reasons, and a description of every field."""
from __future__ import annotations

import pytest

from ldfa_ros.settings import Settings, SettingsError


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
