"""New parts added to a MIDI file whose own tracks stay byte for byte as they were.

Accompaniment and infill keep what the musician brought exactly: the file's track chunks are
copied verbatim (notes, times, velocities, programs, tempo map, names, controllers, anything
a DAW wrote), and the new parts follow as tracks of their own, in the file's ticks and tempo
map, each on a MIDI channel the file leaves free (drums on channel 10). A type 0 file becomes
type 1 with its one track first, unchanged.

>>> from melodia.midi import Score, Track, make_notes, midi_bytes
>>> song = midi_bytes(Score([Track(make_notes([0.0], [1.0], [60], [80]), program=0)]))
>>> bass = Track(make_notes([0.0], [1.0], [36], [90]), program=33)
>>> merged = add_tracks(song, [bass])
>>> track_chunks(merged)[:2] == track_chunks(song)
True
"""

from __future__ import annotations

import io
import struct

import numpy as np

from melodia.errors import MidiReadError
from melodia.midi.files import instrument_track
from melodia.midi.score import DRUM_CHANNEL, TickClock, Track


def split_chunks(data: bytes, path: str = "<bytes>") -> tuple[tuple[int, int, int], list[bytes]]:
    """The header ``(format, tracks, division)`` and every chunk after it, each whole (type,
    length and body) as the file holds it."""
    if len(data) < 14 or data[:4] != b"MThd":
        raise MidiReadError(path, "not a Standard MIDI File (no MThd header)")
    length = struct.unpack(">I", data[4:8])[0]
    fmt, ntrks, division = struct.unpack(">HHH", data[8:14])
    chunks, at = [], 8 + length
    while at + 8 <= len(data):
        size = struct.unpack(">I", data[at + 4 : at + 8])[0]
        chunks.append(data[at : at + 8 + size])
        at += 8 + size
    return (fmt, ntrks, division), chunks


def track_chunks(data: bytes) -> list[bytes]:
    """The ``MTrk`` chunks of a MIDI file, verbatim."""
    return [c for c in split_chunks(data)[1] if c[:4] == b"MTrk"]


def file_clock(data: bytes, path: str = "<bytes>") -> tuple[TickClock, set[int]]:
    """The file's tick clock (its tempo map, from every track) and the channels it uses."""
    import mido

    (fmt, _, division) = split_chunks(data, path)[0]
    if division & 0x8000:
        raise MidiReadError(path, "its time is in SMPTE frames, not beats; save it with "
                            "ticks per beat to add parts to it")
    if fmt == 2:
        raise MidiReadError(path, "a type 2 MIDI file holds independent songs; add parts to "
                            "one of them saved as type 0 or 1")
    try:
        midi = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except (OSError, ValueError, EOFError, KeyError, IndexError) as err:
        raise MidiReadError(path, f"its tracks could not be read for merging ({err})") from None
    tempos, channels = [], set()
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                tempos.append((tick, message.tempo))
            elif hasattr(message, "channel"):
                channels.add(int(message.channel))
    tempos.sort(key=lambda t: t[0])
    ticks = np.array([t for t, _ in tempos], dtype=np.int64)
    mspq = np.array([m for _, m in tempos], dtype=np.float64)
    keep = np.append(ticks[1:] != ticks[:-1], True) if len(ticks) else np.zeros(0, bool)
    return TickClock(ticks[keep], mspq[keep], division), channels


def free_channels(tracks: list[Track], used: set[int]) -> list[int]:
    """A channel for each new track: drums on 10, melodic ones on channels the file leaves free."""
    free = iter(c for c in range(16) if c != DRUM_CHANNEL and c not in used)
    out = []
    for track in tracks:
        if track.is_drum:
            out.append(DRUM_CHANNEL)
            continue
        channel = next(free, None)
        if channel is None:
            raise ValueError("the file uses every MIDI channel: no channel is left for "
                             f"{track.name or 'a new part'}")
        out.append(channel)
    return out


def add_tracks(original: bytes, tracks: list[Track], end_s: float | None = None,
               path: str = "<bytes>") -> bytes:
    """``original`` (MIDI file bytes) with ``tracks`` appended as new track chunks; every chunk
    of ``original`` is kept byte for byte, in its order. The new tracks end at ``end_s``
    (default: their last note)."""
    import mido

    header, chunks = split_chunks(original, path)
    clock, used = file_clock(original, path)
    channels = free_channels(tracks, used)
    last = max([float(t.end_s) for t in tracks] + [end_s or 0.0])
    end_tick = int(clock.ticks(np.array([last]))[0])
    extra = mido.MidiFile(type=1, ticks_per_beat=header[2])
    for track, channel in zip(tracks, channels):
        extra.tracks.append(instrument_track(track, channel, clock, end_tick))
    buffer = io.BytesIO()
    extra.save(file=buffer)
    new = track_chunks(buffer.getvalue())
    n_tracks = sum(c[:4] == b"MTrk" for c in chunks) + len(new)
    head = b"MThd" + struct.pack(">IHHH", 6, 1, n_tracks, header[2])
    return head + b"".join(chunks) + b"".join(new)


__all__ = ["add_tracks", "file_clock", "free_channels", "split_chunks", "track_chunks"]
