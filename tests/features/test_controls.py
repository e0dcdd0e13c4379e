"""Control signals: a hand-computed case, Magenta's loop as a reference, generation controls."""

from __future__ import annotations

import numpy as np
import pytest

from melodia.encoding import get_encoding
from melodia.features.controls import (CONTROL_DIM, DENSITY_BINS, compute_controls,
                                       constant_controls, density_bin)

ENC = get_encoding("piano")


def ids_of(*events: tuple[str, int]) -> np.ndarray:
    return np.array([ENC.vocab.encode_event(t, v) for t, v in events])


def test_density_bins_follow_magenta_edges():
    assert density_bin(np.array([0.0, 0.99, 1.0, 3.9, 4.0, 63.9, 64.0, 500.0])).tolist() == \
        [0, 0, 1, 2, 3, 6, 7, 7]


def test_hand_computed_controls():
    ids = ids_of(("VELOCITY", 10), ("NOTE_ON", 60), ("NOTE_ON", 64), ("TIME_SHIFT", 100),
                 ("NOTE_ON", 67), ("TIME_SHIFT", 100), ("TIME_SHIFT", 100), ("NOTE_ON", 72),
                 ("TIME_SHIFT", 50), ("NOTE_OFF", 60))
    c = compute_controls(ids, ENC)
    assert c.shape == (10, CONTROL_DIM) and c.dtype == np.float32
    density = c[:, :DENSITY_BINS].argmax(1)
    # row 0: 3 note-ons in [0 s, 3 s) = 1.0/s; row 1: 2/3 per s; row 3: 2 in the 2.5 s left;
    # row 6: 1 in the 0.5 s left = 2/s; row 8: nothing left
    assert density[[0, 1, 3, 6, 8, 9]].tolist() == [1, 0, 0, 2, 0, 0]
    assert np.all(c[:, :DENSITY_BINS].sum(1) == 1)
    hist = c[:, DENSITY_BINS:]
    np.testing.assert_allclose(hist[0][[0, 4, 7]], np.array([2.01, 1.01, 1.01]) / 4.12, rtol=1e-6)
    np.testing.assert_allclose(hist[1][[0, 4, 7]], np.array([1.01, 1.01, 1.01]) / 3.12, rtol=1e-6)
    np.testing.assert_allclose(hist[3][[0, 7]], np.array([1.01, 1.01]) / 2.12, rtol=1e-6)
    np.testing.assert_allclose(hist[8], np.full(12, 1 / 12), rtol=1e-6)
    np.testing.assert_allclose(hist.sum(1), 1.0, rtol=1e-6)


def magenta_reference(ids: np.ndarray) -> np.ndarray:
    """Magenta's extract() loops, with row t taken at event t + 1 (the event being predicted)."""
    events = [ENC.vocab.decode_event(int(i)) for i in ids]
    out = np.zeros((len(ids), CONTROL_DIM))
    for t in range(len(ids)):
        for window, kind in ((300, "density"), (500, "hist")):
            count, hist, offset, j = 0, np.full(12, 0.01), 0, t + 1
            while offset < window and j < len(events):
                if events[j].type == "NOTE_ON":
                    count += 1
                    hist[events[j].value % 12] += 1
                elif events[j].type == "TIME_SHIFT":
                    offset += events[j].value
                j += 1
            if kind == "density":
                span = min(offset, window)
                out[t, density_bin(count * 100 / span if span > 0 else 0.0)] = 1
            else:
                out[t, DENSITY_BINS:] = hist / hist.sum()
    return out


def test_matches_magenta_loop_on_a_random_performance():
    rng = np.random.default_rng(1)
    starts = np.cumsum(rng.exponential(0.15, 150))
    from melodia.midi import Score, Track, make_notes

    notes = make_notes(starts, starts + rng.uniform(0.05, 2.0, 150), rng.integers(30, 100, 150),
                       rng.integers(1, 127, 150))
    ids = ENC.encode(Score(tracks=[Track(notes=notes)]))
    np.testing.assert_allclose(compute_controls(ids, ENC), magenta_reference(ids), atol=1e-6)


def test_empty_sequence():
    assert compute_controls(np.zeros(0, np.int64), ENC).shape == (0, CONTROL_DIM)


def test_constant_controls():
    assert not constant_controls().any()
    c = constant_controls(density=np.sqrt(4 * 8))  # the centre of bin [4, 8): that bin alone
    np.testing.assert_allclose(c[:DENSITY_BINS], [0, 0, 0, 1, 0, 0, 0, 0], atol=1e-6)
    assert not c[DENSITY_BINS:].any()
    c = constant_controls(density=8.0)  # halfway (in log) between the centres 5.66 and 11.3
    np.testing.assert_allclose(c[:DENSITY_BINS], [0, 0, 0, 0.5, 0.5, 0, 0, 0], atol=1e-6)
    c = constant_controls(density=100.0)  # past the last centre: the last bin
    assert c[:DENSITY_BINS].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]
    c = constant_controls(pitch_histogram=[2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1])
    assert not c[:DENSITY_BINS].any()
    np.testing.assert_allclose(c[DENSITY_BINS], 2 / 9) and np.testing.assert_allclose(c.sum(), 1)
    np.testing.assert_allclose(constant_controls(pitch_histogram=[0] * 12)[DENSITY_BINS:], 1 / 12)


@pytest.mark.parametrize("kw", [{"density": -1.0}, {"density": float("nan")},
                                {"pitch_histogram": [1] * 11}, {"pitch_histogram": [-1] + [1] * 11}])
def test_constant_controls_rejects_bad_values(kw):
    with pytest.raises(ValueError):
        constant_controls(**kw)
