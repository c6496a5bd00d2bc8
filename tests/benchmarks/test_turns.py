"""`benchmarks/turns.py`: the sweep benchmark's processes take turns, one unit of work each."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from turns import run_in_turns

from tests.support.turn_jobs import fail_after_ready, write_in_turns


def test_processes_take_turns_in_a_ring_from_the_first_and_go_on_without_a_finished_one(
    tmp_path: Path,
) -> None:
    log = tmp_path / "order.txt"
    jobs = [
        (write_in_turns, ("a", str(log), 3)),
        (write_in_turns, ("b", str(log), 1)),  # done after one turn: the ring skips it
        (write_in_turns, ("c", str(log), 3)),
    ]
    got = run_in_turns(jobs, first=2, timeout_s=120)
    assert log.read_text().split() == ["c0", "a0", "b0", "c1", "a1", "c2", "a2"]
    assert [t.turns for t in got] == [3, 1, 3]
    for turns in got:  # each counts its own turns' time (a 10 ms sleep each), not the others'
        assert 0.01 * turns.turns <= turns.seconds < 0.01 * turns.turns + 1.0
        assert turns.spill_cpu >= 0.0
        assert turns.watched_cpu == 0.0  # nothing watched


def test_a_failing_process_stops_the_others_with_its_error(tmp_path: Path) -> None:
    log = tmp_path / "order.txt"
    jobs = [(fail_after_ready, ()), (write_in_turns, ("b", str(log), 3))]
    with pytest.raises(SystemExit, match="turn-taking process 0 failed: RuntimeError: the job"):
        run_in_turns(jobs, timeout_s=120)
    assert not log.exists()  # b never got a turn
