"""melodia.generation.recall: the piece's own past pulls the shipped piano model's sampling."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.generator import generate_ids, iter_events
from melodia.model.memory import ShortTermModel, Views, gate_for
from melodia.model.registry import load_model
from tests.conftest import DATA

CHORALE = sorted((DATA / "chorales").glob("*.mid"))[0]


def _recalled(ids: np.ndarray, primer_events: int, views: Views) -> float:
    """Mean probability the short-term model (fed all before) gave each new event."""
    stm = ShortTermModel(views)
    for event in ids[:primer_events]:
        stm.observe(int(event))
    got = []
    for event in ids[primer_events:]:
        probs, _ = stm.predict()
        got.append(probs.get(int(event), 0.0))
        stm.observe(int(event))
    return float(np.mean(got))


def test_memory_brings_back_what_the_primer_played():
    """Primed with a chorale's opening, a piece at memory 1 plays more of what the short-term
    model expects than at memory 0, seed for seed. The mechanism, with a gate that leans hard
    (the model's metadata names it); how far the shipped gate moves sampled music is a figure
    of tests/benchmarks/eval_memory.py."""
    shipped = load_model("piano")
    strong = {**gate_for(shipped, 1.0).to_dict(), "bias": -1.0}
    piano = dataclasses.replace(shipped, extra={**shipped.extra, "memory": strong})
    assert gate_for(piano, 1.0).bias == -1.0
    views = Views.of(piano.encoding)
    gains = []
    for seed in (1, 2, 3):
        recalled = []
        for memory in (0.0, 1.0):
            made = generate_ids(piano, GenerateConfig(events=300, seed=seed, memory=memory,
                                                      primer_seconds=20.0), primer=CHORALE)
            recalled.append(_recalled(made.pieces[0], made.primer_events, views))
        gains.append(recalled[1] - recalled[0])
    assert all(g > 0 for g in gains) and np.mean(gains) > 0.03, gains


def _leaning(model: str = "piano"):
    """The shipped model with a gate that leans hard, named in its metadata."""
    shipped = load_model(model)
    strong = {**gate_for(shipped, 1.0).to_dict(), "bias": -1.0}
    return dataclasses.replace(shipped, extra={**shipped.extra, "memory": strong})


def test_the_embedding_sampler_and_a_live_stream_hear_the_memory_too():
    """The embedding sampler scores tokens at a perturbed point, not by the logits: the memory
    reaches it as a per-token bonus (before, it was silently ignored). ``iter_events``, what
    ``melodia stream`` plays, takes it too."""
    piano = _leaning()
    views = Views.of(piano.encoding)
    embedding, live = [], []
    for seed in (1, 2, 3):
        recalled = []
        for memory in (0.0, 1.0):
            config = GenerateConfig(events=300, seed=seed, memory=memory, primer_seconds=20.0,
                                    sampler=SamplerConfig(sampler="embedding"))
            made = generate_ids(piano, config, primer=CHORALE)
            recalled.append(_recalled(made.pieces[0], made.primer_events, views))
        embedding.append(recalled[1] - recalled[0])
        recalled = []
        for memory in (0.0, 1.0):
            config = GenerateConfig(seed=seed, memory=memory, primer_seconds=20.0)
            primer = generate_ids(piano, dataclasses.replace(config, events=1),
                                  primer=CHORALE).pieces[0][:-1]
            events = iter_events(piano, config=config, primer=CHORALE)
            ids = np.concatenate([primer, [next(events) for _ in range(300)]])
            recalled.append(_recalled(ids, len(primer), views))
        live.append(recalled[1] - recalled[0])
    assert all(g > 0 for g in embedding) and np.mean(embedding) > 0.03, embedding
    assert all(g > 0 for g in live) and np.mean(live) > 0.03, live


def test_accompany_and_infill_take_the_memory():
    """The parts a band adds around given music hear the piece's past (given parts included)."""
    from melodia.generation.accompaniment import accompany_ids
    from tests.generation.test_given import _given_file

    band = _leaning("band")
    given = _given_file(6.0)
    made = {m: accompany_ids(band, given, GenerateConfig(seed=3, lineup="drums,bass", memory=m))
            for m in (0.0, 1.0)}
    again = accompany_ids(band, given, GenerateConfig(seed=3, lineup="drums,bass", memory=1.0))
    assert made[0.0].midi_bytes() != made[1.0].midi_bytes()
    assert again.midi_bytes() == made[1.0].midi_bytes()


def test_a_copy_the_model_finds_implausible_is_not_offered():
    from melodia.generation.recall import PLAUSIBLE, plausible

    p_model = np.full(10, 0.1)
    p_model[3], p_model[4] = PLAUSIBLE / 2, 0.2 - PLAUSIBLE / 2
    kept = plausible({3: 0.6, 4: 0.3, 5: 0.1}, p_model)
    assert kept == pytest.approx({4: 0.75, 5: 0.25})
    assert plausible({3: 1.0}, p_model) == {}


def test_memory_zero_is_the_model_alone_and_the_gate_is_the_shipped_one():
    piano = load_model("piano")
    a = generate_ids(piano, GenerateConfig(events=80, seed=4))
    b = generate_ids(piano, GenerateConfig(events=80, seed=4, memory=0.0))
    assert np.array_equal(a.pieces[0], b.pieces[0])
    gate = gate_for(piano, 0.5)
    assert gate.memory == 0.5 and len(gate.weights) == 6


def test_beam_search_with_memory_is_refused():
    with pytest.raises(ValueError, match="beam search"):
        generate_ids("piano", GenerateConfig(events=20, seed=1, memory=1.0,
                                             sampler=SamplerConfig(beam_size=2)))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_memory_outside_0_to_1_is_refused(bad):
    with pytest.raises(ValueError, match="memory"):
        GenerateConfig(seconds=5, memory=bad)


def test_cli_memory(tmp_path):
    out = tmp_path / "m.mid"
    ok = subprocess.run([sys.executable, "-m", "melodia.cli", "generate", "--seconds", "3",
                         "--seed", "2", "--memory", "0.7", "-o", str(out)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and out.stat().st_size > 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "melodia.cli", "generate", "--memory", "2"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "from 0 to 1" in bad.stderr and "Traceback" not in bad.stderr
