"""Play timed MIDI messages in real time: an injectable clock and a :class:`Player`.

The :class:`Player` runs the message iterator (where a model generates) in a producer thread that
stays at most ``lookahead_s`` of music ahead of playback, and sends each message at its time on
the clock. Whatever ends playback (the end of the music, ``until_s``, a stop event, an error in
generation or in ``send``, Ctrl-C), it leaves no note sounding: every note it switched on gets
its ``note_off``, then All Notes Off / All Sound Off go to every channel it used.

Every note-off is sent twice, :data:`ECHO_S` apart (or the second just before the key is struck
again): a MIDI client whose JACK cycle runs late (a busy CPU, a callback that blocks) never gets
the events of the cycles it missed, and a lost note-off is a stuck note. The final release goes
out twice too. Synths ignore a note-off for a key that is not sounding.

Times are seconds: message times since the start of the music, clock times on the clock's own
scale (``time.perf_counter`` for :class:`MonotonicClock`).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import mido

from melodia.live.decode import Timed, control_off

log = logging.getLogger(__name__)

SPIN_S = 0.001  # MonotonicClock busy-waits the last millisecond before a deadline
POLL_S = 0.05  # longest a waiting thread sleeps before looking again (real clocks)
SEND_FAILURES = 3  # consecutive failed sends while releasing before giving up (port gone)
GUARD_S = 0.005  # the producer pauses this close to a send, leaving the GIL to the player
# while playing, a thread waiting for the GIL gets it after at most this long (Python's default
# is 5 ms: a send due while the model computes could wait that long)
SWITCH_INTERVAL_S = 0.0005
JOIN_S = 1.0  # how long run() waits for the producer thread to finish on exit
# a note-off goes out again this much later (about 10 JACK cycles of 256 frames at 48 kHz)
ECHO_S = 0.05


PRODUCER_NICE = 10  # generation yields the CPU to the player, the MIDI/audio server and synths


def _lower_priority() -> None:
    """Lower this thread's scheduling priority (Linux: threads have their own nice value), so
    that on a busy machine the model's computing does not delay the JACK/ALSA server or a synth
    that must hand on the messages in time. Where that is not possible, nothing changes."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PRODUCER_NICE)
    except (AttributeError, OSError):
        pass


class Clock(Protocol):
    """A time source in seconds that can sleep until a time."""

    def now(self) -> float: ...

    def sleep_until(self, t: float, stop: threading.Event, coarse: bool = False) -> None:
        """Return at clock time ``t`` (seconds), or as soon as ``stop`` is set; ``coarse``: a
        millisecond or two late is fine (no busy-wait)."""
        ...


class MonotonicClock:
    """``time.perf_counter`` seconds; sleeps coarsely, then spins the last ``spin_s`` seconds."""

    def __init__(self, spin_s: float = SPIN_S) -> None:
        self.spin_s = spin_s

    def now(self) -> float:
        return time.perf_counter()

    def sleep_until(self, t: float, stop: threading.Event, coarse: bool = False) -> None:
        while not stop.is_set():
            remaining = t - time.perf_counter()
            if remaining <= 0:
                return
            if coarse:
                stop.wait(remaining)
                return
            if remaining > self.spin_s:
                stop.wait(remaining - self.spin_s)
            else:
                while time.perf_counter() < t:
                    pass
                return


class ManualClock:
    """A clock for tests: time stands still except when :meth:`sleep_until` jumps it forward."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds

    def sleep_until(self, t: float, stop: threading.Event, coarse: bool = False) -> None:
        if not stop.is_set():
            self._t = max(self._t, float(t))


CLOCKS_PER_QUARTER = 24  # MIDI beat clock resolution


def clock_messages(qpm: float, until_s: float | None = None) -> Iterator[Timed]:
    """MIDI beat clock at ``qpm`` quarter notes per minute: ``start`` at 0 s, then ``clock``
    24 times per quarter note from 0 s on, up to ``until_s`` seconds (None: without end)."""
    if not qpm > 0:
        raise ValueError(f"qpm must be > 0, not {qpm}")
    tick_s = 60.0 / (qpm * CLOCKS_PER_QUARTER)
    yield 0.0, mido.Message("start")
    for k in itertools.count():
        t = k * tick_s
        if until_s is not None and t > until_s:
            return
        yield t, mido.Message("clock")


def merge(*streams: Iterator[Timed]) -> Iterator[Timed]:
    """Merge time-sorted ``(time_s, message)`` streams lazily into one (ties: earlier stream
    first). With an endless stream among them the result is endless: play it with ``until_s``."""
    return heapq.merge(*streams, key=lambda item: item[0])


@dataclass
class PlayStats:
    """What a :meth:`Player.run` did. Times in seconds."""

    sent: int = 0  # messages sent
    notes: int = 0  # note_on messages with velocity > 0 among them
    jitter_s: list[float] = field(default_factory=list)  # per message: actual - scheduled time
    underruns: int = 0  # messages that were due before the producer had made them (sent late)
    late_max_s: float = 0.0  # the latest any message went out
    duration_s: float = 0.0  # clock time from the music's start to its end (before the release)
    echoes: int = 0  # note-offs sent a second time (not counted in ``sent``)


class _Queue:
    """Messages from the producer to the player, with the producer's state, under one lock."""

    def __init__(self) -> None:
        # (time_s, message, late): late when it was produced after its time to be sent
        self.items: collections.deque[tuple[float, mido.Message, bool]] = collections.deque()
        self.cond = threading.Condition()
        self.done = False
        self.error: BaseException | None = None
        self.last_t: float | None = None  # time of the newest message produced
        self.due: float | None = None  # clock time the player sends its next message at


