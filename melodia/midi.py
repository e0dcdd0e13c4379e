"""MIDI files in and out: plain value types for notes, tracks and tempo, in seconds.

Reading goes through symusic's C++ parser (fast, and tolerant of oddities that stop pure-Python
readers, such as key signatures with impossible mode bytes); before it runs, the file's chunk
structure is checked here so that bad input gets a :class:`~melodia.errors.MidiReadError` that
names the file and the reason. This module knows nothing of tokens or torch.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from melodia.errors import MidiReadError

#: One note per row. Times in seconds, ``end_s >= start_s``; pitch 0-127; velocity 1-127.
NOTE_DTYPE = np.dtype([("start_s", "f8"), ("end_s", "f8"), ("pitch", "i2"), ("velocity", "i2")])
#: Sustain pedal (MIDI CC64) changes: time in seconds and controller value 0-127.
PEDAL_DTYPE = np.dtype([("time_s", "f8"), ("value", "i2")])
#: Tempo changes: time in seconds and quarter notes per minute.
TEMPO_DTYPE = np.dtype([("time_s", "f8"), ("qpm", "f8")])

DRUM_CHANNEL = 9  # General MIDI percussion: channel 10, counted from 1
DEFAULT_QPM = 120.0
DEFAULT_TICKS_PER_QUARTER = 480


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


@dataclass
class Score:
    """A whole MIDI file: tracks plus the tempo map (used when writing ticks)."""

    tracks: list[Track] = field(default_factory=list)
    tempos: np.ndarray = field(
        default_factory=lambda: np.array([(0.0, DEFAULT_QPM)], dtype=TEMPO_DTYPE)
    )

    @property
    def end_s(self) -> float:
        """Time of the last note end, in seconds."""
        return max((t.end_s for t in self.tracks), default=0.0)

    @property
    def note_count(self) -> int:
        return sum(len(t.notes) for t in self.tracks)


# ----------------------------------------------------------------------------------- reading


def _check_structure(data: bytes, path: str) -> None:
    """Walk the chunk headers so structural damage gets a precise message."""
    if len(data) == 0:
        raise MidiReadError(path, "the file is empty (0 bytes)")
    if data[:4] != b"MThd":
        raise MidiReadError(path, "not a MIDI file (it does not start with an 'MThd' header)")
    if len(data) < 14:
        raise MidiReadError(path, f"truncated header ({len(data)} bytes, a MIDI header needs 14)")
    header_len, fmt, ntracks, division = struct.unpack(">IHHH", data[4:14])
    if fmt > 2:
        raise MidiReadError(path, f"unknown MIDI format {fmt} (expected 0, 1 or 2)")
    if division == 0:
        raise MidiReadError(path, "the header gives 0 ticks per quarter note")
    if division & 0x8000:
        raise MidiReadError(path, "SMPTE time division is not supported (only ticks per quarter)")
    pos, found = 8 + header_len, 0
    while pos + 8 <= len(data) and found < ntracks:
        chunk_len = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        if data[pos : pos + 4] == b"MTrk":
            found += 1
            if pos + 8 + chunk_len > len(data):
                raise MidiReadError(
                    path,
                    f"truncated: track {found} of {ntracks} claims {chunk_len} bytes but only "
                    f"{len(data) - pos - 8} remain",
                )
        pos += 8 + chunk_len
    if found == 0 and ntracks > 0:
        raise MidiReadError(path, f"the header announces {ntracks} track(s) but the file holds none")


def _explain(message: str) -> str:
    if "control_value" in message or "data byte" in message:
        return f"bad data byte ({message}; MIDI data bytes must be 0-127)"
    return f"malformed MIDI data ({message})"


class _TickClock:
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


def _track_from_symusic(track, clock: _TickClock) -> Track:
    arrays = track.notes.numpy()
    start_tick = arrays["time"].astype(np.int64)
    notes = np.empty(len(start_tick), dtype=NOTE_DTYPE)
    notes["start_s"] = clock(start_tick)
    notes["end_s"] = clock(start_tick + np.maximum(arrays["duration"], 0))
    notes["pitch"] = arrays["pitch"]
    notes["velocity"] = arrays["velocity"]
    notes = notes[(notes["velocity"] > 0) & (notes["pitch"] >= 0)]
    controls = track.controls.numpy()
    is_pedal = controls["number"] == 64
    pedal = np.empty(int(is_pedal.sum()), dtype=PEDAL_DTYPE)
    pedal["time_s"] = clock(controls["time"][is_pedal].astype(np.int64))
    pedal["value"] = controls["value"][is_pedal]
    return Track(notes=notes, program=int(track.program), is_drum=bool(track.is_drum),
                 name=str(track.name), pedal=pedal)


def read_midi(source: str | Path | bytes) -> Score:
    """Read a type 0 or type 1 MIDI file (a path or its bytes) into a :class:`Score`.

    Times are computed in float64 from the file's ticks and tempo map.

    Raises
    ------
    MidiReadError
        The file is missing, empty, truncated, not MIDI, or holds bad data bytes.
    """
    import symusic

    if isinstance(source, bytes):
        path, data = "<bytes>", source
    else:
        path = str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as err:
            raise MidiReadError(path, err.strerror or str(err)) from None
    _check_structure(data, path)
    try:
        raw = symusic.Score.from_midi(data)
    except (RuntimeError, ValueError) as err:
        raise MidiReadError(path, _explain(str(err))) from None
    tempos = raw.tempos.numpy()
    clock = _TickClock(tempos["time"], tempos["mspq"], raw.ticks_per_quarter)
    tempo_map = np.empty(len(clock.tick), dtype=TEMPO_DTYPE)
    tempo_map["time_s"] = clock.start_s
    tempo_map["qpm"] = 6e7 / clock.mspq
    return Score(tracks=[_track_from_symusic(t, clock) for t in raw.tracks], tempos=tempo_map)


# ----------------------------------------------------------------------------------- writing


def _to_symusic(score: Score, ticks_per_quarter: int):
    import symusic

    out = symusic.Score(ticks_per_quarter, ttype="second")
    for time_s, qpm in score.tempos:
        out.tempos.append(symusic.Tempo(float(time_s), float(qpm), ttype="second"))
    for track in score.tracks:
        st = symusic.Track(name=track.name, program=track.program, is_drum=track.is_drum,
                           ttype="second")
        n = track.notes
        st.notes = symusic.Note.from_numpy(
            time=n["start_s"].astype(np.float32),
            duration=(n["end_s"] - n["start_s"]).astype(np.float32),
            pitch=n["pitch"].astype(np.int8),
            velocity=n["velocity"].astype(np.int8),
            ttype="second",
        )
        for time_s, value in track.pedal:
            st.controls.append(symusic.ControlChange(float(time_s), 64, int(value), ttype="second"))
        out.tracks.append(st)
    return out


def midi_bytes(score: Score, ticks_per_quarter: int = DEFAULT_TICKS_PER_QUARTER) -> bytes:
    """Serialize a score to Standard MIDI File bytes (type 1, one track per :class:`Track`)."""
    if len(score.tracks) > 16:
        raise ValueError(f"a MIDI file holds at most 16 channels; this score has "
                         f"{len(score.tracks)} tracks")
    return bytes(_to_symusic(score, ticks_per_quarter).dumps_midi())


def write_midi(score: Score, path: str | Path,
               ticks_per_quarter: int = DEFAULT_TICKS_PER_QUARTER) -> Path:
    """Write a score as a type 1 MIDI file keeping tempo, programs and the drum channel."""
    path = Path(path)
    data = midi_bytes(score, ticks_per_quarter)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def to_pretty_midi(score: Score):
    """Convert to a ``pretty_midi.PrettyMIDI`` (through MIDI bytes, so the tempo map survives)."""
    import pretty_midi

    return pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes(score)))


def from_pretty_midi(pm) -> Score:
    """Convert a ``pretty_midi.PrettyMIDI`` object into a :class:`Score`."""
    buffer = io.BytesIO()
    pm.write(buffer)
    return read_midi(buffer.getvalue())


def load_score(source) -> Score:
    """Accept a :class:`Score`, a path, MIDI bytes or a ``PrettyMIDI`` and return a :class:`Score`."""
    if isinstance(source, Score):
        return source
    if isinstance(source, (str, Path, bytes)):
        return read_midi(source)
    if hasattr(source, "instruments") and hasattr(source, "write"):
        return from_pretty_midi(source)
    raise TypeError(f"expected a Score, a path, MIDI bytes or a PrettyMIDI, got {type(source)!r}")
