"""Where each input of a fitted `AnalysisEncoder` sits in a flat row and in the encoding.

Both scoring paths (general and compiled) read documents through one `InputLayout`, so they
cannot disagree about which key feeds which column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class FittedEncoder(Protocol):
    """What a layout reads of a fitted `viralab.features.tabular.AnalysisEncoder`."""

    numeric_: list[str]
    boolean_: list[str]
    categorical_: list[str]
    metadata_: Mapping[str, Any]  # the training rows' keys (`FeatureMetadata` by name)
    columns_: Any  # the fitted ColumnTransformer


_SANITIZED = re.compile(r"[a-z0-9_]{0,30}")


def has_flag_array(name: str, known: Mapping[str, Any]) -> str | None:
    """The array key whose `<key>_has_<value>` flag `name` is, when `<key>_count` is a key
    in `known` (the training rows' keys); None for anything else. The rightmost "_has_"
    that fits wins ("a_has_b_has_c" with array "a_has_b" seen -> "a_has_b")."""
    at = name.rfind("_has_")
    while at >= 0:
        array = name[:at]
        if f"{array}_count" in known and _SANITIZED.fullmatch(name[at + 5 :]):
            return array
        at = name.rfind("_has_", 0, at)
    return None


@dataclass(frozen=True)
class InputLayout:
    """What encoding reads from a flat row, in order: `keys` = the inputs (numeric, boolean,
    categorical: all of `numeric_ + boolean_ + categorical_`, or the subset a scorer needs)
    then the `<key>_count` of each has-flag's array that is not itself an input (coverage
    asks whether the array was present). `output` says where the encoded columns sit in the
    full encoder's output. Derived from the fitted encoder on use and never stored with it
    (the saved model keeps its fitted state only)."""

    keys: tuple[str, ...]
    num: np.ndarray  # positions in `numeric_` (and the scaler's columns)
    boolean: np.ndarray  # positions in `boolean_`
    cat: np.ndarray  # positions in `categorical_`
    flag_columns: np.ndarray  # positions within the boolean block of the has-flags
    flag_count: np.ndarray  # their arrays' `_count` positions in `keys`
    cat_index: tuple[dict[str, int], ...]
    cat_offset: tuple[int, ...]  # within this layout's one-hot block
    cat_width: int
    output: np.ndarray  # the encoded columns' positions in `get_feature_names_out()`
    scaler: Any  # the fitted numeric scaler (None without numeric inputs)
    num_fill: np.ndarray  # fill values of this layout's numeric inputs (after scaling)
    bool_fill: np.ndarray  # and of its boolean ones

    @property
    def n_num(self) -> int:
        return len(self.num)

    @property
    def n_bool(self) -> int:
        return len(self.boolean)

    @property
    def n_cat(self) -> int:
        return len(self.cat)

    @classmethod
    def of(cls, encoder: FittedEncoder, inputs: np.ndarray | None = None) -> InputLayout:
        n_num, n_bool = len(encoder.numeric_), len(encoder.boolean_)
        everything = [*encoder.numeric_, *encoder.boolean_, *encoder.categorical_]
        chosen = np.ones(len(everything), dtype=bool) if inputs is None else inputs
        chosen = np.asarray(chosen, dtype=bool)
        num = np.flatnonzero(chosen[:n_num])
        boolean = np.flatnonzero(chosen[n_num : n_num + n_bool])
        cat = np.flatnonzero(chosen[n_num + n_bool :])
        keys = [everything[i] for i in np.flatnonzero(chosen)]
        position = {k: i for i, k in enumerate(keys)}
        flag_columns, flag_count = [], []
        for b, at in enumerate(boolean):
            array = has_flag_array(encoder.boolean_[at], encoder.metadata_)
            if array is None:
                continue
            count = f"{array}_count"
            if count not in position:
                position[count] = len(keys)
                keys.append(count)
            flag_columns.append(b)
            flag_count.append(position[count])
        cat_index, cat_offset, width = [], [], 0
        output = [*num, *(n_num + boolean)]
        if encoder.categorical_:
            all_categories = encoder.columns_.named_transformers_["cat"].categories_
            starts = np.cumsum([0, *map(len, all_categories)]) + n_num + n_bool
            for c in cat:
                categories = all_categories[c]
                cat_index.append({str(v): j for j, v in enumerate(categories)})
                cat_offset.append(width)
                width += len(categories)
                output.extend(range(starts[c], starts[c] + len(categories)))
        named = encoder.columns_.named_transformers_  # a new Bunch per access: read once
        numeric = named["num"].named_steps if encoder.numeric_ else None
        return cls(
            tuple(keys),
            num,
            boolean,
            cat,
            np.asarray(flag_columns, dtype=int),
            np.asarray(flag_count, dtype=int),
            tuple(cat_index),
            tuple(cat_offset),
            width,
            np.asarray(output, dtype=int),
            numeric["scale"] if numeric else None,
            numeric["fill"].statistics_[num] if numeric else np.empty(0),
            named["bool"].statistics_[boolean] if encoder.boolean_ else np.empty(0),
        )
