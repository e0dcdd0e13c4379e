"""Follow incoming MIDI beat clock: a :class:`~melodia.live.scheduler.Clock` whose seconds are
the music's, at a nominal tempo, however fast the sender's clock runs.

A DAW (or a drum machine) sends 24 ``clock`` messages per quarter note. :class:`ClockFollower`
counts them: the music's time is ``beats x 60 / qpm`` seconds, ``qpm`` the nominal tempo the
band is conditioned on (asked for, or measured over the first two beats of ticks, which are
waited for either way), and between ticks it runs on at the speed of the last two beats of ticks,
up to half a beat past the last tick handed over. So a
:class:`~melodia.live.scheduler.Player` on this clock plays the band's stream (made at ``qpm``)
at the sender's tempo, speeding up and slowing down with it. ``start`` restarts the count;
``stop`` holds the time where it is.

Each tick's arrival is best given stamped by the MIDI system (:mod:`melodia.live.timed`): read
in a Python callback instead, a tick waits for the interpreter's lock, and on a busy machine the
measured tempo and the fitted line come out late and slow.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

import numpy as np

CLOCKS_PER_QUARTER = 24
SPIN_S = 0.001  # the last millisecond before a deadline is spun, as MonotonicClock does
WAIT_POLL_S = 0.002  # how often a sleeper looks at the clock again
WINDOW = 2 * CLOCKS_PER_QUARTER + 1  # ticks the tempo is measured over (and waited for)
RUN_ON_TICKS = CLOCKS_PER_QUARTER // 2  # how far time runs on past the last tick handed over


class ClockFollower:
    """Music seconds from MIDI beat clock ticks (see the module's text). Feed it every message
    of the input port (:meth:`__call__`); :meth:`wait_running` blocks until it has a tempo."""

    def __init__(self, qpm: float | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock  # the time axis of the arrival times given to __call__
        self._lock = threading.Lock()
        self._times: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self._ticks = 0  # ticks since the last start
        self._stopped = False
        self._line = (0.0, 1.0)  # time of tick 1 and seconds per tick, on the fitted line
        self._now = 0.0  # the latest time given out
        self._ready = threading.Event()
        self.qpm = qpm  # nominal tempo: asked for, or measured once the first beat is in

    def __call__(self, message, at: float | None = None) -> None:
        """Take one message of the port, arrived at ``at`` on :attr:`clock`'s axis (default:
        now). A message stamped when it reached the port (:mod:`melodia.live.timed`) keeps the
        ticks' spacing however late Python hands it over."""
        now = self.clock() if at is None else at
        with self._lock:
            if message.type == "start":
                self._ticks, self._stopped, self._now = 0, False, 0.0
                self._times.clear()
            elif message.type == "stop":
                self._stopped = True
            elif message.type == "continue":
                self._stopped = False
            elif message.type == "clock" and not self._stopped:
                self._ticks += 1
                self._times.append(now)
                if len(self._times) >= 3:  # the line through the ticks: where tick 1 fell
                    slope, at = self._fit()
                    self._line = (at - (self._ticks - len(self._times)) * slope, slope)
                if self.qpm is None and len(self._times) >= WINDOW:
                    self.qpm = self._measured()
                if self.qpm is not None and len(self._times) >= WINDOW:
                    self._ready.set()

    def _fit(self) -> tuple[float, float]:
        """The least-squares line through the arrival times kept (the last two beats' worth):
        seconds per tick, and the time of the first tick kept. Ticks that reach the port a
        JACK cycle early or late, or a tick held up a moment, barely move it."""
        times = np.asarray(self._times)
        slope, intercept = np.polyfit(np.arange(len(times)), times - times[0], 1)
        return float(slope), float(times[0] + intercept)

    def _tick_s(self) -> float:
        return self._fit()[0]

    def _measured(self) -> float:
        """Quarter notes per minute from :meth:`_tick_s`."""
        tick_s = self._tick_s()
        return 60.0 / (CLOCKS_PER_QUARTER * tick_s) if tick_s > 0 else 120.0

    @property
    def sender_qpm(self) -> float | None:
        """The tempo the ticks arrive at now (None before three ticks)."""
        with self._lock:
            return self._measured() if len(self._times) >= 3 else None

    def wait_running(self, stop: threading.Event, timeout_s: float | None = None) -> bool:
        """Block until ticks give a tempo (True), ``stop`` is set or ``timeout_s`` passes."""
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        while not stop.is_set():
            if self._ready.wait(0.05):
                return True
            if deadline is not None and time.perf_counter() > deadline:
                return False
        return False

    def now(self) -> float:
        """Music seconds since the last start, at the nominal tempo."""
        with self._lock:
            self._now = max(self._now, self._music(self.clock()))
            return self._now  # never backwards: a sleeper's deadline, once passed, stays so

    def at(self, t: float) -> float:
        """Music seconds at time ``t`` on :attr:`clock`'s axis (a message's arrival, say)."""
        with self._lock:
            return self._music(t)

    def _music(self, t: float) -> float:
        if len(self._times) < 3 or self.qpm is None:
            return 0.0
        first, tick_s = self._line
        ticks = (t - first) / tick_s
        ticks = min(ticks, self._ticks + (0.0 if self._stopped else RUN_ON_TICKS))
        return max(ticks, 0.0) / CLOCKS_PER_QUARTER * 60.0 / self.qpm

    def sleep_until(self, t: float, stop: threading.Event, coarse: bool = False) -> None:
        """Return once :meth:`now` reaches music time ``t`` (or ``stop`` is set)."""
        while not stop.is_set():
            remaining = t - self.now()
            if remaining <= 0:
                return
            if remaining > SPIN_S or coarse:
                stop.wait(min(max(remaining - SPIN_S, 0.0005), WAIT_POLL_S))


__all__ = ["CLOCKS_PER_QUARTER", "ClockFollower"]
