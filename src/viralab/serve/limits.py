"""What one scoring request may cost: document size and depth, strict params, horizon cap.

The scorer is reachable by whoever can call the serving endpoint, so every limit answers a
client mistake with a clear message instead of memory, CPU or a traceback:

- a document larger than `max_document_bytes` (default 1 MB of UTF-8 JSON) or nested deeper
  than `max_depth` (default 64 objects/arrays) is refused, not parsed into a huge dict or
  recursed into until Python's `RecursionError`;
- `strict` (opt-in) refuses documents that are not JSON objects; by default they are scored
  with confidence 0, as spec 000 §7.2 asks for odd shapes;
- params are parsed strictly: `"false"` is false, `"maybe"` is an error (`bool("false")`
  would be true);
- a forecast horizon above `MAX_HORIZON` steps is refused before any work starts: the
  scoring server answers 504 after its timeout but cannot stop the worker still rolling.

Errors are `MlflowException(INVALID_PARAMETER_VALUE)`, which `mlflow models serve` answers
with HTTP 400 and a JSON `message`. The values come from the model's `model_config` (set at
logging or overridden with `mlflow.pyfunc.load_model(..., model_config=...)`), then from the
environment (`VIRALAB_MAX_DOCUMENT_BYTES`, `VIRALAB_MAX_DEPTH`, `VIRALAB_STRICT_DOCUMENTS`)
so an operator can tighten a running deployment without re-logging the model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

DEFAULT_MAX_DOCUMENT_BYTES = 1_000_000
DEFAULT_MAX_DEPTH = 64
#: Forecast steps (minutes) one request may ask for: one day. Shared with the forecaster's
#: pyfunc (`serve/forecast_model.py`), which should validate its `horizon` param against it.
MAX_HORIZON = 1440

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
# JSON strings (escapes included) are removed before counting brackets: "[[[" in a string is
# text, not nesting.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class RequestLimitError(MlflowException):
    """A request outside the serving limits; `mlflow models serve` answers it with 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def parse_bool(value: Any, name: str) -> bool:
    """A boolean param as a client sends it (bool, 0/1, or text), refusing anything else."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise RequestLimitError(f"param {name!r} must be true or false, got {value!r}")


def parse_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer param within [minimum, maximum]; text such as "12" is accepted, "1.5" not."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer | str):
        raise RequestLimitError(f"param {name!r} must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise RequestLimitError(f"param {name!r} must be an integer, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise RequestLimitError(f"param {name!r} must be at least {minimum}{upper}, got {number}")
    return number


def check_horizon(horizon: Any) -> int:
    """The forecast horizon as an int in 1..MAX_HORIZON (a clear error otherwise)."""
    return parse_int(horizon, "horizon", minimum=1, maximum=MAX_HORIZON)


def json_depth(text: str) -> int:
    """How deeply objects/arrays nest in JSON text, without parsing (no recursion).

    Only called on text with more brackets than the depth limit, so ordinary documents
    never pay for it.
    """
    brackets = "".join(_BRACKETS.findall(_JSON_STRING.sub("", text)))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise RequestLimitError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class ServeLimits:
    """The limits one loaded model applies to every request."""

    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    strict: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None) -> ServeLimits:
        """model_config keys first, then VIRALAB_* environment variables, then defaults."""
        config = config or {}
        max_bytes = config.get("max_document_bytes")
        depth = config.get("max_depth")
        strict = config.get("strict")
        env_strict = os.environ.get("VIRALAB_STRICT_DOCUMENTS")
        return cls(
            max_document_bytes=int(max_bytes)
            if max_bytes is not None
            else _env_int("VIRALAB_MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES),
            max_depth=int(depth)
            if depth is not None
            else _env_int("VIRALAB_MAX_DEPTH", DEFAULT_MAX_DEPTH),
            strict=parse_bool(strict, "strict")
            if strict is not None
            else (parse_bool(env_strict, "VIRALAB_STRICT_DOCUMENTS") if env_strict else False),
        )

    def as_config(self) -> dict[str, Any]:
        return {
            "max_document_bytes": self.max_document_bytes,
            "max_depth": self.max_depth,
            "strict": self.strict,
        }

    def check_text(self, text: str, index: int, *, strict: bool | None = None) -> None:
        """Refuse document `index` (JSON text) when it is too large, too deep or, in strict
        mode, not a JSON object."""
        size = len(text)  # characters <= UTF-8 bytes: encode only when it might matter
        if size * 4 > self.max_document_bytes:
            size = len(text.encode("utf-8", errors="replace"))
        if size > self.max_document_bytes:
            raise RequestLimitError(
                f"document {index} is {size:,} bytes; the limit is "
                f"{self.max_document_bytes:,} (max_document_bytes)"
            )
        if text.count("{") + text.count("[") > self.max_depth:
            depth = json_depth(text)
            if depth > self.max_depth:
                raise RequestLimitError(
                    f"document {index} nests {depth} levels deep; the limit is "
                    f"{self.max_depth} (max_depth)"
                )
        if self.strict if strict is None else strict:
            try:  # a second parse, only in strict mode (flattening parses again, cached)
                is_object = isinstance(json.loads(text), dict)
            except (ValueError, RecursionError):
                is_object = False
            if not is_object:
                raise RequestLimitError(
                    f"document {index} is not a JSON object (strict mode refuses it instead "
                    "of scoring it with confidence 0)"
                )
