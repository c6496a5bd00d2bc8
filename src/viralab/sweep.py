"""`python -m viralab.sweep <overrides>`: forwards to the runner in `viralab.sweeps.runner`.

Kept because MLproject, the README and the worker processes a coordinator starts name this
module; the code lives in the `viralab.sweeps` package.
"""

from viralab.sweeps.objective import Objective, TrialFailed, TrialFn
from viralab.sweeps.progress import SweepError
from viralab.sweeps.result import SweepResult
from viralab.sweeps.runner import main, run_plan, run_sweep

__all__ = [
    "Objective",
    "SweepError",
    "SweepResult",
    "TrialFailed",
    "TrialFn",
    "main",
    "run_plan",
    "run_sweep",
]

if __name__ == "__main__":
    main()
