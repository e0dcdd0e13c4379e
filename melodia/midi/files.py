"""MIDI files in and out: :class:`~melodia.midi.score.Score` from and to Standard MIDI Files.

Reading goes through symusic's C++ parser (fast, and tolerant of oddities that stop pure-Python
readers, such as key signatures with impossible mode bytes); before it runs, the file's chunk
structure is checked here so that bad input gets a :class:`~melodia.errors.MidiReadError` that
names the file and the reason. Writing goes through mido, so that the file is laid out the way a
DAW expects (a tempo/time-signature track, one named track per instrument on its own channel).
This module knows nothing of tokens or torch.
"""

from __future__ import annotations

import io
import logging
import re
import stat
import struct
from pathlib import Path

import numpy as np

from melodia.errors import MidiReadError
from melodia.midi.score import (DEFAULT_QPM, DEFAULT_TICKS_PER_QUARTER, DRUM_CHANNEL,
                                MAX_FILE_BYTES, MAX_FILE_TICKS, MAX_SECONDS, MAX_SILENCE_END_S,
                                NOTE_DTYPE, PEDAL_DTYPE, TEMPO_DTYPE, TIME_SIGNATURE_DTYPE, Score,
                                TickClock, Track, check_duration, default_time_signatures,
                                instrument_name)

log = logging.getLogger(__name__)


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
    value = re.search(r"Get \w+=(\d+)", message)
    if "data byte" in message or (value and int(value.group(1)) > 127):
        return f"bad data byte ({message}; MIDI data bytes must be 0-127)"
    return f"malformed MIDI data ({message})"


def _track_from_symusic(track, clock: TickClock) -> Track:
    arrays = track.notes.numpy()
    start_tick = arrays["time"].astype(np.int64)
    controls = track.controls.numpy()
    if np.any(start_tick < 0) or np.any(controls["time"] < 0):
        raise ValueError("tick past 2^31")
    notes = np.empty(len(start_tick), dtype=NOTE_DTYPE)
    notes["start_s"] = clock(start_tick)
    notes["end_s"] = clock(start_tick + np.maximum(arrays["duration"], 0))
    notes["pitch"] = arrays["pitch"]
    notes["velocity"] = arrays["velocity"]
    notes = notes[(notes["velocity"] > 0) & (notes["pitch"] >= 0)]
    is_pedal = controls["number"] == 64
    pedal = np.empty(int(is_pedal.sum()), dtype=PEDAL_DTYPE)
    pedal["time_s"] = clock(controls["time"][is_pedal].astype(np.int64))
    pedal["value"] = controls["value"][is_pedal]
    return Track(notes=notes, program=int(track.program), is_drum=bool(track.is_drum),
                 name=str(track.name), pedal=pedal)


def _parse_symusic(data: bytes, path: str):
    """symusic's parse; a file with data bytes over 127 is read again through mido with
    ``clip=True`` (as other tools read it), with a warning."""
    import symusic

    try:
        return symusic.Score.from_midi(data)
    except (RuntimeError, ValueError) as err:
        error = MidiReadError(path, _explain(str(err)))
    try:
        import mido

        buffer = io.BytesIO()
        mido.MidiFile(file=io.BytesIO(data), clip=True).save(file=buffer)
        raw = symusic.Score.from_midi(buffer.getvalue())
    except Exception:
        raise error from None
    log.warning("%s: %s; read with data bytes clipped to 0-127", path, error.reason)
    return raw


