"""A job for `benchmarks/turns.run_in_turns` in tests: spawned processes import it by name."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_in_turns(
    clock: Any, ready: Callable[[], None], name: str, log: str, units: int
) -> list[float]:
    """Append ``name<k>`` to ``log`` once per unit, handing the turn over between units."""
    ready()
    clock.begin()
    stamps = []
    for k in range(units):
        with Path(log).open("a") as out:
            out.write(f"{name}{k}\n")
        stamps.append(time.perf_counter())
        time.sleep(0.01)  # a turn lasts a while: its seconds add up
        if k < units - 1:
            clock.pass_turn()
    clock.end()
    return stamps


def fail_after_ready(clock: Any, ready: Callable[[], None]) -> None:
    ready()
    clock.begin()
    raise RuntimeError("the job broke")
