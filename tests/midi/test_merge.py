"""New tracks beside a file's own, which stay byte for byte."""

import io

import mido
import numpy as np
import pytest

from melodia.errors import MidiReadError
from melodia.midi import Score, Track, make_notes, midi_bytes, read_midi
from melodia.midi.merge import add_tracks, file_clock, free_channels, split_chunks, track_chunks
from tests.conftest import DATA


def notes(pitch, start, end, velocity=None):
    """Notes from columns, pitch first (velocity 80 unless given)."""
    pitch = list(pitch)
    return make_notes(start, end, pitch, velocity if velocity is not None else [80] * len(pitch))



def _bass(pitches=(36, 43), start=0.0):
    times = start + np.arange(len(pitches)) * 0.5
    return Track(notes(list(pitches), times, times + 0.4, [90] * len(pitches)), program=33,
                 name="Bass")


def test_real_file_tracks_kept_byte_for_byte():
    original = (DATA / "freedoom" / "doom1_D_E1M1.mid").read_bytes()
    drums = Track(notes([36, 38], [0.0, 0.5], [0.1, 0.6]), is_drum=True, name="Drums")
    merged = add_tracks(original, [_bass(), drums])
    kept = track_chunks(original)
    assert track_chunks(merged)[: len(kept)] == kept
    assert len(track_chunks(merged)) == len(kept) + 2
    back = read_midi(merged)
    new = [t for t in back.tracks if t.name in ("Bass", "Drums")]
    assert sorted(t.name for t in new) == ["Bass", "Drums"]
    bass = next(t for t in new if t.name == "Bass")
    np.testing.assert_allclose(bass.notes["start_s"], [0.0, 0.5], atol=0.003)  # the file's tempo


def test_new_melodic_tracks_take_free_channels_and_drums_ten():
    original = (DATA / "freedoom" / "doom1_D_E1M1.mid").read_bytes()
    _, used = file_clock(original)
    drums = Track(notes([36], [0.0], [0.1]), is_drum=True)
    channels = free_channels([_bass(), drums], used)
    assert channels[0] not in used and channels[0] != 9 and channels[1] == 9
    midi = mido.MidiFile(file=io.BytesIO(add_tracks(original, [_bass(), drums])))
    last = [m for m in midi.tracks[-2] if m.type == "note_on"]
    assert {m.channel for m in last} == {channels[0]}


def test_type_0_file_becomes_type_1_with_its_track_first():
    midi = mido.MidiFile(type=0, ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1_000_000),
                            mido.Message("note_on", note=60, velocity=70, channel=0, time=0),
                            mido.Message("note_off", note=60, channel=0, time=96)])
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    original = buffer.getvalue()
    merged = add_tracks(original, [_bass(start=1.0)])
    header, _ = split_chunks(merged)
    assert header == (1, 2, 96) and track_chunks(merged)[0] == track_chunks(original)[0]
    bass = [t for t in read_midi(merged).tracks if t.program == 33][0]
    np.testing.assert_allclose(bass.notes["start_s"], [1.0, 1.5], atol=0.011)  # 60 qpm ticks


def test_no_free_channel_is_one_clear_error():
    tracks = [Track(notes([60], [0.0], [1.0]), program=p) for p in range(15)]
    original = midi_bytes(Score(tracks))
    with pytest.raises(ValueError, match="every MIDI channel"):
        add_tracks(original, [_bass()])


def test_not_midi_is_refused():
    with pytest.raises(MidiReadError, match="not a Standard MIDI File"):
        add_tracks(b"hello world, not midi", [_bass()])
