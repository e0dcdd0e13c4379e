"""Training crops: token-level augmentation keeps streams canonical; samples are deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melodia.encoding import get_encoding
from melodia.encoding.quantize import velocity_to_bin
from melodia.features.controls import CONTROL_DIM, compute_controls
from melodia.midi import Score, Track, make_notes
from melodia.training.crops import CropDataset, holdout_tail, stretch_ids, transpose_ids

ENC = get_encoding("piano")


def performance(n: int = 120, seed: int = 0, low: int = 40, high: int = 90) -> np.ndarray:
    rng = np.random.default_rng(seed)
    starts = np.cumsum(rng.exponential(0.2, n))
    notes = make_notes(starts, starts + rng.uniform(0.02, 1.5, n), rng.integers(low, high, n),
                       rng.integers(1, 127, n))
    return ENC.encode(Score(tracks=[Track(notes=notes)])).astype(np.int64)


def reencode(ids: np.ndarray) -> np.ndarray:
    """decode -> encode: equal to ``ids`` exactly when ``ids`` is a canonical stream."""
    q, _ = ENC.decode_quantized(ids)
    q["vbin"] = velocity_to_bin(q["vbin"], ENC.config.velocity_bins)
    return ENC.encode_quantized(q)


def test_stretch_by_one_is_the_identity():
    ids = performance()
    np.testing.assert_array_equal(stretch_ids(ids, 1.0, ENC), ids)
    np.testing.assert_array_equal(stretch_ids(ids[37:200], 1.0, ENC), ids[37:200])  # mid-stream


@pytest.mark.parametrize("factor", [0.95, 0.97, 1.03, 1.05])
def test_stretch_scales_time_and_stays_canonical(factor):
    ids = performance(300, seed=1)
    out = stretch_ids(ids, factor, ENC)
    np.testing.assert_array_equal(reencode(out), out)
    q0, _ = ENC.decode_quantized(ids)
    q1, _ = ENC.decode_quantized(out)
    assert len(q1) == len(q0)
    np.testing.assert_array_equal(q1["pitch"], q0["pitch"])
    assert np.abs(q1["start"] - q0["start"] * factor).max() <= 2
    non_shift = ids[(ids < 256) | (ids > 355)]
    np.testing.assert_array_equal(out[(out < 256) | (out > 355)], non_shift)


def test_transpose_moves_notes_and_is_clipped_to_the_range():
    ids = performance()
    up = transpose_ids(ids, 3, ENC)
    q0, _ = ENC.decode_quantized(ids)
    q1, _ = ENC.decode_quantized(up)
    np.testing.assert_array_equal(q1["pitch"], q0["pitch"] + 3)
    top = performance(low=120, high=127)  # highest pitch 126: only +1 fits
    q2, _ = ENC.decode_quantized(transpose_ids(top, 3, ENC))
    assert q2["pitch"].max() == 127
    assert (q2["pitch"] - ENC.decode_quantized(top)[0]["pitch"] == 1).all()


def test_crops_are_deterministic_by_seed_and_index():
    seqs = [performance(200, seed=s) for s in range(3)]
    make = lambda seed: CropDataset(seqs, ENC, 64, seed=seed, transpose=3, stretch=0.05,  # noqa: E731
                                    controls=True, control_dropout=0.3)
    a, b, c = make(0), make(0), make(1)
    for i in (0, 5, 123456):
        for key in ("inputs", "targets", "controls"):
            torch.testing.assert_close(a[i][key], b[i][key])
    assert not torch.equal(a[3]["inputs"], c[3]["inputs"])
    batch = a.batch([0, 1, 2])
    assert batch["inputs"].shape == batch["targets"].shape == (3, 64)
    assert batch["controls"].shape == (3, 64, CONTROL_DIM)
    torch.testing.assert_close(batch["inputs"][1], a[1]["inputs"])


def test_targets_are_inputs_shifted_and_controls_look_ahead():
    seq = performance(200)
    ds = CropDataset([seq], ENC, 32, seed=0, controls=True)
    ids, controls = ds.sample(7)
    item = ds[7]
    np.testing.assert_array_equal(item["inputs"].numpy(), ids[:-1])
    np.testing.assert_array_equal(item["targets"].numpy(), ids[1:])
    start = next(s for s in range(len(seq)) if np.array_equal(seq[s : s + 33], ids))
    np.testing.assert_allclose(controls, compute_controls(seq, ENC)[start : start + 32], atol=1e-6)


def test_short_files_are_padded_with_ignored_targets():
    ds = CropDataset([np.arange(10)], ENC, 32)
    item = ds[0]
    assert (item["targets"][:9] >= 0).all() and (item["targets"][9:] == -100).all()
    assert item["controls"].shape == (32, 0)


def test_holdout_tail():
    heads, tails = holdout_tail([np.arange(100), np.arange(3)], 0.1)
    assert [len(h) for h in heads] == [90, 3] and [len(t) for t in tails] == [10]


def test_bad_arguments():
    with pytest.raises(ValueError):
        CropDataset([np.arange(1)], ENC, 8)
    with pytest.raises(ValueError):
        CropDataset([np.arange(10)], ENC, 8, stretch=0.6)
