"""Flattening specialised to a fitted encoder: JSON text -> the row `encode_table` reads.

`flatten_analysis` builds every flat key of a document (~110 for a v3 analysis) and the
encoder then looks up the few it uses; at serving time that was most of the cost. A
`CompiledFlattener` is built once per loaded model from the encoder's `layout().keys` and
walks the parsed document writing only those keys' values, by position, into a list:

- a key path is followed only when it can still lead to a wanted key (a dict at full key F
  only when some wanted key starts with "F."; an array only when F_count, F_empty or a
  F_has_<value> is wanted); everything else is skipped without looking at its value;
- the values written, the order of writes (a later key overwrites an earlier one with the
  same flat name) and every odd shape follow `viralab.features.flatten` rule for rule, so a
  row equals `[flatten_analysis(doc).get(k) for k in keys]` (tests check it on odd shapes);
- JSON text is parsed with orjson; text orjson refuses (NaN/Infinity, lone surrogates, huge
  numbers, invalid JSON) goes to the standard library's parser as before, and text neither
  parses is a row of missing values, as `flatten_document` makes it `{}`. orjson reads an
  integer beyond 64 bits as the float it rounds to (`json`: a Python int); encoding reads
  both as that float, so the encoded row is the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import orjson

from viralab.features.flatten import sanitize

#: Per full key: (scalar position or -1, may lead to wanted keys when a dict,
#: (count position, empty position, {sanitized value: flag position}) or None, full key).
_Entry = tuple[int, bool, tuple[int, int, dict[str, int]] | None, str]


def parse_json(text: str | bytes) -> Any:
    """orjson where it can, the standard library where orjson refuses; None for text that
    is not JSON (it flattens to nothing, like `flatten_document`'s {})."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return None


class CompiledFlattener:
    """`flatten_analysis` restricted to `keys`, written by position (see module docstring)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)
        self.width = len(self.keys)
        scalars: dict[str, int] = {}
        for i, key in enumerate(self.keys):
            scalars[key] = i
        nested: set[str] = {""}  # {"": {...}} flattens its children as the root's
        arrays: dict[str, tuple[int, int, dict[str, int]]] = {}

        def array(name: str) -> tuple[int, int, dict[str, int]]:
            return arrays.setdefault(name, (-1, -1, {}))

        for key, i in scalars.items():
            nested.update(key[:at] for at, char in enumerate(key) if char == ".")
            if key.endswith("_count"):
                count, empty, flags = array(key[:-6])
                arrays[key[:-6]] = (i, empty, flags)
            if key.endswith("_empty"):
                count, empty, flags = array(key[:-6])
                arrays[key[:-6]] = (count, i, flags)
            at = key.find("_has_")
            while at >= 0:
                array(key[:at])[2][key[at + 5 :]] = i
                at = key.find("_has_", at + 1)
        relevant = {*scalars, *nested, *arrays}
        # per dict prefix, its child keys that lead somewhere: a split of each relevant full
        # name at any dot (keys may hold dots: {"a": {"b.c": 1}} is "a.b.c" too)
        self._children: dict[str, dict[str, _Entry]] = {prefix: {} for prefix in nested}
        for name in relevant:
            entry: _Entry = (scalars.get(name, -1), name in nested, arrays.get(name), name)
            self._children[""][name] = entry
            for at, char in enumerate(name):
                if char == ".":
                    self._children[name[:at]][name[at + 1 :]] = entry

    def row(self, document: Any) -> list[Any]:
        """One parsed document's values for `keys` (None where flattening gives none)."""
        row: list[Any] = [None] * self.width
        if type(document) is dict:
            try:
                self._walk(document, "", row)
            except RecursionError:  # flatten_document's answer to a too-deep document: {}
                return [None] * self.width
        return row

    def rows(self, texts: Sequence[str | bytes]) -> list[list[Any]]:
        """Rows for JSON texts (see `parse_json`), each document dropped once walked."""
        row = self.row
        return [row(parse_json(text)) for text in texts]

    def _walk(self, node: dict[str, Any], prefix: str, row: list[Any]) -> None:
        """`_flatten_into` for the wanted keys: a child key absent from this prefix's table
        cannot lead to one, so it is skipped without building its full name."""
        children = self._children[prefix]
        for key, value in node.items():
            entry = children.get(key)
            if entry is None:
                continue
            at, nested, array, full = entry
            if value is None:
                if at >= 0:
                    row[at] = None
                continue
            kind = type(value)
            if kind is dict:
                if nested:
                    self._walk(value, full, row)
            elif kind is list:
                if array is not None:
                    count, empty, flags = array
                    if count >= 0:
                        row[count] = len(value)
                    if empty >= 0:
                        row[empty] = not value
                    if flags and value and all(type(v) is str for v in value):
                        for v in value:
                            flag = flags.get(sanitize(v))
                            if flag is not None:
                                row[flag] = True
            elif at >= 0:
                if kind is float and not math.isfinite(value):
                    row[at] = None
                else:
                    row[at] = value
