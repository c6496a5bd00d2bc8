"""Spec 000 §3.1: nested `visual_analysis` JSON -> flat dot-keyed features.

The rules, including what happens to odd shapes (documented here because training and scoring
must agree on them, and both call this code):

- objects recurse, keys joined with "."; an empty object contributes nothing;
- `null` -> the key with value None (counts as missing downstream);
- arrays -> `<key>_count` (length) and `<key>_empty` (bool); when every element is a string,
  one `<key>_has_<sanitized>` = True flag per element (spec's `sanitize`: lowercase, non
  `[a-z0-9]` to `_`, first 30 chars). Mixed-type and numeric arrays get only count/empty; an
  array where an object was expected is just an array (count/empty), its section's usual
  keys are then missing;
- booleans stay booleans; finite numbers stay numbers; NaN/±inf become None;
- strings stay strings (numbers written as strings, "7", are parsed later, by the typing step
  in `viralab.features.tabular`);
- unknown sections flatten like any other (the encoder ignores keys it never saw in training);
- a document that is not an object (a list, a number, null) flattens to {}; a JSON string that
  does not parse flattens to {} at scoring time (`flatten_document`), never a crash.

Keys that themselves contain dots or underscores are kept verbatim: nothing downstream ever
splits a feature name to recover its parts (spec 000's `name.split('_')[0]` bug).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cachetools import LRUCache

_NON_ALNUM = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=65536)
def sanitize(value: str) -> str:
    """Spec 000's `sanitize`: lowercase, every non `[a-z0-9]` char to `_`, first 30 chars."""
    return _NON_ALNUM.sub("_", value.lower())[:30]


def coerce_scalar(value: Any) -> Any:
    """Normalise one leaf: non-finite floats -> None; everything else as given."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def finite_json(value: Any) -> Any:
    """A copy of a JSON-like value with NaN/±inf replaced by None.

    Strict JSON has no NaN; Python's `json` writes and reads it anyway. Cleaning before
    `json.dumps(..., allow_nan=False)` keeps every stored document standard JSON.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def flatten_analysis(analysis: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten one analysis document (a dict, or a JSON string of one) to dot keys."""
    if isinstance(analysis, str | bytes):
        analysis = json.loads(analysis)
    flat: dict[str, Any] = {}
    if isinstance(analysis, Mapping):
        _flatten_into(flat, analysis, prefix)
    return flat


def _flatten_into(flat: dict[str, Any], node: Mapping[str, Any], prefix: str) -> None:
    """The rules of the module docstring, written into one dict (scoring's hot path: exact
    type checks first, the abstract `Mapping` check only for the unusual cases)."""
    for key, value in node.items():
        full_key = f"{prefix}.{key}" if prefix else str(key)
        kind = type(value)
        if value is None:
            flat[full_key] = None
        elif kind is dict:
            _flatten_into(flat, value, full_key)
        elif isinstance(value, list):
            flat[f"{full_key}_count"] = len(value)
            flat[f"{full_key}_empty"] = not value
            if value and all(isinstance(v, str) for v in value):
                for v in value:
                    flat[f"{full_key}_has_{sanitize(v)}"] = True
        elif kind is float:
            flat[full_key] = value if math.isfinite(value) else None
        elif kind is int or kind is str or kind is bool:
            flat[full_key] = value
        elif isinstance(value, Mapping):
            _flatten_into(flat, value, full_key)
        else:
            flat[full_key] = coerce_scalar(value)


class FlattenCache:
    """LRU of flattened JSON texts bounded in BYTES (an estimate: the text plus the flat
    dict's table, keys and values), not in entries: with 2,048 entries, 40 distinct 1.3 MB
    documents grew a serving process by 535 MB (issue 14). Texts over `max_item_bytes` are
    flattened every time: caching is for cross-validation's refits over small documents,
    not for serving large one-off requests. Thread-safe (serving uses several threads)."""

    def __init__(self, max_bytes: int, max_item_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self._entries: LRUCache = LRUCache(maxsize=max_bytes, getsizeof=lambda entry: entry[0])
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return int(self._entries.currsize)

    @staticmethod
    def estimate(text: str, flat: dict[str, Any]) -> int:
        """Approximate bytes held by one entry (CPython object sizes; floats/ints ~32)."""
        return (
            sys.getsizeof(text)
            + sys.getsizeof(flat)
            + sum(map(len, flat))
            + (sys.getsizeof("") + 32) * len(flat)
        )

    def get(self, text: str) -> dict[str, Any]:
        with self._lock:
            hit = self._entries.get(text)
        if hit is not None:
            return hit[1]
        flat = _parse_and_flatten(text)
        if len(text) <= self.max_item_bytes:
            size = self.estimate(text, flat)
            if size <= self.max_bytes:
                with self._lock:
                    self._entries[text] = (size, flat)  # evicts least recently used entries
        return flat

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _parse_and_flatten(text: str) -> dict[str, Any]:
    try:
        return flatten_analysis(json.loads(text))
    except (json.JSONDecodeError, RecursionError):
        return {}


#: One per process; sizes from VIRALAB_FLATTEN_CACHE_BYTES (default 64 MB) and
#: VIRALAB_FLATTEN_CACHE_ITEM_BYTES (default 256 KB of text).
flatten_cache = FlattenCache(
    int(os.environ.get("VIRALAB_FLATTEN_CACHE_BYTES") or 64 * 2**20),
    int(os.environ.get("VIRALAB_FLATTEN_CACHE_ITEM_BYTES") or 256 * 2**10),
)


def flatten_document(document: Any) -> dict[str, Any]:
    """Flatten a document as the encoder receives it: a JSON string, a dict, or anything else.

    JSON text is flattened once and memoised (`flatten_cache`, bounded in bytes):
    cross-validation refits the encoder on every fold and would otherwise re-parse the same
    documents each time. The returned dict may be
    shared, so callers must not modify it. Text that is not valid JSON flattens to {}.
    """
    if isinstance(document, bytes):
        document = document.decode("utf-8", errors="replace")
    if isinstance(document, str):
        return flatten_cache.get(document)
    return flatten_analysis(document)