def read_midi(source: str | Path | bytes, max_seconds: float | None = MAX_SECONDS,
              name: str | None = None) -> Score:
    """Read a type 0 or type 1 MIDI file (a path or its bytes) into a :class:`Score`.

    Times are computed in float64 from the file's ticks and tempo map. A file whose data bytes
    exceed 127 is read with them clipped (a warning is logged). ``max_seconds`` (default
    :data:`MAX_SECONDS`, 2 h; ``None`` = no limit) refuses files whose last note ends later.

    Raises
    ------
    MidiReadError
        The file is missing, empty, truncated, not MIDI, longer than ``max_seconds``, or its
        tick positions overflow (delta times past 2^31 ticks).
    """
    if isinstance(source, bytes):  # `name`: the file they came from, for messages
        path, data = name or "<bytes>", source
    else:
        path = str(source)
        data = read_file_bytes(Path(source))
    _check_structure(data, path)
    raw = _parse_symusic(data, path)
    tempos = raw.tempos.numpy()
    try:
        if np.any(tempos["time"] < 0) or np.any(tempos["mspq"] <= 0):
            raise ValueError("bad tempo")
        clock = TickClock(tempos["time"], tempos["mspq"], raw.ticks_per_quarter)
        tempo_map = np.empty(len(clock.tick), dtype=TEMPO_DTYPE)
        tempo_map["time_s"] = clock.start_s
        tempo_map["qpm"] = 6e7 / clock.mspq
        score = Score(tracks=[_track_from_symusic(t, clock) for t in raw.tracks],
                      tempos=tempo_map, time_signatures=_time_signatures_from_symusic(raw, clock))
    except ValueError:
        raise MidiReadError(path, "tick positions overflow: delta times add up past 2^31 ticks, "
                            "or a tempo is zero") from None
    check_duration(score, max_seconds, path)
    struck = 0 if score.note_count else _count_note_ons(data)  # not silently "0 notes"
    if struck:
        raise MidiReadError(path, f"it strikes {struck} notes but none could be read: they "
                            "have no note-off, or lie past 2^31 ticks")
    return score


def read_file_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A file's bytes, refusing what is not a regular file or is over ``limit`` before reading."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise MidiReadError(path, "not a regular file (a folder, device or pipe)")
        if info.st_size > limit:
            raise MidiReadError(path, f"{info.st_size / 2**20:,.0f} MiB, more than any MIDI file "
                                f"(the limit is {limit / 2**20:.0f} MiB)")
        with path.open("rb") as f:
            return f.read(limit + 1)[:limit]
    except OSError as err:
        raise MidiReadError(path, err.strerror or str(err)) from None


def _count_note_ons(data: bytes) -> int:
    """Sounding note-ons in MIDI bytes, read with mido (only asked when symusic found none)."""
    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception:  # a file symusic read but mido cannot: nothing more to say
        return 0
    return sum(m.type == "note_on" and m.velocity > 0 for t in midi.tracks for m in t)


def _time_signatures_from_symusic(raw, clock: TickClock) -> np.ndarray:
    """The file's time signatures in seconds, with 4/4 at 0 s when it gives none there."""
    found = raw.time_signatures.numpy()
    out = np.empty(len(found["time"]), dtype=TIME_SIGNATURE_DTYPE)
    out["time_s"] = clock(found["time"].astype(np.int64))
    out["numerator"], out["denominator"] = found["numerator"], found["denominator"]
    out = out[(out["numerator"] >= 1) & (out["denominator"] >= 1)]
    if not len(out) or out["time_s"][0] > 0:
        out = np.concatenate([default_time_signatures(), out])
    return out


# ----------------------------------------------------------------------------------- writing


def file_channels(score: Score) -> list[int]:
    """MIDI channel of each track in a file: every drum track on 9 (General MIDI channel 10),
    melodic tracks on 0-8 and 10-15 in order, so tracks sharing a program stay apart."""
    melodic = iter(c for c in range(16) if c != DRUM_CHANNEL)
    n_melodic = sum(not t.is_drum for t in score.tracks)
    if n_melodic > 15:
        raise ValueError(f"a MIDI file has 15 melodic channels; this score has {n_melodic} "
                         "melodic tracks")
    return [DRUM_CHANNEL if t.is_drum else next(melodic) for t in score.tracks]


def _mspq(qpm: float) -> int:
    """Microseconds per quarter note as a MIDI tempo event holds it (3 bytes)."""
    return int(np.clip(round(6e7 / qpm), 1, 0xFFFFFF))


