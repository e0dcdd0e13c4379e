"""Scores through music21: real MusicXML, ABC and kern files written here, and the bundled corpus."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from melodia.corpus.cache import cache_root, load_item
from melodia.corpus.items import ScoreItem, find_score_items, music21_paths, split_abc_tunes
from melodia.corpus.scores import DEFAULT_QPM, DYNAMIC_VELOCITY, ScoreConfig, read_score
from melodia.errors import ScoreReadError

SCALE = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]

TWO_TUNES = """%abc-2.1
% a file header, shared by every tune
X:1
T:First
M:4/4
L:1/4
Q:1/4=120
K:C
CDEF|GABc|]

X:2
T:Second
M:3/4
L:1/4
K:G
GAB|d2 d|]
"""

KERN = """**kern
*M4/4
*MM60
=1
4c
4d
[4e
4e]
=2
1g
==
*-
"""


def write_scale(path: Path) -> Path:
    """C major scale in two 4/4 bars: 120 qpm, ``p`` then ``f``, an end-repeat barline."""
    from music21 import bar, dynamics, meter, note, stream, tempo

    part = stream.Part()
    for number in (1, 2):
        measure = stream.Measure(number=number)
        if number == 1:
            measure.insert(0, meter.TimeSignature("4/4"))
            measure.insert(0, tempo.MetronomeMark(number=120))
        measure.insert(0, dynamics.Dynamic("p" if number == 1 else "f"))
        for name in SCALE[4 * (number - 1): 4 * number]:
            measure.append(note.Note(name, quarterLength=1))
        if number == 2:
            measure.rightBarline = bar.Repeat(direction="end")
        part.append(measure)
    stream.Score([part]).write("musicxml", fp=path)
    return path


def write_band(path: Path) -> Path:
    """Violin and piano, no tempo mark: a tie, a chord and a grace note."""
    from music21 import chord, instrument, meter, note, stream, tie

    violin = stream.Part([instrument.Violin(), meter.TimeSignature("4/4")])
    tied = [note.Note("A4", quarterLength=2), note.Note("A4", quarterLength=2)]
    tied[0].tie, tied[1].tie = tie.Tie("start"), tie.Tie("stop")
    grace = note.Note("B4").getGrace()
    violin.append(tied + [grace, note.Note("C5", quarterLength=4)])
    piano = stream.Part([instrument.Piano(), meter.TimeSignature("4/4")])
    piano.append([chord.Chord(["C3", "E3", "G3"], quarterLength=4), note.Rest(quarterLength=4)])
    stream.Score([violin, piano]).makeNotation().write("musicxml", fp=path)
    return path


@pytest.fixture(scope="module")
def scale(tmp_path_factory) -> Path:
    return write_scale(tmp_path_factory.mktemp("scores") / "scale.musicxml")


def test_tempo_repeat_and_dynamics(scale):
    score = read_score(scale)
    notes = score.tracks[0].notes
    assert len(notes) == 2 * len(SCALE)  # the repeat is played
    np.testing.assert_allclose(notes["start_s"], np.arange(16) * 0.5)  # 120 qpm: 0.5 s a beat
    np.testing.assert_allclose(notes["end_s"] - notes["start_s"], 0.5)
    assert list(notes["pitch"][:8]) == list(notes["pitch"][8:]) == [60, 62, 64, 65, 67, 69, 71, 72]
    p, f = DYNAMIC_VELOCITY["p"], DYNAMIC_VELOCITY["f"]
    assert list(notes["velocity"]) == ([p] * 4 + [f] * 4) * 2
    assert score.tempos["qpm"].tolist() == [120.0]


def test_parts_ties_chords_grace_and_default_tempo(tmp_path):
    score = read_score(write_band(tmp_path / "band.musicxml"))
    violin, piano = score.tracks
    assert violin.program == 40 and piano.program == 0
    beat = 60.0 / DEFAULT_QPM
    # the tied A is one 4-beat note; the grace B is skipped
    assert violin.notes[["pitch"]].tolist() == [(69,), (72,)]
    np.testing.assert_allclose(violin.notes["start_s"], [0.0, 4 * beat])
    np.testing.assert_allclose(violin.notes["end_s"], [4 * beat, 8 * beat])
    assert sorted(piano.notes["pitch"]) == [48, 52, 55]
    assert set(piano.notes["velocity"]) == {DYNAMIC_VELOCITY["mf"]}


def test_abc_collection_gives_one_item_per_tune(tmp_path):
    path = tmp_path / "two.abc"
    path.write_text(TWO_TUNES)
    assert all(tune.startswith("%abc-2.1") for tune in split_abc_tunes(TWO_TUNES))
    items = find_score_items(path)
    assert [item.path for item in items] == [f"{path}#0", f"{path}#1"]
    first, second = (read_score(item.path) for item in items)
    assert first.note_count == 8 and second.note_count == 5
    np.testing.assert_allclose(first.tracks[0].notes["start_s"][:2], [0.0, 0.5])  # Q:1/4=120
    data = path.read_bytes()
    assert items[0].sha1(data) != items[1].sha1(data)


def test_kern(tmp_path):
    path = tmp_path / "tune.krn"
    path.write_text(KERN)
    notes = read_score(path).tracks[0].notes
    assert notes["pitch"].tolist() == [60, 62, 64, 67]  # the tied E is one note
    np.testing.assert_allclose(notes["start_s"], [0, 1, 2, 4])  # *MM60
    np.testing.assert_allclose(notes["end_s"], [1, 2, 4, 8])


@pytest.mark.parametrize("name, text", [("bad.xml", "this is <not> xml"), ("empty.abc", ""),
                                        ("missing.krn", None)])
def test_unreadable_scores_raise_score_read_error(tmp_path, name, text):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ScoreReadError) as info:
        read_score(path)
    assert info.value.path == str(path) and info.value.reason


def test_music21_references():
    bach = music21_paths("music21:bach")
    assert len(bach) > 300 and all(p.suffix in (".mxl", ".xml", ".krn") for p in bach)
    (item,) = find_score_items("music21:bach/bwv66.6")
    assert item.source == "music21:bach/bwv66.6" and "BSD-3-Clause" in item.licence()
    assert ScoreItem("x.mxl").licence() is None
    with pytest.raises(ScoreReadError, match="music21 corpus"):
        music21_paths("music21:no_such_composer_here")


def test_humanize_is_seeded(scale):
    plain = read_score(scale).tracks[0].notes
    one = read_score(scale, ScoreConfig(humanize_s=0.01, seed=1)).tracks[0].notes
    again = read_score(scale, ScoreConfig(humanize_s=0.01, seed=1)).tracks[0].notes
    other = read_score(scale, ScoreConfig(humanize_s=0.01, seed=2)).tracks[0].notes
    np.testing.assert_array_equal(one, again)
    assert not np.array_equal(one, other) and not np.array_equal(one, plain)
    assert 0.002 < np.std(one["start_s"] - np.sort(plain["start_s"])) < 0.03
    np.testing.assert_allclose(np.sort(one["end_s"] - one["start_s"]), 0.5)


def test_cache_round_trip_and_location(scale, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root(ScoreConfig()) == tmp_path / "xdg" / "melodia" / "scores"
    config = ScoreConfig(cache_dir=str(tmp_path / "cache"))
    data = scale.read_bytes()
    first, cached = load_item(ScoreItem(str(scale)), data, config)
    assert not cached and len(list((tmp_path / "cache").rglob("*.npz"))) == 1
    second, cached = load_item(ScoreItem(str(scale)), data, config)
    assert cached
    np.testing.assert_array_equal(first.tracks[0].notes, second.tracks[0].notes)
    np.testing.assert_array_equal(first.tempos, second.tempos)
    _, cached = load_item(ScoreItem(str(scale)), data, ScoreConfig(cache=False,
                                                                   cache_dir=config.cache_dir))
    assert not cached


def test_runaway_repeats_stay_unexpanded(scale, monkeypatch, caplog):
    import melodia.corpus.scores

    monkeypatch.setattr(melodia.corpus.scores, "EXPAND_MAX_RATIO", 1.5)
    with caplog.at_level("INFO", logger="melodia.corpus.scores"):
        assert read_score(scale).note_count == len(SCALE)
    assert "repeats left unexpanded" in caplog.text


def test_a_piece_that_takes_too_long_is_a_read_error(scale, monkeypatch):
    import melodia.corpus.scores

    def slow(item, data=None):
        time.sleep(5)

    monkeypatch.setattr(melodia.corpus.scores, "parse_item", slow)
    with pytest.raises(ScoreReadError, match="took too long"):
        read_score(scale, ScoreConfig(timeout_s=0.05))
