"""The note-state input, corpus controls, the piano-range mask, corpus mixing and --init."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from melodia.encoding import get_encoding
from melodia.errors import MelodiaError
from melodia.features.controls import (CONTROL_DIM, DENSITY_SLICE, HISTOGRAM_SLICE, NOTE_AGE_TAU_S,
                                       NOTE_STATE_DIM, control_prior, note_state, recency_table,
                                       soft_density, step_inputs)
from melodia.generation.config import GenerateConfig
from melodia.generation.generator import generate_ids
from melodia.generation.grammar import Grammar, GrammarConfig
from melodia.generation.session import control_vector
from melodia.model.checkpoint import load_checkpoint, save_checkpoint
from melodia.model.config import ModelConfig
from melodia.model.lstm import PerformanceRNN
from melodia.training.config import TrainConfig, data_entries
from melodia.training.crops import CropDataset
from melodia.training.trainer import train
from tests.conftest import DATA
from tests.generation.test_grammar import check_stream
from tests.training.test_train import dataset, tiny  # noqa: F401  (the module fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
PIANO = get_encoding("piano")
ON, OFF, SHIFT = PIANO.vocab.offset("NOTE_ON"), PIANO.vocab.offset("NOTE_OFF"), 255  # +steps


def chorale_ids() -> np.ndarray:
    return PIANO.encode_file(DATA / "chorales" / "bach__bwv1.6.mxl.mid")


# ------------------------------------------------------------------------------ note state


def test_note_state_by_hand():
    # C4 on; 0.5 s; E4 on; 0.25 s; C4 off; E4 re-struck
    ids = np.array([ON + 60, SHIFT + 50, ON + 64, SHIFT + 25, OFF + 60, ON + 64])
    state = note_state(ids, PIANO)
    assert state.shape == (6, NOTE_STATE_DIM)
    sounding, recency = state[:, :128], state[:, 128:]
    assert sounding.sum(axis=1).tolist() == [1, 1, 2, 2, 1, 1]
    assert sounding[4, 64] == 1 and sounding[4, 60] == 0
    assert recency[0, 60] == pytest.approx(1.0)
    assert recency[1, 60] == pytest.approx(np.exp(-0.5 / NOTE_AGE_TAU_S))
    assert recency[3, 60] == pytest.approx(np.exp(-0.75 / NOTE_AGE_TAU_S))
    assert recency[3, 64] == pytest.approx(np.exp(-0.25 / NOTE_AGE_TAU_S))
    assert recency[5, 64] == pytest.approx(1.0)  # a re-strike restarts the age
    assert recency[4, 60] == 0.0


def test_recency_table_holds_the_note_states_own_floats():
    """Looking a recency up (as the batch expansion does) gives note_state's floats bit for bit,
    for every age a held note reaches, past the table's end too (0 there)."""
    table = recency_table(PIANO.config.steps_per_second)
    assert table[0] == 1.0 and table[-1] == 0.0 and (table[:-1] > 0).all()
    assert (np.diff(table) <= 0).all()
    steps = np.random.default_rng(3).integers(1, 101, 260)  # ~130 s of shifts: ages past the end
    ids = np.concatenate([[ON + 60], SHIFT + steps])
    recency = note_state(ids, PIANO)[:, 128 + 60]
    ages = np.concatenate([[0], np.cumsum(steps)])
    assert ages[-1] >= len(table)
    assert np.array_equal(recency, table[np.minimum(ages, len(table) - 1)])


def test_grammar_tracks_the_same_note_state_as_the_stream():
    """Generation builds the note state from the grammar; training from the ids: they agree."""
    ids = chorale_ids()[:1500]
    expected = note_state(ids, PIANO)
    grammar = Grammar(PIANO, GrammarConfig(pitch_range=None))
    for t, event in enumerate(ids):
        grammar.update(np.array([event]))
        np.testing.assert_allclose(grammar.note_state()[0], expected[t], atol=1e-6,
                                   err_msg=f"event {t}")