def _tempo_clock(score: Score, ticks_per_quarter: int) -> tuple[TickClock, list]:
    """The tick clock of the file to write and its tempo meta events (the first at tick 0)."""
    import mido

    tempos = np.sort(score.tempos, order="time_s", kind="stable")
    if not len(tempos) or tempos["time_s"][0] > 0:
        tempos = np.concatenate([np.array([(0.0, DEFAULT_QPM)], TEMPO_DTYPE), tempos])
    tempos["time_s"][0] = 0.0
    tick, mspq, start_s = [0], [_mspq(tempos["qpm"][0])], 0.0
    for time_s, qpm in tempos[1:]:
        seconds_per_tick = mspq[-1] / 1e6 / ticks_per_quarter
        at = tick[-1] + int(round((time_s - start_s) / seconds_per_tick))
        if at == tick[-1]:  # two changes on one tick: the later one holds
            mspq[-1] = _mspq(qpm)
            continue
        start_s += (at - tick[-1]) * seconds_per_tick
        tick.append(at)
        mspq.append(_mspq(qpm))
    events = [(t, 0, mido.MetaMessage("set_tempo", tempo=m))
              for t, m in zip(tick, mspq)]
    return TickClock(np.array(tick), np.array(mspq, dtype=np.float64), ticks_per_quarter), events


def _conductor_track(score: Score, clock: TickClock, tempo_events: list, end_tick: int):
    """Track 0 of the file: the tempo map and time signatures, no notes."""
    import mido

    ts = np.sort(score.time_signatures, order="time_s", kind="stable")
    if not len(ts) or ts["time_s"][0] > 0:
        ts = np.concatenate([default_time_signatures(), ts])
    ticks = clock.ticks(np.maximum(ts["time_s"], 0.0))
    ticks[0] = 0
    events = [(int(t), 0, mido.MetaMessage("time_signature", numerator=int(n), denominator=int(d)))
              for t, n, d in zip(ticks, ts["numerator"], ts["denominator"])]
    return _midi_track(events + tempo_events, end_tick)


def instrument_track(track: Track, channel: int, clock: TickClock, end_tick: int):
    """One instrument: its name, program change at tick 0, sustain pedal and notes.

    At one tick, pedal changes come first, then note-offs, then note-ons, and the note-off of a
    note shorter than a tick after its own note-on, so nothing is left hanging.
    """
    import mido

    n = track.notes
    on, off = clock.ticks(n["start_s"]), clock.ticks(n["end_s"])
    name = track.name or instrument_name(track.program, track.is_drum)
    name = name.encode("latin-1", "replace").decode("latin-1")  # what a MIDI text event holds
    events = [(0, 0, mido.MetaMessage("track_name", name=name)),
              (0, 1, mido.Message("program_change", channel=channel, program=track.program))]
    events += [(int(t), 2, mido.Message("control_change", channel=channel, control=64,
                                        value=int(v)))
               for t, v in zip(clock.ticks(track.pedal["time_s"]), track.pedal["value"])]
    events += [(int(t1), 3 if t1 > t0 else 5, mido.Message("note_off", channel=channel,
                                                           note=int(p)))
               for t0, t1, p in zip(on, off, n["pitch"])]
    events += [(int(t), 4, mido.Message("note_on", channel=channel, note=int(p), velocity=int(v)))
               for t, p, v in zip(on, n["pitch"], n["velocity"])]
    return _midi_track(events, end_tick)


def _midi_track(events: list, end_tick: int = 0):
    """``(tick, order, message)`` rows -> a ``mido.MidiTrack`` in time order, with delta times,
    ending at ``end_tick`` (or at its last event, if later)."""
    import mido

    out, now = mido.MidiTrack(), 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        message.time = tick - now
        out.append(message)
        now = tick
    out.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return out


def _file_end_s(score: Score) -> float:
    """Where a written file ends: its last event, or the score's end (trailing silence
    included, up to :data:`MAX_SILENCE_END_S`) if later."""
    last_event_s = max([score.notes_end_s, float(score.tempos["time_s"].max(initial=0.0)),
                        float(score.time_signatures["time_s"].max(initial=0.0))]
                       + [float(t.pedal["time_s"].max(initial=0.0)) for t in score.tracks])
    return max(last_event_s, min(score.end_s, MAX_SILENCE_END_S))


