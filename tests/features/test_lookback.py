"""Bar lookback inputs on real band files: the same values whole-sequence (training) and step
by step (generation); they carry the groove a real band repeats, and nothing where it doesn't."""

from __future__ import annotations

import numpy as np
import pytest

from melodia.features.band import beats_at
from melodia.features.lookback import (DRUM_GROUPS, FEATURES, LOOKBACK_DIM, LookbackTracker,
                                       feature_of, features_of, lookback_rows)
from melodia.midi import read_midi, write_midi
from melodia.midi.instruments import DRUMS
from tests.conftest import DATA

FILES = sorted((DATA / "freedoom").glob("*.mid"))[:6]


def _onsets(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every note's (beat, instrument, pitch) of a real file, in time order."""
    score = read_midi(path)
    rows = [(float(n["start_s"]), DRUMS if t.is_drum else t.program, int(n["pitch"]))
            for t in score.tracks for n in t.notes]
    rows.sort()
    seconds = np.array([r[0] for r in rows])
    tempos = np.array(score.tempos.tolist(), dtype=np.float64).reshape(-1, 2)
    return (beats_at(seconds, tempos), np.array([r[1] for r in rows]),
            np.array([r[2] for r in rows]))


def test_onset_kinds():
    assert feature_of(DRUMS, 36) == feature_of(DRUMS, 35) == 0  # kicks
    assert feature_of(DRUMS, 38) == 1 and feature_of(DRUMS, 42) == 2
    assert feature_of(DRUMS, 81) == DRUM_GROUPS - 1  # the rest of the kit
    assert feature_of(33, 40) == DRUM_GROUPS + 4  # a bass's E
    assert feature_of(30, 52) == DRUM_GROUPS + 12 + 4  # a guitar's E
    assert feature_of(0, 60) == DRUM_GROUPS + 24  # a piano's C
    assert feature_of(40, 61) == DRUM_GROUPS + 36 + 1  # a violin: "other"
    instruments, pitches = np.array([DRUMS, 33, 30, 0, 40, 73]), np.array([36, 40, 52, 60, 61, 70])
    assert features_of(instruments, pitches).tolist() == \
        [feature_of(i, p) for i, p in zip(instruments.tolist(), pitches.tolist())]
    assert max(feature_of(i, p) for i in range(129) for p in range(128)) == FEATURES - 1


@pytest.mark.parametrize("path", FILES[:3], ids=lambda p: p.stem)
def test_step_by_step_equals_the_whole_sequence(path, tmp_path):
    write_midi(read_midi(path), tmp_path / "copy.mid")  # a file written by melodia, read back
    beats, instruments, pitches = _onsets(tmp_path / "copy.mid")
    whole = lookback_rows(beats, features_of(instruments, pitches), beats)
    tracker, stepped = LookbackTracker(1), np.zeros_like(whole)
    for i, (beat, instrument, pitch) in enumerate(zip(beats, instruments, pitches)):
        stepped[i] = tracker.features(np.array([beat]))[0]
        tracker.add(0, beat, int(instrument), int(pitch))
    assert whole.shape == (len(beats), LOOKBACK_DIM) and whole.any()
    assert np.array_equal(whole, stepped)


def _drums_foreseen(beats, instruments, pitches) -> float:
    """The share of drum hits whose kind the lag-1 window at their own beat holds."""
    kinds = features_of(instruments, pitches)
    rows = lookback_rows(beats, kinds, beats)
    drums = np.flatnonzero(instruments == DRUMS)
    return float(rows[drums, kinds[drums]].mean())


def test_a_real_band_s_drums_are_there_one_bar_back():
    """Freedoom's grooves return bar after bar (issue 33: two thirds of their drum bars): most
    drum hits find their kind in the lag-1 window; with the same hits moved to random beats of
    the piece, few do."""
    real, moved = [], []
    rng = np.random.default_rng(0)
    for path in FILES:
        beats, instruments, pitches = _onsets(path)
        if (instruments == DRUMS).sum() < 50:
            continue
        real.append(_drums_foreseen(beats, instruments, pitches))
        shuffled = rng.uniform(beats.min(), beats.max(), len(beats))
        moved.append(_drums_foreseen(shuffled, instruments, pitches))
    assert len(real) >= 3
    assert np.median(real) >= 0.5 and np.median(moved) <= 0.3, (real, moved)


@pytest.mark.parametrize("path", FILES[3:5], ids=lambda p: p.stem)
def test_generation_feeds_what_scoring_and_training_feed(path):
    """A real band file's events, primed then played one by one through the generator's step
    inputs, get the rows :func:`model_inputs` gives the whole sequence (what the trainer and
    the scorer see)."""
    from melodia.encoding import get_encoding
    from melodia.features.controls import step_inputs
    from melodia.generation.grammar import Grammar, GrammarConfig
    from melodia.generation.session import StepInputs

    encoding = get_encoding("band")
    ids = encoding.encode(read_midi(path))[:1500]
    tempos, k = [[0.0, 111.0]], 400  # a primer of k events, then step by step
    expected = step_inputs(ids, encoding, 0, 0, k, tempos=tempos, lookback_dim=LOOKBACK_DIM)
    grammar = Grammar(encoding, GrammarConfig(pitch_range=None, max_note_s=None))
    inputs = StepInputs(None, 0, 0, tempos=tempos, lookback_dim=LOOKBACK_DIM)
    grammar.feed(ids[:k])
    inputs.prime(ids[:k], encoding, 1)
    rows = []
    for event in ids[k:]:
        grammar.update(np.array([event]))
        rows.append(inputs(grammar)[0].numpy())
    assert expected.shape == (len(ids) - k, LOOKBACK_DIM) and expected.any()
    np.testing.assert_array_equal(np.stack(rows), expected)