def test_crops_rebuild_the_note_state_from_before_the_crop():
    seq = chorale_ids()
    full = step_inputs(seq, PIANO, CONTROL_DIM, NOTE_STATE_DIM)
    crops = CropDataset([seq], PIANO, seq_len=64, seed=3, controls=True, note_state=True)
    assert crops.control_dim == CONTROL_DIM + NOTE_STATE_DIM
    checked = 0
    for i in range(20):
        start = int(crops.draws([i]).start[0])
        ids, inputs = crops.sample(i)
        np.testing.assert_array_equal(ids, seq[start : start + len(ids)])
        # notes of a chorale last well under the 10 s lookback: the state is exact
        np.testing.assert_allclose(inputs[:, CONTROL_DIM:], full[start : start + len(inputs),
                                                                 CONTROL_DIM:], atol=1e-6)
        checked += int(inputs[0, CONTROL_DIM:].any())
    assert checked > 10  # most crops start with notes already sounding


def test_stretched_crops_keep_a_consistent_note_state():
    seq = chorale_ids()
    crops = CropDataset([seq], PIANO, seq_len=64, seed=1, stretch=0.1, transpose=3,
                        note_state=True)
    for i in range(10):
        ids, inputs = crops.sample(i)
        assert len(inputs) == len(ids) - 1
        # inside the crop the state follows the events exactly (it only adds what came before)
        own = note_state(ids, PIANO)[:, :128]
        assert np.all(inputs[:, :128] >= own[:-1])


# --------------------------------------------------------------------------------- mixing


def test_weighted_groups_mix_corpora():
    a = chorale_ids()
    b = np.array([ON + 40, SHIFT + 10, OFF + 40] * 200)
    only_a = CropDataset([a, b], PIANO, seq_len=16, groups=[0, 1], weights=[1.0, 0.0])
    assert all(not np.array_equal(only_a.sample(i)[0][:3], b[:3]) for i in range(30))
    half = CropDataset([a, b], PIANO, seq_len=16, groups=[0, 1], weights=[0.5, 0.5])
    from_b = sum(set(half.sample(i)[0].tolist()) <= set(b.tolist()) for i in range(200))
    assert 70 < from_b < 130  # b is 0.8% of the events but half of the crops
    with pytest.raises(ValueError):
        CropDataset([a, b], PIANO, seq_len=16, groups=[0, 1], weights=[1.0])


def test_data_entries_parse_weights():
    assert data_entries("runs/a") == [("runs/a", None)]
    assert data_entries(["runs/a:0.7", "runs/b:0.3"]) == [("runs/a", 0.7), ("runs/b", 0.3)]
    with pytest.raises(MelodiaError):
        data_entries(["runs/a:0.7", "runs/b"])
    with pytest.raises(MelodiaError):
        data_entries(["runs/a:-1"])


def test_training_mixes_datasets_and_starts_from_init(dataset, tmp_path):  # noqa: F811
    first = train(tiny(dataset, tmp_path / "a", note_state=True), progress=False)
    ckpt = load_checkpoint(tmp_path / "a" / "last.pt")
    assert ckpt.model_config.state_dim == NOTE_STATE_DIM
    prior = np.asarray(ckpt.extra["control_prior"])
    assert prior.shape == (256, CONTROL_DIM)
    np.testing.assert_allclose(prior[:, DENSITY_SLICE].sum(axis=1), 1.0)
    # a second run, mixing the dataset with itself, starting from the first run's weights
    seen = {}
    config = tiny(dataset, tmp_path / "b", note_state=True, steps=1, lr=1e-9, min_lr=1e-9,
                  data=[f"{dataset}:0.5", f"{dataset}:0.5"], init=str(tmp_path / "a" / "last.pt"))
    train(config, progress=False, callbacks=[lambda info: seen.update(model=info.model)])
    for name, value in first.model.state_dict().items():
        assert torch.allclose(seen["model"].state_dict()[name], value, atol=1e-6), name
    wrong = tiny(dataset, tmp_path / "c", note_state=False, init=str(tmp_path / "a" / "last.pt"))
    with pytest.raises(MelodiaError, match="shapes must match"):
        train(wrong, progress=False)