def _fitting_ticks_per_quarter(end_s: float, score: Score, ticks_per_quarter: int) -> int:
    """``ticks_per_quarter``, lowered where needed so the file's last tick (at ``end_s``) stays
    under :data:`MAX_FILE_TICKS` (a piece of more than ~2.9 h at 480 per quarter and 120 qpm)."""
    clock, _ = _tempo_clock(score, ticks_per_quarter)
    last_tick = int(clock.ticks(np.array([end_s]))[0])
    if last_tick < MAX_FILE_TICKS - 1:
        return ticks_per_quarter
    fitting = max(1, ticks_per_quarter * (MAX_FILE_TICKS - 2) // (last_tick + 1))
    log.info("%.1f h of music: writing %d ticks per quarter note instead of %d so the file "
             "stays under %d ticks", end_s / 3600, fitting, ticks_per_quarter, MAX_FILE_TICKS)
    return fitting


def midi_bytes(score: Score, ticks_per_quarter: int = DEFAULT_TICKS_PER_QUARTER) -> bytes:
    """Serialize a score to Standard MIDI File bytes, ready for a DAW.

    Type 1: track 0 holds the tempo map and time signatures (the first of each at tick 0, 120 qpm
    and 4/4 when the score has none there); then one track per :class:`Track`, named (its
    ``name``, else the General MIDI instrument name, drums ``"Drums"``), opening with its program
    change. Drum tracks play on channel 9 (General MIDI channel 10), melodic tracks each on
    their own channel (see :func:`file_channels`).

    Raises
    ------
    ValueError
        More than 15 melodic tracks (MIDI has 16 channels, one of them for drums).

    A piece too long for ``ticks_per_quarter`` to keep the last tick under
    :data:`MAX_FILE_TICKS` is written with fewer ticks per quarter, so readers such as
    pretty_midi accept it. Every track ends (``end_of_track``) at :attr:`Score.end_s`, so
    trailing silence lasts in a DAW and in ``mido.MidiFile.length``; silence is kept up to
    :data:`MAX_SILENCE_END_S` (24 h) and cut there.
    """
    import mido

    channels = file_channels(score)
    end_s = _file_end_s(score)
    ticks_per_quarter = _fitting_ticks_per_quarter(end_s, score, ticks_per_quarter)
    clock, tempo_events = _tempo_clock(score, ticks_per_quarter)
    end_tick = int(clock.ticks(np.array([end_s]))[0])
    out = mido.MidiFile(type=1, ticks_per_beat=ticks_per_quarter)
    out.tracks.append(_conductor_track(score, clock, tempo_events, end_tick))
    for track, channel in zip(score.tracks, channels):
        out.tracks.append(instrument_track(track, channel, clock, end_tick))
    buffer = io.BytesIO()
    out.save(file=buffer)
    return buffer.getvalue()


def write_midi(score: Score, path: str | Path,
               ticks_per_quarter: int = DEFAULT_TICKS_PER_QUARTER) -> Path:
    """Write a score as a type 1 MIDI file (see :func:`midi_bytes`): tempo map, time signatures,
    one named track per instrument with its program, drums on channel 10."""
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
    return read_midi(buffer.getvalue(), max_seconds=None)


def load_score(source, max_seconds: float | None = MAX_SECONDS) -> Score:
    """Accept a :class:`Score`, a path, MIDI bytes, a binary file object, a ``mido.MidiFile``
    or a ``PrettyMIDI`` and return a :class:`Score`.

    Files (and scores) whose last note ends after ``max_seconds`` raise :class:`MidiReadError`.
    """
    if isinstance(source, Score):
        check_duration(source, max_seconds)
        return source
    if isinstance(source, (str, Path, bytes)):
        return read_midi(source, max_seconds)
    if hasattr(source, "read"):  # an open binary file, io.BytesIO
        return read_midi(bytes(source.read()), max_seconds)
    if hasattr(source, "tracks") and hasattr(source, "ticks_per_beat") and hasattr(source, "save"):
        import io  # a mido.MidiFile

        buffer = io.BytesIO()
        source.save(file=buffer)
        return read_midi(buffer.getvalue(), max_seconds)
    if hasattr(source, "instruments") and hasattr(source, "write"):
        score = from_pretty_midi(source)
        check_duration(score, max_seconds)
        return score
    raise TypeError(f"expected a Score, a path, MIDI bytes or a PrettyMIDI, got {type(source)!r}")
