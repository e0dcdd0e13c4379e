"""Infill on real files: the span regenerated, everything outside it kept, seams measured."""

import numpy as np
import pytest

from melodia.encoding import BandEncoding
from melodia.errors import GenerateError
from melodia.generation.config import GenerateConfig
from melodia.generation.guide import BarGuide, Segment, bar_onsets
from melodia.generation.infill import (filled, infill, infill_ids, prefix_context, select_tracks,
                                       stand_ins)
from melodia.midi import Score, Track, make_notes, midi_bytes, read_midi
from melodia.midi.bars import bar_span
from tests.conftest import DATA

DOOM = DATA / "freedoom" / "doom1_D_E1M1.mid"


def _crop(path, seconds):
    score = read_midi(path)
    tracks = []
    for t in score.tracks:
        notes = t.notes[t.notes["start_s"] < seconds].copy()
        notes["end_s"] = np.minimum(notes["end_s"], seconds)
        tracks.append(Track(notes, program=t.program, is_drum=t.is_drum, name=t.name))
    return midi_bytes(Score(tracks, tempos=score.tempos, time_signatures=score.time_signatures))


def test_select_tracks_by_family_name_and_drums():
    score = read_midi(DOOM)
    assert select_tracks(score, "bass,drums") == [2, 7]
    assert select_tracks(score, "MIDI out #5") == [3]
    assert select_tracks(score, None) == list(range(8))
    with pytest.raises(GenerateError, match="unknown part 'kazoo'"):
        select_tracks(score, "kazoo")
    with pytest.raises(GenerateError, match="the song has no organ track; it has: "):
        select_tracks(score, "organ")


def test_stand_ins_give_a_shared_program_its_own_instrument():
    notes = make_notes([0.0], [1.0], [40], [90])
    score = Score([Track(notes, program=33, name="Bass"), Track(notes, program=33, name="Walk"),
                   Track(notes, is_drum=True)])
    assert stand_ins(score, [0]) == {0: 32}  # the kept Walk plays 33
    assert stand_ins(score, [0, 1]) == {0: 33, 1: 32}
    with pytest.raises(GenerateError, match="two drum tracks"):
        stand_ins(Score([*score.tracks, Track(notes, is_drum=True)]), [2])


def test_prefix_context_ends_at_the_span_with_the_notes_cut_there():
    encoding = BandEncoding()
    score = read_midi(_crop(DOOM, 8.0))
    ids = prefix_context(score, encoding, 300)
    decoded = encoding.decode(ids)
    assert encoding.vocab.decode_event(int(ids[0])).type == "TEMPO"
    assert abs(encoding.stream_end_s(ids) - 3.0) < 1e-9
    assert decoded.notes_end_s <= 3.0 + 1e-9 and decoded.note_count > 0
    starts = sorted(np.concatenate([t.notes["start_s"] for t in decoded.tracks]).round(2))
    original = np.concatenate([t.notes["start_s"] for t in score.tracks])
    assert len(starts) == int(np.sum(np.floor(original * 100 + 0.5) < 300))


def test_filled_replaces_only_the_span():
    notes = make_notes([0.0, 1.5, 2.5, 4.0], [0.5, 2.2, 3.0, 4.5], [60, 62, 64, 65], [80] * 4)
    score = Score([Track(notes, name="a"), Track(notes.copy(), program=33, name="b")])
    new = Track(make_notes([2.0], [2.5], [70], [90]))
    out = filled(score, {0: new}, 2.0, 4.0)
    assert out.tracks[1] is score.tracks[1]
    kept = out.tracks[0].notes
    assert kept["pitch"].tolist() == [60, 62, 70, 65]
    assert kept["end_s"].tolist() == [0.5, 2.0, 2.5, 4.5]  # the note held into the span is cut


def test_bar_guide_bonus_at_the_reference_onsets():
    encoding = BandEncoding()
    q = encoding.quantize(Score([Track(make_notes([0.0, 0.5], [0.4, 0.9], [36, 38], [90, 90]),
                                       is_drum=True)]))
    onsets = bar_onsets(q, 0, 200)
    assert onsets == {0: frozenset({(128, 36)}), 50: frozenset({(128, 38)})}
    guide = BarGuide(encoding, [Segment(400, 600, 400, 200, onsets)], 2, strength=4.0)
    bias = guide.bias(np.array([400, 420]), np.array([128, 33])).numpy()
    on = encoding.vocab.encode_event("NOTE_ON", 36)
    assert bias[0, on] == 4.0 and bias[1, on] == 0.0
    assert bias[1, encoding.vocab.encode_event("PROGRAM", 128)] == 0.0  # nothing due at 20
    assert bias[1, encoding.vocab.encode_event("TIME_SHIFT", 30)] == 4.0  # on to step 50
    assert bias[0, encoding.vocab.encode_event("TIME_SHIFT", 50)] == 4.0
    kinds, values = guide_tables(encoding)
    guide.update(np.array([on, on]), kinds, values, np.array([128, 33]))
    assert guide.bias(np.array([400, 420]), np.array([128, 33])).numpy()[0, on] == 0.0