# ----------------------------------------------------------------------------- generation


def stateful_checkpoint(path: Path, prior: list | None = None):
    torch.manual_seed(0)
    model = PerformanceRNN(ModelConfig(vocab_size=PIANO.vocab_size, embed_dim=24, hidden_size=32,
                                       num_layers=2, control_dim=CONTROL_DIM,
                                       state_dim=NOTE_STATE_DIM))
    extra = {"control_prior": prior} if prior is not None else {}
    save_checkpoint(path, model, PIANO, step=0, extra=extra)
    return load_checkpoint(path)


def test_control_prior_measures_the_corpus():
    scale = []
    for pitch in [60, 62, 64, 65, 67, 69, 71] * 40:  # 4 notes/s, C major
        scale += [ON + pitch, SHIFT + 25, OFF + pitch]
    prior = control_prior([np.array(scale)], PIANO, count=16, window_s=10.0)
    assert prior.shape == (16, CONTROL_DIM)
    np.testing.assert_allclose(prior[:, DENSITY_SLICE], np.tile(soft_density(4.0), (16, 1)),
                               atol=0.05)  # 4 notes/s
    black = [1, 3, 6, 8, 10]
    assert np.all(prior[:, HISTOGRAM_SLICE][:, black] < 0.01)


def test_generation_draws_unset_controls_from_the_corpus(tmp_path):
    prior = control_prior([chorale_ids()], PIANO, count=8).tolist()
    ckpt = stateful_checkpoint(tmp_path / "m.pt", prior)
    drawn = control_vector(ckpt, GenerateConfig(), seed=5)
    assert any(np.allclose(drawn, p, atol=1e-6) for p in prior)
    assert np.allclose(control_vector(ckpt, GenerateConfig(), seed=5), drawn)
    keyed = control_vector(ckpt, GenerateConfig(key="F#"), seed=5)
    assert np.allclose(keyed[DENSITY_SLICE], drawn[DENSITY_SLICE])  # density still drawn
    assert keyed[HISTOGRAM_SLICE].argmax() in (6, 1)  # F# or C# (tonic and fifth weigh 2)
    assert control_vector(ckpt, GenerateConfig(corpus_controls=False), seed=5) is None


def test_stateful_model_generates_well_formed_music_in_piano_range(tmp_path):
    ckpt = stateful_checkpoint(tmp_path / "m.pt")
    config = GenerateConfig(events=400, num=2, seed=1)
    out = generate_ids(ckpt, config)
    for ids in out.pieces:
        check_stream(ids[out.primer_events:], PIANO, config.grammar)
        pitches = ids[(ids >= ON) & (ids < ON + 128)] - ON
        assert len(pitches) and pitches.min() >= 21 and pitches.max() <= 108
    again = generate_ids(ckpt, config)
    assert all(np.array_equal(a, b) for a, b in zip(out.pieces, again.pieces))


def test_grammar_pitch_range_masks_note_ons():
    grammar = Grammar(PIANO, GrammarConfig(pitch_range=(40, 50)))
    allowed = grammar.mask()[0, ON : ON + 128]
    assert np.flatnonzero(allowed).tolist() == list(range(40, 51))
    with pytest.raises(ValueError):
        GrammarConfig(pitch_range=(60, 20))


def test_each_piece_of_a_batch_draws_its_own_controls(tmp_path):
    from melodia.generation.session import control_rows

    prior = control_prior([chorale_ids()], PIANO, count=64).tolist()
    ckpt = stateful_checkpoint(tmp_path / "m.pt", prior)
    rows = control_rows(ckpt, GenerateConfig(), seed=3, batch=6)
    assert rows.shape == (6, CONTROL_DIM)
    assert np.allclose(rows[0], control_vector(ckpt, GenerateConfig(), seed=3))
    assert len({tuple(r.round(4)) for r in rows}) > 1


# ---------------------------------------------------------------------- embedding calibration


