"""Spec 000 §3.1 flatten: the spec's own example exactly, and the odd-shape rules."""

from __future__ import annotations

import json
import math

import pytest

from viralab.features.flatten import (
    finite_json,
    flatten_analysis,
    flatten_document,
    sanitize,
)

SPEC_INPUT = {
    "script": {
        "replicability": {
            "score": 9,
            "requiredElements": ["Person", "Reaction"],
        }
    },
    "audio": {"soundEffects": ["laugh", "ding"]},
}

SPEC_OUTPUT = {
    "script.replicability.score": 9,
    "script.replicability.requiredElements_count": 2,
    "script.replicability.requiredElements_empty": False,
    "script.replicability.requiredElements_has_person": True,
    "script.replicability.requiredElements_has_reaction": True,
    "audio.soundEffects_count": 2,
    "audio.soundEffects_empty": False,
    "audio.soundEffects_has_laugh": True,
    "audio.soundEffects_has_ding": True,
}


def test_spec_example_exactly() -> None:
    out = flatten_analysis(SPEC_INPUT)
    # same keys, values, value types and order as the spec's output
    assert list(out.items()) == list(SPEC_OUTPUT.items())
    assert [type(v) for v in out.values()] == [type(v) for v in SPEC_OUTPUT.values()]


def test_spec_example_from_json_text() -> None:
    text = json.dumps(SPEC_INPUT)
    assert flatten_analysis(text) == SPEC_OUTPUT
    assert flatten_document(text) == SPEC_OUTPUT


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Text Overlay", "text_overlay"),
        ("Rule-of-3!", "rule_of_3_"),
        ("ÜBER cool", "_ber_cool"),
        ("x" * 40, "x" * 30),
        ("", ""),
    ],
)
def test_sanitize_is_the_specs(raw: str, expected: str) -> None:
    assert sanitize(raw) == expected


def test_keys_with_dots_and_underscores_are_kept_verbatim() -> None:
    doc = {"a.b": {"c_d": 1, "e_has_f": ["G h"]}, "x_y": {"z": "v_w"}}
    assert flatten_analysis(doc) == {
        "a.b.c_d": 1,
        "a.b.e_has_f_count": 1,
        "a.b.e_has_f_empty": False,
        "a.b.e_has_f_has_g_h": True,
        "x_y.z": "v_w",
    }


def test_odd_shapes_follow_the_documented_rules() -> None:
    doc = {
        "empty": {},
        "nothing": None,
        "numberAsString": "7",
        "mixed": ["a", 1, None],
        "numbers": [1.5, 2.5],
        "noList": [],
        "nested": {"nan": float("nan"), "inf": float("inf"), "ok": 1.5, "flag": False},
        "casting": ["array", "where", "object"],
    }
    assert flatten_analysis(doc) == {
        "nothing": None,
        "numberAsString": "7",
        "mixed_count": 3,
        "mixed_empty": False,
        "numbers_count": 2,
        "numbers_empty": False,
        "noList_count": 0,
        "noList_empty": True,
        "nested.nan": None,
        "nested.inf": None,
        "nested.ok": 1.5,
        "nested.flag": False,
        "casting_count": 3,
        "casting_empty": False,
        "casting_has_array": True,
        "casting_has_where": True,
        "casting_has_object": True,
    }


@pytest.mark.parametrize("doc", [[1, 2], 5, None, "null", "[1, 2]", "not json {", b"{bad"])
def test_documents_that_are_not_objects_flatten_to_nothing(doc: object) -> None:
    assert flatten_document(doc) == {}


def test_flatten_analysis_raises_on_bad_json_text_but_flatten_document_does_not() -> None:
    with pytest.raises(json.JSONDecodeError):
        flatten_analysis("{nope")
    assert flatten_document("{nope") == {}


def test_finite_json_makes_strict_json() -> None:
    doc = {"a": float("nan"), "b": [1.0, float("-inf")], "c": {"d": float("inf"), "e": "x"}}
    clean = finite_json(doc)
    assert clean == {"a": None, "b": [1.0, None], "c": {"d": None, "e": "x"}}
    json.dumps(clean, allow_nan=False)  # does not raise
    assert math.isnan(doc["a"])  # the input is left alone
