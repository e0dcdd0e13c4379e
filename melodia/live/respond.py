"""Call and response: hear a player's phrase on an input port, answer it, listen again.

A phrase is the notes heard since the last answer; it ends when nothing has sounded for
``silence_s`` (a bar at the tempo) or when the trigger control change arrives. It becomes the
primer of the answer, which plays for ``respond_seconds``. Notes that arrive while melodia plays
are dropped (so a port routed back to melodia's input does not answer itself). The input port is
held by the listener for the whole session: Magenta's MIDI interface lost its port after the
first answer when the port object was garbage collected.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from melodia.live.ports import open_named_input
from melodia.live.scheduler import Clock, Player, PlayStats
from melodia.midi import Score, Track, make_notes, seconds_for_bars

log = logging.getLogger(__name__)


class PhraseListener:
    """A mido input callback that collects a player's notes into phrases."""

    def __init__(self, trigger_cc: int | None = None) -> None:
        self.trigger_cc = trigger_cc
        self._lock = threading.Lock()
        self._sounding: dict[tuple[int, int], tuple[float, int]] = {}
        self._notes: list[tuple[float, float, int, int]] = []
        self._last = 0.0
        self._triggered = False
        self.muted = False  # while melodia answers

    def __call__(self, message) -> None:
        now = time.perf_counter()
        with self._lock:
            if self.muted:
                return
            kind = message.type
            if kind == "note_on" and message.velocity > 0:
                key = (message.channel, message.note)
                if key in self._sounding:  # re-struck: end the earlier one
                    self._end(key, now)
                self._sounding[key] = (now, message.velocity)
                self._last = now
            elif kind in ("note_off", "note_on"):
                key = (message.channel, message.note)
                if key in self._sounding:
                    self._end(key, now)
                    self._last = now
            elif (kind == "control_change" and message.control == self.trigger_cc
                  and message.value > 0):
                self._triggered = True

    def _end(self, key: tuple[int, int], now: float) -> None:
        start, velocity = self._sounding.pop(key)
        self._notes.append((start, now, key[1], velocity))

    def wait_phrase(self, stop: threading.Event, silence_s: float,
                    poll_s: float = 0.005) -> tuple[Score, float] | None:
        """Block until a phrase is complete; its notes as a Score (starting at 0) and the time
        (``time.perf_counter``) it ended. None when ``stop`` is set first."""
        while not stop.wait(poll_s):
            now = time.perf_counter()
            with self._lock:
                heard = bool(self._notes or self._sounding)
                quiet = bool(self._notes) and not self._sounding and now - self._last >= silence_s
                triggered = self._triggered and heard
                self._triggered = triggered  # a trigger before any note is ignored
                if not (quiet or triggered):
                    continue
                for key in list(self._sounding):
                    self._end(key, now)
                notes, ended = sorted(self._notes), self._last
                self._notes, self._triggered = [], False
            return _score(notes), ended
        return None

    def clear(self) -> None:
        with self._lock:
            self._notes, self._sounding, self._triggered = [], {}, False


def _score(notes: list[tuple[float, float, int, int]]) -> Score:
    start = notes[0][0]
    a = np.array(notes, dtype=np.float64)
    return Score(tracks=[Track(notes=make_notes(a[:, 0] - start, a[:, 1] - start,
                                                a[:, 2].astype(int), a[:, 3].astype(int)),
                               name="Player")])


@dataclass
class Round:
    """One answer: the phrase heard, when it ended, when melodia's first note went out."""

    phrase_notes: int
    phrase_s: float
    ended_at: float  # time.perf_counter of the phrase's last note-off (or trigger)
    detected_at: float  # when the phrase was taken as complete
    first_note_at: float | None  # when the answer's first note-on was sent
    stats: PlayStats = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def latency_s(self) -> float | None:
        """From the end of the phrase to the first answering note (includes the bar of
        silence that marks the end)."""
        return None if self.first_note_at is None else self.first_note_at - self.ended_at

    @property
    def compute_s(self) -> float | None:
        """From taking the phrase to the first answering note: melodia's own reaction time."""
        return None if self.first_note_at is None else self.first_note_at - self.detected_at


def call_and_response(config, port, stop: threading.Event,
                      messages: Callable[..., Iterator[tuple]], clock: Clock | None = None
                      ) -> list[Round]:
    """Listen on ``config.listen``, answer each phrase on ``port``, until ``config.rounds``
    answers or ``stop``. ``messages(config, primer=phrase)`` gives an answer's timed messages
    (:func:`melodia.live.stream.timed_messages`)."""
    listener = PhraseListener(config.trigger_cc)
    source = open_named_input(config.listen, config.api, listener)
    silence_s = seconds_for_bars(1, config.qpm)  # a 4/4 bar at the tempo
    rounds: list[Round] = []
    try:
        while not stop.is_set() and (config.rounds is None or len(rounds) < config.rounds):
            heard = listener.wait_phrase(stop, silence_s)
            if heard is None:
                break
            phrase, ended = heard
            detected = time.perf_counter()
            listener.muted = True
            first: list[float] = []

            def send(message, _first=first) -> None:
                if not _first and message.type == "note_on" and message.velocity:
                    _first.append(time.perf_counter())
                port.send(message)

            log.info("heard %d notes (%.1f s); answering", phrase.note_count, phrase.end_s)
            answer = dataclasses.replace(config, generate=dataclasses.replace(
                config.generate, primer_seconds=max(phrase.end_s, 0.5)))  # the whole phrase
            player = Player(send, messages(answer, primer=phrase), clock=clock,
                            lookahead_s=config.lookahead_s, start_delay_s=0.02)
            stats = player.run(until_s=config.respond_seconds, stop=stop)
            rounds.append(Round(phrase.note_count, phrase.end_s, ended, detected,
                                first[0] if first else None, stats))
            listener.clear()
            listener.muted = False
    finally:
        source.close()
    return rounds


__all__ = ["PhraseListener", "Round", "call_and_response"]
