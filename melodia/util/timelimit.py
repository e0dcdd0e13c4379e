"""Wall-clock limits for library calls that can run away (music21 on a pathological score).

``with time_limit(10) as limit: ...`` raises :class:`TimeLimitExceeded` after 10 seconds. It
uses ``SIGALRM``, so it only limits code in the main thread on POSIX (which is where ``prepare``
workers run); elsewhere it does nothing. Limits nest: an inner limit never outlives an outer one,
and each raises an exception naming itself, so callers can tell whose time ran out::

    try:
        with time_limit(10) as limit:
            slow()
    except TimeLimitExceeded as err:
        if err.limit is not limit:
            raise  # an outer limit's
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator


class TimeLimitExceeded(BaseException):
    """Raised when a :func:`time_limit` expires. A ``BaseException`` so that libraries'
    ``except Exception`` clauses do not swallow it."""

    def __init__(self, limit: object, seconds: float) -> None:
        super().__init__(f"gave up after {seconds:g} s")
        self.limit, self.seconds = limit, seconds


def _usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None) -> Iterator[object]:
    """Raise :class:`TimeLimitExceeded` if the block runs longer than ``seconds`` (None = no limit)."""
    token = object()
    if not seconds or seconds <= 0 or not _usable():
        yield token
        return
    outer_left = signal.getitimer(signal.ITIMER_REAL)[0]
    own = not outer_left or seconds <= outer_left  # else the outer limit fires first

    def on_alarm(signum, frame):
        if own:
            raise TimeLimitExceeded(token, seconds)
        if callable(previous):
            previous(signum, frame)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds if own else outer_left)
    try:
        yield token
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