def guide_tables(encoding):
    from melodia.generation.grammar import Grammar, GrammarConfig

    grammar = Grammar(encoding, GrammarConfig(), 1)
    return grammar.kinds, grammar.values


def test_infill_regenerates_the_span_and_keeps_the_rest():
    song = _crop(DOOM, 12.0)
    score = read_midi(song)
    result = infill_ids("band", song, "3-4", "bass,drums", GenerateConfig(seed=3), candidates=2)
    t0, t1 = result.span
    assert (t0, t1) == pytest.approx(bar_span(score, "3-4"))
    wanted = [i for i, t in enumerate(score.tracks) if t.is_drum or 32 <= t.program < 40]
    assert result.tracks == wanted and len(wanted) == 2
    assert len(result.seams) == 2 and 0 <= result.chosen < 2
    assert all(0.0 <= s <= 1.0 for pair in result.seams for s in pair)
    for i, (old, new) in enumerate(zip(score.tracks, result.score.tracks)):
        if i not in result.tracks:
            assert np.array_equal(old.notes, new.notes)
            continue
        outside = old.notes[(old.notes["start_s"] < t0) | (old.notes["start_s"] >= t1)]
        kept = new.notes[(new.notes["start_s"] < t0) | (new.notes["start_s"] >= t1)]
        assert np.array_equal(outside["start_s"], kept["start_s"])
        assert np.array_equal(outside["pitch"], kept["pitch"])
        assert np.all(kept["end_s"][kept["start_s"] < t0] <= t0 + 1e-9)
        inside = new.notes[(new.notes["start_s"] >= t0) & (new.notes["start_s"] < t1)]
        assert len(inside) and np.all(inside["end_s"] <= t1 + 1e-9)
    assert len(result.real) > 0


def test_infill_writes_a_file_that_reads_back(tmp_path):
    song = _crop(DATA / "chorales" / "bach__bwv1.6.mxl.mid", 16.0)
    result = infill(song, "2", model="piano", seed=1, candidates=2)
    path = result.write(tmp_path / "filled.mid")
    back = read_midi(path)
    assert len(back.tracks) == len(read_midi(song).tracks)
    t0, t1 = result.span
    inside = [n for t in back.tracks for n in t.notes if t0 - 0.01 <= n["start_s"] < t1 - 0.01]
    assert inside


def test_infill_bad_input_is_one_clear_error():
    song = _crop(DOOM, 12.0)
    with pytest.raises(GenerateError, match="past the end of the song"):
        infill(song, "40-41", seed=1)
    with pytest.raises(GenerateError, match="bars look like"):
        infill(song, "five", seed=1)
    with pytest.raises(GenerateError, match="no notes"):
        infill(midi_bytes(Score()), "1", seed=1)
    with pytest.raises(GenerateError, match="piano model fills every pitched track"):
        infill(song, "2", "bass", model="piano", seed=1)


def test_bar_guide_speaks_a_one_instrument_encoding():
    from melodia.encoding import get_encoding

    encoding = get_encoding("piano")
    q = encoding.quantize(Score([Track(make_notes([0.0, 0.5], [0.4, 0.9], [60, 64], [80, 80]))]))
    guide = BarGuide(encoding, [Segment(0, 200, 0, 200, bar_onsets(q, 0, 200))], 1, 3.0)
    bias = guide.bias(np.array([0]), np.array([0])).numpy()[0]
    on = encoding.vocab.offset("NOTE_ON") - encoding.vocab.range("NOTE_ON").min
    assert bias[on + 60] == 3.0 and bias[on + 64] == 0.0  # the onset due now, not the later one
    assert np.count_nonzero(bias) == 2  # and the TIME_SHIFT that reaches 0.5 s


def test_piano_form_variations_lean_on_the_bar_they_replace():
    from melodia.generation.form import form, section_matches

    song = form("AA", bars=4, model="piano", randomness=0.5, seed=3)
    again = section_matches(song)["A2"]
    varied = [again[k - 5] for k in song.varied[1]]
    assert len(varied) == 2 and all(0 < j < 1 for j in varied)  # varied, yet near the original
