"""MIDI value types: notes, pedal, tempo map and time signatures in seconds, and the tick clock.

:class:`Score` and :class:`Track` are plain values (numpy structured arrays inside), validated on
construction; :class:`TickClock` converts between a file's ticks and seconds through its tempo map.
No file I/O here (see :mod:`melodia.midi.files`), no tokens, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from melodia.errors import MidiReadError

#: One note per row. Times in seconds, ``end_s >= start_s``; pitch 0-127; velocity 1-127.
NOTE_DTYPE = np.dtype([("start_s", "f8"), ("end_s", "f8"), ("pitch", "i2"), ("velocity", "i2")])
#: Sustain pedal (MIDI CC64) changes: time in seconds and controller value 0-127.
PEDAL_DTYPE = np.dtype([("time_s", "f8"), ("value", "i2")])
#: Tempo changes: time in seconds and quarter notes per minute.
TEMPO_DTYPE = np.dtype([("time_s", "f8"), ("qpm", "f8")])
#: Time signature changes: time in seconds, beats per bar and the beat's note value (4 = quarter).
TIME_SIGNATURE_DTYPE = np.dtype([("time_s", "f8"), ("numerator", "i2"), ("denominator", "i2")])

DRUM_CHANNEL = 9  # General MIDI percussion: channel 10, counted from 1
DEFAULT_QPM = 120.0
DEFAULT_TICKS_PER_QUARTER = 480
DEFAULT_TIME_SIGNATURE = (4, 4)  # what MIDI assumes when a file gives none
#: Longest piece read or encoded by default (2 h): a corrupt delta time or tempo can put a note
#: days later, and encoding that much silence would need gigabytes.
MAX_SECONDS = 2 * 3600.0
#: Written files keep every tick below this: pretty_midi refuses files past 1e7 ticks as corrupt.
MAX_FILE_TICKS = 10_000_000
#: Trailing silence (:attr:`Score.until_s`) is written up to this time (24 h), no further: the
#: file's ticks per quarter are lowered to keep it under :data:`MAX_FILE_TICKS`, and past 24 h a
#: tick would grow coarser than the encodings' 10 ms step.
MAX_SILENCE_END_S = 24 * 3600.0
#: Largest file read (64 MiB; real MIDI files are kilobytes, a big orchestral one a few MB): a
#: device, a FIFO or a huge file is refused before its bytes are read.
MAX_FILE_BYTES = 64 * 1024 * 1024


def make_notes(
    start_s: np.ndarray | list[float],
    end_s: np.ndarray | list[float],
    pitch: np.ndarray | list[int],
    velocity: np.ndarray | list[int],
) -> np.ndarray:
    """Build a validated note array (``NOTE_DTYPE``) from columns."""
    notes = np.empty(len(pitch), dtype=NOTE_DTYPE)
    notes["start_s"], notes["end_s"] = start_s, end_s
    notes["pitch"], notes["velocity"] = pitch, velocity
    check_notes(notes)
    return notes


def check_notes(notes: np.ndarray) -> None:
    """Raise ``ValueError`` unless every note has ``0 <= start <= end``, a MIDI pitch and velocity."""
    if notes.dtype != NOTE_DTYPE:
        raise ValueError(f"notes must have dtype NOTE_DTYPE, not {notes.dtype}")
    if np.any(notes["end_s"] < notes["start_s"]) or np.any(notes["start_s"] < 0):
        raise ValueError("every note needs 0 <= start_s <= end_s")
    if np.any((notes["pitch"] < 0) | (notes["pitch"] > 127)):
        raise ValueError("pitch must be in 0..127")
    if np.any((notes["velocity"] < 1) | (notes["velocity"] > 127)):
        raise ValueError("velocity must be in 1..127")


@dataclass
class Track:
    """The notes of one instrument. ``program`` is the General MIDI program (0-127)."""

    notes: np.ndarray = field(default_factory=lambda: np.empty(0, NOTE_DTYPE))
    program: int = 0
    is_drum: bool = False
    name: str = ""
    pedal: np.ndarray = field(default_factory=lambda: np.empty(0, PEDAL_DTYPE))

    def __post_init__(self) -> None:
        if not 0 <= self.program <= 127:
            raise ValueError(f"program must be in 0..127, got {self.program}")
        check_notes(self.notes)

    @property
    def end_s(self) -> float:
        return float(self.notes["end_s"].max()) if len(self.notes) else 0.0


def instrument_name(program: int, is_drum: bool = False) -> str:
    """General MIDI name of a program, e.g. 29 -> ``"Overdriven Guitar"``; drums are ``"Drums"``."""
    if is_drum:
        return "Drums"
    import pretty_midi

    return pretty_midi.program_to_instrument_name(int(program))


def seconds_for_bars(bars: int, qpm: float, beats_per_bar: int = 4) -> float:
    """Length in seconds of ``bars`` bars of ``beats_per_bar`` quarter notes at ``qpm``.

    E.g. 8 bars of 4/4 at 120 qpm last 16 s; a bar of 6/8 holds 3 quarter notes:

    >>> seconds_for_bars(8, 120)
    16.0
    >>> seconds_for_bars(1, 90, beats_per_bar=3)
    2.0
    """
    if bars < 0 or beats_per_bar < 1 or not qpm > 0:
        raise ValueError(f"need bars >= 0, beats_per_bar >= 1 and qpm > 0 (got {bars}, "
                         f"{beats_per_bar}, {qpm})")
    return bars * beats_per_bar * 60.0 / qpm


def default_time_signatures() -> np.ndarray:
    """One 4/4 at 0 s: what MIDI assumes when a file gives no time signature."""
    return np.array([(0.0, *DEFAULT_TIME_SIGNATURE)], dtype=TIME_SIGNATURE_DTYPE)


@dataclass
class Score:
    """A whole MIDI file: tracks plus the tempo map and time signatures (used when writing).

    ``until_s`` makes the score last at least that long (silence after the last note, as a
    decoded stream that ends in time shifts has); :attr:`end_s` is the later of it and the last
    note end, and a written file ends there.
    """

    tracks: list[Track] = field(default_factory=list)
    tempos: np.ndarray = field(
        default_factory=lambda: np.array([(0.0, DEFAULT_QPM)], dtype=TEMPO_DTYPE)
    )
    time_signatures: np.ndarray = field(default_factory=default_time_signatures)
    until_s: float = 0.0  # seconds; 0 = the score ends with its last note

    def __post_init__(self) -> None:
        if not self.until_s >= 0:
            raise ValueError(f"until_s must be >= 0, got {self.until_s}")
        ts = self.time_signatures
        if ts.dtype != TIME_SIGNATURE_DTYPE:
            raise ValueError(f"time_signatures must have dtype TIME_SIGNATURE_DTYPE, not "
                             f"{ts.dtype}")
        den = ts["denominator"].astype(np.int64)
        if np.any(ts["numerator"] < 1) or np.any((den < 1) | (den & (den - 1) != 0)):
            raise ValueError("time signatures need numerator >= 1 and a power-of-two denominator")

    @property
    def notes_end_s(self) -> float:
        """Time of the last note end, in seconds."""
        return max((t.end_s for t in self.tracks), default=0.0)

    @property
    def end_s(self) -> float:
        """Where the score ends, in seconds: its last note end or ``until_s``, the later."""
        return max(self.notes_end_s, float(self.until_s))

    @property
    def note_count(self) -> int:
        return sum(len(t.notes) for t in self.tracks)


class TickClock:
    """Ticks to seconds in float64 through the tempo map (exact, unlike float32 conversions)."""

    def __init__(self, tick: np.ndarray, mspq: np.ndarray, ticks_per_quarter: int) -> None:
        if len(tick) == 0 or tick[0] > 0:
            tick = np.concatenate([[0], tick])
            mspq = np.concatenate([[6e7 / DEFAULT_QPM], mspq])
        self.tick = tick.astype(np.int64)
        self.mspq = mspq.astype(np.float64)
        seconds_per_tick = self.mspq / 1e6 / ticks_per_quarter
        self.seconds_per_tick = seconds_per_tick
        self.start_s = np.concatenate([[0.0], np.cumsum(np.diff(self.tick) * seconds_per_tick[:-1])])

    def __call__(self, ticks: np.ndarray) -> np.ndarray:
        if len(self.tick) == 1:
            return ticks * self.seconds_per_tick[0]
        i = np.searchsorted(self.tick, ticks, side="right") - 1
        return self.start_s[i] + (ticks - self.tick[i]) * self.seconds_per_tick[i]

    def ticks(self, seconds: np.ndarray) -> np.ndarray:
        """Seconds to the nearest tick (the inverse of calling the clock)."""
        i = np.searchsorted(self.start_s, seconds, side="right") - 1
        return self.tick[i] + np.rint((seconds - self.start_s[i]) / self.seconds_per_tick[i]
                                      ).astype(np.int64)


def check_duration(score: Score, max_seconds: float | None, path: str = "<score>") -> None:
    """Raise :class:`MidiReadError` if ``score`` ends (see :attr:`Score.end_s`) after
    ``max_seconds``."""
    end_s = score.end_s
    if max_seconds is not None and end_s > max_seconds:
        cause = ("its last note ends at {:.0f} s, likely a corrupt delta time or tempo"
                 if score.notes_end_s >= end_s else "its trailing silence ends at {:.0f} s")
        raise MidiReadError(path, f"longer than {_hours(max_seconds)} ({_hours(end_s)}): "
                            f"{cause.format(end_s)} (max_seconds allows longer files)")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.3g} h" if seconds < 3.6e6 else f"{seconds / 3600:.0f} h"
