"""Failure handling for every entry point in one place (STYLE: `task_wrapper`).

A `ViralabError` is the user's problem, worded for them: print one line, exit 2. Any other
exception is a bug and keeps its traceback. Runs opened through `tracking.tracked_run` are
already marked FAILED by then.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from viralab.config import redact_text
from viralab.errors import ViralabError
from viralab.service_limits import unreachable_message

F = TypeVar("F", bound=Callable[..., Any])


def user_errors_exit(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ViralabError as exc:
            logging.getLogger("viralab").debug("user error", exc_info=True)
            print(f"error: {redact_text(str(exc))}", file=sys.stderr)
            sys.exit(2)
        except Exception as exc:  # a dead tracking server / database: one line, not a bug
            message = unreachable_message(exc)
            if message is None:
                raise
            logging.getLogger("viralab").debug("service unreachable", exc_info=True)
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
