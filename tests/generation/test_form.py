"""Song form with the shipped models: returning sections replay, new ones differ, the file
holds every bar at the band's tempo."""

import numpy as np
import pretty_midi
import pytest

from melodia.errors import GenerateError
from melodia.generation.form import (copy_span, form, parse_form, place, section_matches,
                                     variation_of, varied_bars)
from melodia.midi import Score, Track, make_notes


def test_parse_form_takes_letters_only():
    assert parse_form(" aab a ") == "AABA"
    for bad in ("", "A-B", "A1", "ÄB", "A" * 33):
        with pytest.raises(GenerateError):
            parse_form(bad)


def test_variation_from_randomness():
    assert variation_of(None) == 0.2
    assert variation_of(0.0) == 0.0
    assert variation_of("drums=0.2,bass=0.6") == pytest.approx(0.4)
    assert variation_of({128: 1.0}) == 1.0


def test_varied_bars_last_first_then_drawn():
    rng = np.random.default_rng(0)
    assert varied_bars(8, 0.0, rng) == []
    assert varied_bars(8, 0.1, rng) == [7]  # round(0.8) = 1: the last bar alone
    two = varied_bars(8, 0.2, rng)
    assert len(two) == 2 and 7 in two
    assert varied_bars(4, 1.0, rng) == [0, 1, 2, 3]


def test_copy_span_and_place_on_tracks():
    notes = make_notes([0.0, 1.0, 1.5], [0.5, 3.0, 1.9], [60, 62, 64], [80] * 3)
    song = Score([Track(notes, name="keys")], until_s=2.0)
    copied = copy_span(song, 0.0, 2.0, 2.0)
    got = copied.tracks[0].notes
    assert got["start_s"].tolist() == [0.0, 1.0, 1.5, 2.0, 3.0, 3.5]
    assert got["end_s"][4] == pytest.approx(4.0)  # held past the span: cut at its end
    assert copied.until_s == 4.0
    drums = Track(make_notes([2.5], [2.6], [36], [100]), is_drum=True)
    placed = place(copied, [drums], 2.0, 3.0)
    assert [len(t.notes) for t in placed.tracks] == [5, 1]  # keys silent in [2, 3), drums new
    assert placed.tracks[0].notes["end_s"][1] == pytest.approx(2.0)  # the held note cut at 2 s


def _bars_of(song, seconds):
    pm = pretty_midi.PrettyMIDI(song)
    return pm, pm.get_end_time() / seconds


def test_band_aaba_literal_repeat_returns_a_and_b_differs(tmp_path):
    song = form("AABA", bars=2, model="band", lineup="drums,bass,guitar", tempo=120,
                randomness=0.0, seed=4)
    matches = section_matches(song)
    assert matches["A2"] == [1.0, 1.0] and matches["A4"] == [1.0, 1.0]
    assert max(matches["B3"]) < 0.8
    assert song.varied == [[], [], [], []]
    pm = pretty_midi.PrettyMIDI(str(song.write(tmp_path / "aaba.mid")))
    assert pm.get_end_time() == pytest.approx(4 * 2 * 2.0, abs=0.02)  # 8 bars of 2 s
    assert pm.get_tempo_changes()[1][0] == pytest.approx(120.0, abs=0.01)
    played = {("drums" if i.is_drum else i.program // 8) for i in pm.instruments if i.notes}
    assert "drums" in played and played <= {"drums", 3, 4}  # the line-up's families alone
    onsets = [n.start for i in pm.instruments for n in i.notes]
    assert min(onsets) < 4.0 and max(onsets) > 12.0  # music in the first and the last section


def test_band_variation_plays_the_chosen_bars_anew():
    song = form("AA", bars=4, model="band", lineup="drums,bass", tempo=120, randomness=0.5,
                seed=2)
    varied = song.varied[1]
    assert song.varied[0] == [] and len(varied) == 2 and 8 in varied  # the last, one drawn
    a2 = section_matches(song)["A2"]
    assert [a2[k] for k in range(4) if k + 5 not in varied] == [1.0, 1.0]  # the rest replay
    assert min(a2[k - 5] for k in varied) < 1.0  # a bar played anew is not a copy
    assert song.score.note_count > 0
    again = form("AA", bars=4, model="band", lineup="drums,bass", tempo=120, randomness=0.5,
                 seed=2)
    assert all(np.array_equal(a.notes, b.notes)
               for a, b in zip(song.score.tracks, again.score.tracks))  # same seed, same song


def test_piano_form_over_a_nominal_bar():
    song = form("ABA", bars=2, model="piano", tempo=100, randomness=0.0, seed=3)
    assert song.band is None and len(song.score.tracks) == 1
    assert song.score.end_s == pytest.approx(3 * 2 * 2.4)
    assert section_matches(song)["A3"] == [1.0, 1.0]
    with pytest.raises(GenerateError, match="--bars must be"):
        form("AB", bars=0, model="piano")
