"""Sweeps in separate processes that take turns one trial at a time (for `benchmarks/sweep.py`).

Why: on this shared 2-core machine the very same compute ran a fifth faster or slower from
one minute to the next, so two 50-trial sweeps run one after the other differ by more than
the 10 % share they are there to measure. Taking turns trial by trial, each sweep sees the
machine at the speed the others see within seconds; each counts only its own turns.

What a process does while it waits is not lost: the CPU its own threads and child processes
spend outside its turns (a background write finishing late, in a thread or in the tracking
writer process) and the CPU a watched server spends during the other processes' turns are
recorded per process, and `sweep.py` adds them to the time of the sweep that caused them
(CPU seconds counted as wall seconds: an overestimate, never an underestimate, of what they
cost that sweep).
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil


def tree_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of process ``pid`` and all its descendants so far."""
    if pid is None:
        return 0.0
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                cpu = proc.cpu_times()
                total += cpu.user + cpu.system
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        return 0.0
    return total


def own_cpu() -> float:
    """CPU seconds of this process (exact) and of its children so far (a tracking writer
    process: what it does while the others have their turns is this sweep's cost too)."""
    total = time.process_time()
    for proc in psutil.Process().children(recursive=True):
        try:
            cpu = proc.cpu_times()
            total += cpu.user + cpu.system
        except psutil.NoSuchProcess:
            continue
    return total


class TurnClock:
    """One process's turns: wall seconds in them, and the CPU spent around them."""

    def __init__(self, index: int, batons: Sequence[Any], done: Any, watch_pid: int | None):
        self.index = index
        self.batons = batons  # one semaphore per process: released = its turn
        self.done = done  # shared flags: a finished process takes no more turns
        self.watch_pid = watch_pid
        self.seconds = 0.0
        self.turns = 0
        self.spill_cpu = 0.0  # this process's (and its children's) CPU outside its turns
        self.watched_cpu = 0.0  # the watched server's CPU during this process's turns
        self._since = 0.0
        self._cpu_at_stop: float | None = None
        self._watched_at = 0.0

    def begin(self) -> None:
        """Wait for this process's first turn."""
        self.batons[self.index].acquire()
        self._start()

    def pass_turn(self) -> None:
        """End this turn, hand over to the next process, wait for the next turn."""
        self._stop()
        following = self._next()
        if following is not None:
            self.batons[following].release()
            self.batons[self.index].acquire()
        self._start()

    def end(self) -> None:
        """End the last turn: the others go on without this process."""
        self._stop()
        self.done[self.index] = 1
        following = self._next()
        if following is not None:
            self.batons[following].release()

    def _next(self) -> int | None:
        n = len(self.batons)
        for step in range(1, n):
            other = (self.index + step) % n
            if not self.done[other]:
                return other
        return None

    def _start(self) -> None:
        if self._cpu_at_stop is not None:
            self.spill_cpu += own_cpu() - self._cpu_at_stop
        self._watched_at = tree_cpu(self.watch_pid)
        self.turns += 1
        self._since = time.perf_counter()

    def _stop(self) -> None:
        self.seconds += time.perf_counter() - self._since
        self.watched_cpu += tree_cpu(self.watch_pid) - self._watched_at
        self._cpu_at_stop = own_cpu()


@dataclass
class Turns:
    """What one process of `run_in_turns` reported."""

    result: Any  # its job's return value
    seconds: float  # wall seconds in its turns
    turns: int
    spill_cpu: float
    watched_cpu: float


def _child(
    job: Callable[..., Any],
    index: int,
    batons: Sequence[Any],
    done: Any,
    messages: Any,
    watch_pid: int | None,
    args: tuple,
) -> None:
    clock = TurnClock(index, batons, done, watch_pid)
    try:
        result = job(clock, lambda: messages.put(("ready", index)), *args)
    except BaseException as exc:
        messages.put(("error", index, f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None
    turns = Turns(result, clock.seconds, clock.turns, clock.spill_cpu, clock.watched_cpu)
    messages.put(("result", index, turns))


def run_in_turns(
    jobs: Sequence[tuple[Callable[..., Any], tuple]],
    *,
    first: int = 0,
    watch_pid: int | None = None,
    timeout_s: float = 3600.0,
) -> list[Turns]:
    """Run each ``job(clock, ready, *args)`` in its own (spawned) process; once all called
    ``ready()``, they take turns in a ring starting with ``first``: a job calls
    ``clock.begin()``, ``clock.pass_turn()`` between its units of work, ``clock.end()``."""
    ctx = multiprocessing.get_context("spawn")
    batons = [ctx.Semaphore(0) for _ in jobs]
    done = ctx.Array("b", len(jobs))
    messages = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(job, i, batons, done, messages, watch_pid, args))
        for i, (job, args) in enumerate(jobs)
    ]
    for proc in procs:
        proc.start()
    results: dict[int, Turns] = {}
    ready = 0
    deadline = time.monotonic() + timeout_s
    try:
        while len(results) < len(jobs):
            try:
                kind, index, *rest = messages.get(timeout=5)
            except queue_module.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    raise SystemExit(
                        f"a turn-taking process died (exit {dead[0].exitcode})"
                        if dead
                        else f"turn-taking sweeps not done after {timeout_s:.0f}s"
                    ) from None
                continue
            if kind == "error":
                raise SystemExit(f"turn-taking process {index} failed: {rest[0]}")
            if kind == "ready":
                ready += 1
                if ready == len(jobs):
                    batons[first].release()
            else:
                results[index] = rest[0]
        for proc in procs:
            proc.join(timeout=60)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
    return [results[i] for i in range(len(jobs))]