def test_calibrated_embedding_noise_matches_the_models_type_shares(tmp_path):
    from melodia.generation.calibrate import calibrate_embedding_noise
    from melodia.generation.config import SamplerConfig
    from melodia.generation.session import resolve_sampler

    ckpt = stateful_checkpoint(tmp_path / "m.pt")
    seq = chorale_ids()
    calibrated = calibrate_embedding_noise(ckpt.model, [seq], PIANO, max_events=600,
                                           segment=300)
    assert set(calibrated["scale"]) == {"NOTE_ON", "NOTE_OFF", "TIME_SHIFT"}  # 1 VELOCITY: too few
    assert all(s > 0 for s in calibrated["scale"].values())
    save_checkpoint(tmp_path / "c.pt", ckpt.model, PIANO, 0, extra={"embedding_noise": calibrated})
    ckpt = load_checkpoint(tmp_path / "c.pt")
    auto = resolve_sampler(ckpt, SamplerConfig(sampler="embedding"))
    assert auto.noise_by_type == calibrated["scale"]
    assert auto.offset_by_type == calibrated["offset"]
    fixed = resolve_sampler(ckpt, SamplerConfig(sampler="embedding", noise=1.0))
    assert fixed.noise_by_type is None  # a noise the user gives wins
    out = generate_ids(ckpt, GenerateConfig(events=300, seed=2, sampler=auto))
    check_stream(out.pieces[0][out.primer_events:], PIANO, GenerateConfig().grammar)


def test_per_type_scales_perturb_only_their_types():
    from melodia.generation.pick import sample_embedding

    torch.manual_seed(0)
    weight, features = torch.randn(10, 8), torch.randn(64, 8)
    greedy = (features @ weight.T).argmax(-1)
    gen = torch.Generator().manual_seed(0)
    scale = np.array([0.0] * 10)
    assert torch.equal(sample_embedding(features, weight, None, gen, scale=scale), greedy)
    offset = np.zeros(10)
    offset[3] = 1e6  # an offset can force a token
    forced = sample_embedding(features, weight, None, gen, scale=scale, offset=offset)
    assert torch.all(forced == 3)


def test_a_piece_that_ends_in_a_rest_keeps_its_length(tmp_path):
    import mido

    from melodia.generation.generator import Generated
    from melodia.midi import write_midi

    ids = np.array([ON + 60, SHIFT + 50, OFF + 60, SHIFT + 100, SHIFT + 100])  # 0.5 s, then 2 s rest
    score = Generated([ids], PIANO, seed=0, primer_events=0).scores()[0]
    assert score.notes_end_s == pytest.approx(0.5) and score.end_s == pytest.approx(2.5)
    path = write_midi(score, tmp_path / "rest.mid")
    assert mido.MidiFile(path).length == pytest.approx(2.5, abs=0.02)
    again = PIANO.decode(PIANO.encode_file(path))  # the marker changes no note
    assert len(again.tracks[0].notes) == 1 and again.end_s == pytest.approx(0.5)


def test_the_lookback_starts_at_the_oldest_note_still_sounding():
    on, off, shift = (PIANO.vocab.offset(k) for k in ("NOTE_ON", "NOTE_OFF", "TIME_SHIFT"))
    held = [on + 40]  # held 3 s while 30 short notes go by
    for i in range(30):
        held += [on + 60 + i % 12, shift + 9, off + 60 + i % 12]
    seq = np.array(held + [off + 40] + [on + 50, shift + 9, off + 50] * 40)
    crops = CropDataset([seq], PIANO, seq_len=16, note_state=True)
    start = np.array([50, 91, 93, 99])  # inside the held note; its off (silence); later notes
    got = crops._earliest_sounding(np.zeros(4, np.int64), start)
    assert got.tolist() == [0, 91, 92, 98]  # the held note's onset; none; the short notes'
    assert crops.draws(range(200)).first.min() >= 0
    # the note state at each start is what the whole sequence says it is
    full = note_state(seq, PIANO)
    for s, first in zip(start, got):
        np.testing.assert_array_equal(note_state(seq[first : s + 1], PIANO, start=s - first)[0],
                                      full[s])
