"""Batches built all at once (melodia.training.batches, melodia.training.loader) equal the one-crop-at-a-time reference, on real
MIDI files, for every input the models take; the loader's workers change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from melodia.encoding import get_encoding
from melodia.features.lookback import LOOKBACK_DIM
from melodia.features.plan import BandLayout
from melodia.training.batches import compact_batch, input_dims
from melodia.training.crops import CropDataset
from melodia.training.loader import StepBatches, batch_loader, expand_inputs, to_tensors

DATA = Path(__file__).resolve().parents[2] / "data" / "midi"
PIANO, BAND = get_encoding("piano"), get_encoding("band")


@pytest.fixture(scope="module")
def piano_seqs() -> list[np.ndarray]:
    files = sorted((DATA / "chorales").glob("*.mid"))[:6] + sorted((DATA / "freedoom").glob("*.mid"))[:2]
    return [PIANO.encode(f).astype(np.int64) for f in files]


@pytest.fixture(scope="module")
def band_seqs() -> list[np.ndarray]:
    return [BAND.encode(f).astype(np.int64) for f in sorted((DATA / "freedoom").glob("*.mid"))[:5]]


def reference(crops: CropDataset, indices) -> dict[str, torch.Tensor]:
    """The samples one at a time (CropDataset.__getitem__), stacked."""
    items = [crops[i] for i in indices]
    return {k: torch.stack([item[k] for item in items]) for k in items[0]}


def assert_same(crops: CropDataset, indices) -> None:
    want = reference(crops, indices)
    got = crops.batch(indices)
    assert torch.equal(got["inputs"], want["inputs"])
    assert torch.equal(got["targets"], want["targets"])
    assert got["controls"].shape == want["controls"].shape
    dims = input_dims(crops)
    state = slice(dims.controls + dims.band, dims.controls + dims.band + dims.state)
    # the note state bit for bit, its recency too (looked up in numpy's exp, not torch's)
    assert torch.equal(got["controls"][..., state], want["controls"][..., state])
    # the rest equal but for rounding in the pitch-class shares (float32 here, float64 there)
    torch.testing.assert_close(got["controls"], want["controls"], rtol=0, atol=1e-6)


PIANO_CASES = {
    "magenta defaults": dict(transpose=3, stretch=0.05, controls=True, note_state=True,
                             control_dropout=0.3),
    "no augmentation": dict(controls=True, note_state=True),
    "wide stretch": dict(transpose=6, stretch=0.3, note_state=True),
    "controls only": dict(transpose=2, stretch=0.1, controls=True, control_dropout=0.5),
    "bare ids": dict(transpose=3, stretch=0.05),
}


@pytest.mark.parametrize("case", PIANO_CASES)
@pytest.mark.parametrize("seq_len", [64, 700])  # 700: longer than most chorales (padding)
def test_piano_batches_equal_the_reference(piano_seqs, case, seq_len):
    crops = CropDataset(piano_seqs, PIANO, seq_len, seed=5, **PIANO_CASES[case])
    assert_same(crops, range(0, 24))
    assert_same(crops, [10**9 + 7, 3, 3])  # any index, repeats allowed


def test_odd_streams_batch_like_the_reference():
    shift, on, off = PIANO.vocab.offset("TIME_SHIFT"), PIANO.vocab.offset("NOTE_ON"), \
        PIANO.vocab.offset("NOTE_OFF")
    odd = [np.full(300, shift + 99),  # silence only: no event to keep
           np.array([on + 40] + [shift + 99] * 2000 + [off + 40]),  # one note, 20 s long
           np.array([on + 40, shift + 3, off + 40]),  # shorter than a crop
           np.array([on + 40, on + 44, on + 47, shift, off + 40, off + 44, off + 47] * 50),
           # shifts that a canonical encoding would merge, and a stream starting with a gap
           np.array([shift + 9, on + 40, shift + 29, shift + 29, off + 40, shift + 99,
                     shift + 99, shift + 10, on + 41, off + 41] * 40)]
    for case in ("magenta defaults", "wide stretch", "bare ids"):
        crops = CropDataset(odd, PIANO, 96, seed=9, **PIANO_CASES[case])
        assert_same(crops, range(0, 32))


def test_mixed_corpora_batches_equal_the_reference(piano_seqs):
    crops = CropDataset(piano_seqs, PIANO, 128, seed=1, transpose=3, stretch=0.05,
                        controls=True, note_state=True, groups=[0] * 6 + [1] * 2,
                        weights=[0.2, 0.8])
    assert_same(crops, range(40, 72))


@pytest.mark.parametrize("meter,lookback", [(True, False), (False, False), (True, True),
                                           (False, True)])
def test_band_batches_equal_the_reference(band_seqs, meter, lookback):
    layout = BandLayout(("metal", "rock"))
    crops = CropDataset(band_seqs, BAND, 256, seed=2, transpose=3, stretch=0.05, controls=True,
                        control_dropout=0.3, note_state=True, band_layout=layout,
                        styles=[0, 1, None, 0, 1], meter=meter,
                        tempos=[[[0.0, 120.0], [4.0, 150.0]], None, None, [[0.0, 90.0]], None],
                        lookback=lookback)
    assert_same(crops, range(0, 24))
    if lookback:  # the bars a groove returns to are in the inputs (Freedoom repeats them)
        assert crops.batch(range(8))["controls"][..., -LOOKBACK_DIM:].sum() > 1000
    batch = crops.batch(range(8))
    dims = input_dims(crops)
    state = batch["controls"][..., dims.controls + dims.band : dims.controls + dims.band + 128]
    assert state.sum() > 0  # melodic notes sound somewhere in these crops


def test_compact_batches_are_small(piano_seqs):
    crops = CropDataset(piano_seqs, PIANO, 256, controls=True, note_state=True)
    compact = compact_batch(crops, range(16))
    dense = crops.batch(range(16))["controls"]
    size = sum(v.nbytes for v in compact.values() if isinstance(v, np.ndarray))
    assert size * 3 < dense.numel() * 4  # the dense inputs are built on the device instead


def test_ranks_build_their_slice_of_each_step(piano_seqs):
    crops = CropDataset(piano_seqs, PIANO, 64, seed=4, transpose=3, stretch=0.05,
                        note_state=True)
    whole = StepBatches(crops, 8)[5]
    halves = [StepBatches(crops, 8, rank, 2)[5] for rank in (0, 1)]
    for key in ("inputs", "targets", "state_time"):
        assert torch.equal(torch.cat([h[key] for h in halves]), whole[key])


def test_worker_processes_give_the_same_batches_in_order(piano_seqs):
    crops = CropDataset(piano_seqs, PIANO, 64, seed=3, transpose=3, stretch=0.05,
                        controls=True, note_state=True)
    dims = input_dims(crops)
    here = list(batch_loader(crops, range(3, 9), 4, workers=0))
    there = list(batch_loader(crops, range(3, 9), 4, workers=2))
    assert len(here) == len(there) == 6
    for a, b in zip(here, there):
        assert torch.equal(a["inputs"], b["inputs"])
        assert torch.equal(expand_inputs(a, dims), expand_inputs(b, dims))
    assert torch.equal(here[0]["inputs"], to_tensors(compact_batch(crops, range(12, 16)))["inputs"])


def test_uniforms_are_a_pure_function_of_seed_and_index():
    from melodia.training.crops import uniforms

    batch = uniforms(7, np.arange(1000))
    assert np.array_equal(batch[[3, 999]], uniforms(7, [3, 999]))
    assert np.array_equal(uniforms(7, [5])[0], batch[5])
    assert not np.array_equal(uniforms(8, [5]), uniforms(7, [5]))
    assert batch.min() >= 0 and batch.max() < 1
    assert abs(batch.mean() - 0.5) < 0.01  # 9000 draws: sd of the mean ~0.003
    assert abs(np.corrcoef(batch[:, 0], batch[:, 1])[0, 1]) < 0.1


def test_corpora_are_drawn_by_weight(piano_seqs):
    crops = CropDataset(piano_seqs, PIANO, 32, groups=[0] * 6 + [1] * 2, weights=[0.25, 0.75])
    files = crops.draws(range(4000)).file
    share = np.isin(files, [6, 7]).mean()
    assert 0.72 < share < 0.78
    crops = CropDataset(piano_seqs, PIANO, 32, groups=[0] * 6 + [1] * 2, weights=[1.0, 0.0])
    assert not np.isin(crops.draws(range(2000)).file, [6, 7]).any()


def test_big_batches_are_built_in_pieces_like_the_reference(piano_seqs, band_seqs):
    from melodia.training.batches import CHUNK

    crops = CropDataset(piano_seqs, PIANO, 48, seed=6, **PIANO_CASES["magenta defaults"])
    assert_same(crops, range(5, 5 + 2 * CHUNK + 17))
    crops = CropDataset(band_seqs, BAND, 48, seed=6, transpose=3, stretch=0.05, controls=True,
                        note_state=True, band_layout=BandLayout(("metal",)), styles=[0] * 5,
                        meter=True)
    assert_same(crops, range(CHUNK + 9))


def test_stretching_whole_batches_equals_stretching_each_stream():
    from melodia.training.batches import _stretch
    from melodia.training.crops import stretch_ids

    shift, on = PIANO.vocab.offset("TIME_SHIFT"), PIANO.vocab.offset("NOTE_ON")
    rng = np.random.default_rng(0)
    streams, prefixes = [], []
    for _ in range(200):  # events and runs of 1-4 shifts of any size, in any order
        parts = [[on + int(rng.integers(88))] if rng.random() < 0.6
                 else list(shift + rng.integers(0, 100, rng.integers(1, 5)))
                 for _ in range(rng.integers(1, 40))]
        streams.append(np.concatenate(parts).astype(np.int32))
        prefixes.append(int(rng.integers(len(streams[-1]) + 1)))
    factor = rng.uniform(0.5, 1.5, len(streams))
    lens = np.array([len(s) for s in streams])
    starts = np.cumsum(lens) - lens
    out, begin, new_lens, skip = _stretch(np.concatenate(streams), starts, lens,
                                          np.repeat(np.arange(len(lens)), lens), factor,
                                          np.array(prefixes), PIANO)
    crops = CropDataset(streams, PIANO, 8)
    for i, stream in enumerate(streams):
        want = stretch_ids(stream, factor[i], PIANO)
        assert np.array_equal(out[begin[i] : begin[i] + new_lens[i]], want), i
        assert skip[i] == crops._skip_after_stretch(stream[: prefixes[i]], want), i


def test_loader_workers_keep_freed_memory_in_the_heap():
    """keep_freed_memory (which loader workers call) makes a block of megabytes come from the
    heap instead of a fresh mapping; measured with glibc's mallinfo2 in fresh processes."""
    import subprocess
    import sys

    probe = """
import ctypes, sys
import numpy as np
from melodia.training.loader import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena ordblks smblks hblks hblkhd usmblks "
                                                     "fsmblks uordblks fordblks keepcost").split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
before = mallinfo2().hblkhd
block = np.ones(1 << 20)  # 8 MiB
print(applied, mallinfo2().hblkhd - before)
"""

    def run(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True,
                             check=True).stdout.split()
        return out[0], int(out[1])

    default, kept = run("default"), run("keep")
    assert default[1] >= 8 << 20  # glibc's default: a block this size is a mapping of its own
    assert kept == ("True", 0)
