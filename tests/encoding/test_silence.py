"""Decoding keeps trailing silence: a stream lasts until the end of its last time shift, and the
written file (end of track) lasts as long, for mido and pretty_midi alike."""

import mido
import numpy as np
import pytest

from melodia.encoding import get_encoding
from melodia.midi import MAX_SILENCE_END_S, Score, Track, make_notes, read_midi, write_midi
from tests.conftest import real_midi_files

PIANO = get_encoding("piano")
SHIFT_1S = 355  # TIME_SHIFT 100 steps = 1 s, the longest shift
SHIFT_10MS = 256  # TIME_SHIFT 1 step


def tick_s(path) -> float:
    """Seconds of one tick of a written file, at its last tempo."""
    midi = mido.MidiFile(path)
    tempo = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"][-1]
    return mido.tick2second(1, midi.ticks_per_beat, tempo)


def written(score: Score, tmp_path, name="out.mid"):
    """Write ``score``, read it back with mido and pretty_midi; return the path and mido's length."""
    import pretty_midi

    path = write_midi(score, tmp_path / name)
    pretty_midi.PrettyMIDI(str(path))  # reads (no tick past its 1e7 limit)
    return path, mido.MidiFile(path).length


@pytest.mark.parametrize("name", ["piano", "band"])
@pytest.mark.parametrize("n", [1, 7, 600])
def test_only_time_shifts_last_n_shifts(tmp_path, name, n):
    score = get_encoding(name).decode([SHIFT_1S] * n)
    assert score.note_count == 0 and score.end_s == n
    path, length = written(score, tmp_path)
    assert length == pytest.approx(n, abs=tick_s(path))


def test_three_hours_of_shifts_last_three_hours(tmp_path):
    score = PIANO.decode([SHIFT_1S] * 10800)
    path, length = written(score, tmp_path)
    assert mido.MidiFile(path).ticks_per_beat < 480  # lowered to stay under 1e7 ticks
    assert length == pytest.approx(10800.0, abs=tick_s(path))


def test_silence_past_24_hours_is_cut_there(tmp_path):
    score = PIANO.decode([SHIFT_1S] * 100_000)  # 27.8 h
    assert score.end_s == 100_000
    path, length = written(score, tmp_path)
    assert length == pytest.approx(MAX_SILENCE_END_S, abs=tick_s(path))
    assert tick_s(path) < 0.01  # still finer than a time step


@pytest.mark.parametrize("name", ["piano", "band"])
def test_real_piece_with_trailing_shifts_keeps_notes_and_lasts_to_the_end(tmp_path, name):
    enc = get_encoding(name)
    ids = enc.encode(real_midi_files()[0]).tolist()
    tail = [SHIFT_1S] * 5 + [SHIFT_10MS + 44]  # 5.45 s of silence
    plain, padded = enc.decode(ids), enc.decode(ids + tail)
    assert padded.end_s == pytest.approx(plain.end_s + 5.45)
    for a, b in zip(plain.tracks, padded.tracks, strict=True):
        assert np.array_equal(a.notes, b.notes)
    path, length = written(padded, tmp_path)
    assert length == pytest.approx(padded.end_s, abs=tick_s(path))
    back = read_midi(path)
    assert back.note_count == plain.note_count
    assert back.end_s == pytest.approx(plain.end_s, abs=0.002)  # the notes, not the silence
    assert enc.encode(path).tolist() == enc.encode(write_midi(plain, tmp_path / "p.mid")).tolist()


def test_stream_ending_on_a_note_off_has_no_extra_silence(tmp_path):
    score = PIANO.decode([60, SHIFT_10MS + 49, 188])  # C4 for 0.5 s
    assert score.end_s == pytest.approx(0.5) and score.until_s == pytest.approx(0.5)
    path, length = written(score, tmp_path)
    assert length == pytest.approx(0.5, abs=tick_s(path))


def test_until_s_never_shortens_a_score(tmp_path):
    notes = make_notes([0.0], [2.0], [60], [80])
    score = Score(tracks=[Track(notes=notes)], until_s=1.0)
    assert score.end_s == 2.0 and score.notes_end_s == 2.0
    assert written(score, tmp_path)[1] == pytest.approx(2.0, abs=0.002)
    assert Score(until_s=3.5).end_s == 3.5
    with pytest.raises(ValueError, match="until_s"):
        Score(until_s=-1.0)
    with pytest.raises(ValueError, match="until_s"):
        Score(until_s=float("nan"))


def test_top_level_decode_reads_back_as_pretty_midi():
    import melodia

    pm = melodia.decode([SHIFT_1S] * 3 + [60, SHIFT_1S])
    assert pm.get_end_time() == pytest.approx(4.0, abs=0.002)
