"""How the sample draws one leaf of an analysis: its kind, its loadings, its vocabulary.

The v3 schema (`viralab.data.sample.v3_schema`) is a table of these, one line a feature, so
the constructors are short and read like the document they describe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Feature:
    """One leaf of the analysis document and how to draw it.

    ``kind`` is one of score (int 1-10), ratio (float 0-1), range (float lo-hi), count (int),
    bool, cat (one of ``choices``), array (strings from ``choices``) or text (``make_text``).
    ``loadings`` tie it to the hidden traits; ``coverage`` < 1 leaves it out of that share of
    documents; ``when`` keeps it only where that boolean feature is true; ``null_rate`` writes
    an explicit ``null`` instead of a value.
    """

    path: str
    kind: str
    loadings: dict[str, float] = field(default_factory=dict)
    center: float = 0.5
    lo: float = 0.0
    hi: float = 1.0
    choices: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    coverage: float = 1.0
    when: str | None = None
    null_rate: float = 0.0
    make_text: Callable[[np.random.Generator, int], list[str]] | None = None


def score(path: str, center: float = 5.5, **loadings: float) -> Feature:
    """An integer score 1-10 around ``center``."""
    return Feature(path, "score", loadings, center=center)


def ratio(path: str, center: float = 0.5, **loadings: float) -> Feature:
    """A float share 0-1 around ``center``."""
    return Feature(path, "ratio", loadings, center=center)


def span(path: str, lo: float, hi: float, null_rate: float = 0.0, **loadings: float) -> Feature:
    """A float in ``lo``-``hi`` (the kind ``range``)."""
    return Feature(path, "range", loadings, lo=lo, hi=hi, null_rate=null_rate)


def count(path: str, mean: float, **loadings: float) -> Feature:
    """A Poisson count around ``mean``."""
    return Feature(path, "count", loadings, center=mean)


def flag(path: str, p: float = 0.5, **loadings: float) -> Feature:
    """A boolean, true with probability about ``p`` (the kind ``bool``)."""
    return Feature(path, "bool", loadings, center=p)


def category(
    path: str,
    choices: Sequence[str],
    weights: Sequence[float] = (),
    coverage: float = 1.0,
    when: str | None = None,
) -> Feature:
    """One of ``choices`` by ``weights``; ``when`` a boolean path that must be true."""
    return Feature(
        path,
        "cat",
        choices=tuple(choices),
        weights=tuple(weights),
        coverage=coverage,
        when=when,
    )


def array(
    path: str, choices: Sequence[str], mean: float, coverage: float = 1.0, **loadings: float
) -> Feature:
    """Distinct strings from ``choices``, about ``mean`` of them."""
    return Feature(path, "array", loadings, center=mean, choices=tuple(choices), coverage=coverage)


def free_text(
    path: str, make: Callable[[np.random.Generator, int], list[str]], coverage: float = 1.0
) -> Feature:
    """Free text from ``make`` (too varied to be a category: the encoder drops it)."""
    return Feature(path, "text", make_text=make, coverage=coverage)


def phrases(
    *parts: Sequence[str], sep: str = " "
) -> Callable[[np.random.Generator, int], list[str]]:
    """A free-text maker that joins one random pick from each part."""

    def make(rng: np.random.Generator, n: int) -> list[str]:
        picks = [rng.integers(0, len(part), size=n) for part in parts]
        return [
            sep.join(part[int(idx[i])] for part, idx in zip(parts, picks, strict=True))
            for i in range(n)
        ]

    return make


def handles(rng: np.random.Generator, n: int) -> list[str]:
    """Social handles, for a text feature with many distinct values."""
    names = ("dailyskits", "officehumor", "momlife", "thechefsays", "gymtok", "deskjokes")
    picks = rng.integers(0, len(names), size=n)
    numbers = rng.integers(10, 1000, size=n)
    return [f"@{names[int(p)]}{int(k)}" for p, k in zip(picks, numbers, strict=True)]


def vocab(words: str) -> tuple[str, ...]:
    """A vocabulary written as ``"a|b|c"``."""
    return tuple(words.split("|"))
