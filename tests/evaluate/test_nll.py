"""Evaluation: hand-computed NLLs for the n-gram baselines and the model, segments, the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from melodia.corpus.preparation import PrepareConfig, prepare
from melodia.encoding import get_encoding
from melodia.evaluate import NGram, evaluate, model_totals, ngram_totals, segments
from melodia.midi import Score, Track, make_notes, write_midi
from melodia.model.checkpoint import save_checkpoint
from melodia.model.config import ModelConfig
from melodia.model.lstm import PerformanceRNN

ENC = get_encoding("piano")
ON, OFF, SHIFT, VEL = 60, 128 + 60, 256, 356  # NOTE_ON 60, NOTE_OFF 60, TIME_SHIFT 1, VELOCITY 1


def test_unigram_by_hand():
    # counts 0:3, 1:1 of 4; discount 0.5 gives p = (c - 0.5) / 4 + 0.5 * 2 / 4 * 1/4
    lm = NGram([np.array([0, 0, 0, 1])], 1, 4, discount=0.5)
    np.testing.assert_allclose(lm.probs(np.array([3, 0, 1, 2]), np.arange(4)),
                               np.tile([0.6875, 0.1875, 0.0625, 0.0625], (4, 1)))


def test_unigram_totals_by_hand_with_event_types():
    train = [np.array([ON, ON, ON, OFF])]
    seq = [np.array([VEL, ON, OFF, SHIFT])]  # predicted: ON, OFF, SHIFT
    r = ngram_totals(train, seq, ENC, 1, discount=0.5).result("unigram")
    # p(ON) = 2.5/4 + 0.5*2/4/388, p(OFF) = 0.5/4 + 0.25/388, p(SHIFT) = 0.25/388
    u = 0.25 / 388
    nll = [-math.log(0.625 + u), -math.log(0.125 + u), -math.log(u)]
    assert r.events == 3
    assert r.nll == pytest.approx(sum(nll) / 3)
    assert r.bits == pytest.approx(r.nll / math.log(2))
    assert r.perplexity == pytest.approx(math.exp(r.nll))
    assert r.accuracy == pytest.approx(1 / 3)
    assert r.by_type["NOTE_ON"] == {"events": 1, "share": pytest.approx(1 / 3),
                                    "nll": pytest.approx(nll[0])}
    assert r.by_type["TIME_SHIFT"]["nll"] == pytest.approx(nll[2])
    assert r.by_type["VELOCITY"] == {"events": 0, "share": 0.0, "nll": None}


def test_ngram_distributions_sum_to_one_and_learn_a_pattern():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 388, 500), np.tile([1, 2, 3, 4, 5], 100)]
    for n in (2, 3, 5):
        lm = NGram(train, n, 388)
        seq = np.tile([1, 2, 3, 4, 5], 4)
        p = lm.probs(seq, np.arange(20))
        np.testing.assert_allclose(p.sum(1), 1.0)
        assert (p[n:].argmax(1) == seq[n:]).all()
        assert p[np.arange(n, 20), seq[n:]].min() > 0.9


def test_segments():
    seqs = [np.arange(5), np.arange(1), np.arange(7)]
    assert segments(seqs, 3) == [(0, 0, 3), (0, 3, 5), (2, 0, 3), (2, 3, 6)]  # (2, 6, 7): 1 event
    assert segments(seqs, None) == [(0, 0, 5), (2, 0, 7)]
    assert segments(seqs, 3, max_events=3) == [(0, 0, 3), (0, 3, 5)]


def bias_only_model(log_probs: torch.Tensor) -> PerformanceRNN:
    """All weights zero: the LSTM outputs 0, so the logits are the bias, whatever the input."""
    model = PerformanceRNN(ModelConfig(embed_dim=4, hidden_size=4, num_layers=1, dropout=0.0))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.bias.copy_(log_probs)
    return model


def test_model_nll_by_hand():
    p = torch.full((388,), 0.5 / 385)
    p[ON], p[OFF], p[SHIFT] = 0.3, 0.15, 0.05
    model = bias_only_model(p.log())
    seqs = [np.array([VEL, ON, OFF, SHIFT, ON]), np.array([ON, VEL])]
    r = model_totals(model, seqs, ENC, segment_events=4, batch_size=2).result("m")
    # segments [VEL ON OFF SHIFT], [ON] (too short, dropped)... -> targets ON OFF SHIFT; [ON VEL] -> VEL
    expected = -(math.log(0.3) + math.log(0.15) + math.log(0.05) + math.log(0.5 / 385)) / 4
    assert r.events == 4
    assert r.nll == pytest.approx(expected, rel=1e-5)
    assert r.accuracy == pytest.approx(1 / 4)  # argmax is always NOTE_ON 60
    assert r.by_type["VELOCITY"]["nll"] == pytest.approx(-math.log(0.5 / 385), rel=1e-5)


def test_evaluate_report(tmp_path: Path):
    rng = np.random.default_rng(0)
    for i in range(6):
        starts = np.cumsum(rng.uniform(0.05, 0.3, 80))
        notes = make_notes(starts, starts + 0.2, rng.integers(50, 70, 80), rng.integers(40, 90, 80))
        write_midi(Score(tracks=[Track(notes=notes)]), tmp_path / "midi" / f"{i}.mid")
    prepare([tmp_path / "midi"], tmp_path / "data", config=PrepareConfig(workers=1), progress=False)
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    for i, record in enumerate(manifest["files"]):  # the hash split of 6 files is anyone's guess
        record["split"] = "test" if i < 2 else "train"
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    torch.manual_seed(0)
    model = PerformanceRNN(ModelConfig(embed_dim=8, hidden_size=8, num_layers=1))
    save_checkpoint(tmp_path / "m.pt", model, ENC, step=0)
    report = evaluate(tmp_path / "m.pt", tmp_path / "data", "test", baselines=(1, 3),
                      segment_events=64, progress=False, memory=False)
    assert [r.name for r in report.results] == ["model", "unigram", "3-gram"]
    assert len({r.events for r in report.results}) == 1  # every scorer on the same events
    assert report.results[0].nll == pytest.approx(math.log(388), abs=0.1)  # untrained: ~uniform
    assert report.results[2].nll < report.results[1].nll < math.log(388)
    assert "3-gram" in report.table() and report.to_dict()["results"][0]["bits"] > 0


def test_evaluate_reports_the_piece_s_own_past(tmp_path: Path):
    """Test files that play a phrase again and again: with the short-term model of each piece,
    the same (untrained, near-uniform) model predicts them far better; the rows say so."""
    rng = np.random.default_rng(1)
    for i in range(4):
        gaps = rng.uniform(0.1, 0.3, 12)
        pitches, velocities = rng.integers(50, 70, 12), rng.integers(40, 90, 12)
        starts = np.cumsum(np.tile(gaps, 6))
        notes = make_notes(starts, starts + 0.08, np.tile(pitches, 6), np.tile(velocities, 6))
        write_midi(Score(tracks=[Track(notes=notes)]), tmp_path / "midi" / f"{i}.mid")
    prepare([tmp_path / "midi"], tmp_path / "data", config=PrepareConfig(workers=1), progress=False)
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    for i, record in enumerate(manifest["files"]):
        record["split"] = "test" if i < 2 else "train"
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    torch.manual_seed(0)
    model = PerformanceRNN(ModelConfig(embed_dim=8, hidden_size=8, num_layers=1))
    save_checkpoint(tmp_path / "m.pt", model, ENC, step=0)
    report = evaluate(tmp_path / "m.pt", tmp_path / "data", "test", baselines=(),
                      progress=False)
    rows = {r.name: r for r in report.results}
    assert list(rows) == ["model", "whole files", "+memory"]
    alone, mixed = rows["whole files"], rows["+memory"]
    assert alone.events == mixed.events == rows["model"].events  # one segment per file
    assert alone.nll == pytest.approx(math.log(388), abs=0.15)
    assert mixed.nll < 0.6 * alone.nll  # five of six passes through the phrase come back
    assert mixed.by_type["NOTE_ON"]["nll"] < 0.5 * alone.by_type["NOTE_ON"]["nll"]
    assert "+memory" in report.table() and report.to_dict()["results"][2]["accuracy"] is None