class Player:
    """Send timed messages at their times, generating them just ahead of playback.

    Parameters
    ----------
    send : called with each ``mido.Message`` (e.g. an output port's ``send``).
    messages : ``(time_s, message)`` in time order, ``time_s`` in seconds from the music's start
        (e.g. :func:`~melodia.live.decode.stream_messages`); may be endless.
    clock : default :class:`MonotonicClock`.
    lookahead_s : the producer pulls a message only while the last one it pulled is at most this
        many seconds of music ahead of playback.
    start_delay_s : the music starts this long after :meth:`run` is called (a head start for
        the producer).

    A player plays its iterator once: call :meth:`run` one time.
    """

    def __init__(self, send: Callable[[mido.Message], None], messages: Iterator[Timed],
                 clock: Clock | None = None, lookahead_s: float = 0.5,
                 start_delay_s: float = 0.1) -> None:
        if lookahead_s <= 0 or start_delay_s < 0:
            raise ValueError("need lookahead_s > 0 and start_delay_s >= 0")
        self.send = send
        self.messages = iter(messages)
        self.clock: Clock = clock or MonotonicClock()
        self.lookahead_s = lookahead_s
        self.start_delay_s = start_delay_s
        self.start_s: float | None = None  # clock time of the music's time 0, once run() starts
        self._queue = _Queue()
        self._halt = threading.Event()
        self._sounding: set[tuple[int, int]] = set()
        self._channels: set[int] = set()
        self._started_clock = False
        self._ran = False
        self._echoes: collections.deque[tuple[float, int, int]] = collections.deque()

    # ---------------------------------------------------------------------- playback

    def run(self, until_s: float | None = None,
            stop: threading.Event | None = None) -> PlayStats:
        """Play until the messages end, ``until_s`` seconds of music, or ``stop`` is set.

        Returns :class:`PlayStats`. Any exception (from the iterator, from ``send``, or a
        KeyboardInterrupt) is re-raised after the sounding notes were released.
        """
        if self._ran:
            raise RuntimeError("a Player plays its messages once; make a new one")
        self._ran = True
        stop = stop or threading.Event()
        stats = PlayStats()
        self.start_s = self.clock.now() + self.start_delay_s
        producer = threading.Thread(target=self._produce, name="melodia-live-producer",
                                    daemon=True)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL_S))
        producer.start()
        try:
            self._play(stats, until_s, stop)
        finally:
            sys.setswitchinterval(switch)
            self._halt.set()
            with self._queue.cond:
                self._queue.cond.notify_all()
            stats.duration_s = self.clock.now() - self.start_s
            try:
                self._release()
            finally:
                producer.join(JOIN_S)
                if producer.is_alive():
                    log.warning("the message iterator is still busy; its thread is left to end")
            log.info("played %d messages (%d notes) in %.2f s, %d underruns, latest %.1f ms",
                     stats.sent, stats.notes, stats.duration_s, stats.underruns,
                     stats.late_max_s * 1e3)
        return stats

    def _play(self, stats: PlayStats, until_s: float | None, stop: threading.Event) -> None:
        start = self.start_s
        while not stop.is_set():
            item = self._next(stats, stop)
            if item is None:
                return
            t, message = item
            if until_s is not None and t > until_s:
                self.clock.sleep_until(start + until_s, stop)
                return
            with self._queue.cond:
                self._queue.due = start + t
            self._echo_until(start + t, stats, stop)
            self.clock.sleep_until(start + t, stop)
            if stop.is_set():
                return
            jitter = self.clock.now() - (start + t)
            self._send(message)
            stats.sent += 1
            stats.notes += message.type == "note_on" and message.velocity > 0
            stats.jitter_s.append(jitter)
            stats.late_max_s = max(stats.late_max_s, jitter)
            with self._queue.cond:
                self._queue.due = None
                self._queue.cond.notify_all()  # playback moved: the producer may pull again

    def _echo_until(self, until: float, stats: PlayStats, stop: threading.Event) -> None:
        """Send the second note-offs due well before clock time ``until`` (a message is due
        then: one due closer waits until after it), each at about its time."""
        while self._echoes and self._echoes[0][0] <= until - GUARD_S and not stop.is_set():
            due, channel, note = self._echoes.popleft()
            self.clock.sleep_until(due, stop, coarse=True)  # no spin: the CPU is JACK's too
            self.send(mido.Message("note_off", channel=channel, note=note))
            stats.echoes += 1

    def _next(self, stats: PlayStats, stop: threading.Event) -> Timed | None:
        """The next message, waiting for the producer if need be; None at the end or on stop."""
        q = self._queue
        with q.cond:
            while not q.items and not q.done and not stop.is_set():
                q.cond.wait(POLL_S)
            if q.items:
                t, message, late = q.items.popleft()
                stats.underruns += late
                return t, message
            if q.error is not None:
                raise q.error
            return None

    # ----------------------------------------------------------------------- producer

    def _produce(self) -> None:
        q = self._queue
        _lower_priority()
        try:
            while self._wait_for_room():
                try:
                    item = next(self.messages)
                except StopIteration:
                    break
                late = self.clock.now() > self.start_s + item[0]
                with q.cond:
                    q.items.append((item[0], item[1], late))
                    q.last_t = item[0]
                    q.cond.notify_all()
        except BaseException as err:  # handed to run(), which re-raises it
            q.error = err
        finally:
            with q.cond:
                q.done = True
                q.cond.notify_all()
            close = getattr(self.messages, "close", None)
            if callable(close) and q.error is None:
                try:
                    close()
                except Exception:  # a generator's own cleanup failing must not escape a thread
                    log.exception("closing the message iterator failed")

    def _wait_for_room(self) -> bool:
        """Wait until playback is within ``lookahead_s`` of the newest message; False on halt."""
        q = self._queue
        with q.cond:
            while not self._halt.is_set():
                if q.last_t is None:
                    return True
                now = self.clock.now()
                ahead = q.last_t - (now - self.start_s)
                imminent = q.due is not None and 0 < q.due - now < GUARD_S
                if ahead <= self.lookahead_s and not imminent:
                    return True
                q.cond.wait(GUARD_S if imminent else
                            min(POLL_S, max(ahead - self.lookahead_s, 1e-4)))
        return False

    # ------------------------------------------------------------------------ sending

    def _send(self, message: mido.Message) -> None:
        """Send and keep track of what may sound: a note_on counts as sounding even if its send
        fails (a note_off for it is harmless), a note_off ends a note only once sent."""
        channel = getattr(message, "channel", None)
        is_on = message.type == "note_on" and message.velocity > 0
        if channel is not None:
            self._channels.add(channel)
        if is_on:
            self._sounding.add((channel, message.note))
            pending = next((e for e in self._echoes if e[1:] == (channel, message.note)), None)
            if pending:  # struck again before its note-off's echo: the echo goes first
                self._echoes.remove(pending)
                self.send(mido.Message("note_off", channel=channel, note=message.note))
        self.send(message)
        if message.type in ("note_on", "note_off") and not is_on:
            self._sounding.discard((channel, message.note))
            self._echoes.append((self.clock.now() + ECHO_S, channel, message.note))
        elif message.type == "start":
            self._started_clock = True
        elif message.type == "stop":
            self._started_clock = False

    def _release(self) -> None:
        """note_off for every sounding note, CC123/CC120 on each channel used, twice; 'stop' if
        the beat clock runs. A failed send is tried again, up to a few in a row (a port that is
        gone); raises only a KeyboardInterrupt/SystemExit met on the way, once it is done."""
        keys = sorted(self._sounding | {(c, n) for _, c, n in self._echoes})
        release = [mido.Message("note_off", channel=c, note=n) for c, n in keys]
        release += [m for c in sorted(self._channels) for m in control_off(c)]
        messages = release * 2 + ([mido.Message("stop")] if self._started_clock else [])
        self._echoes.clear()
        failures, interrupt, k, pause_at = 0, None, 0, len(release) or None
        while k < len(messages):
            if k == pause_at:  # the second round (see ECHO_S), JACK cycles later
                pause_at = None
                try:
                    time.sleep(ECHO_S)
                except BaseException as err:
                    interrupt = interrupt or err
            try:
                self.send(messages[k])
            except BaseException as err:  # a second Ctrl-C must not leave notes stuck either
                if not isinstance(err, Exception):
                    interrupt = interrupt or err
                failures += 1
                log.warning("could not send %s while releasing: %r", messages[k], err)
                if failures >= SEND_FAILURES:
                    log.error("giving up releasing notes after %d failed sends", failures)
                    break
                continue  # the same message again
            failures = 0
            if messages[k].type == "note_off":
                self._sounding.discard((messages[k].channel, messages[k].note))
            k += 1
        if interrupt is not None:
            raise interrupt

    @property
    def sounding(self) -> set[tuple[int, int]]:
        """``(channel, note)`` of notes this player switched on and has not switched off."""
        return set(self._sounding)


__all__ = ["CLOCKS_PER_QUARTER", "Clock", "ManualClock", "MonotonicClock", "PlayStats", "Player",
           "clock_messages", "merge"]
