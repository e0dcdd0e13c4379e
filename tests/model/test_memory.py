"""melodia.model.memory: the short-term model on known cases, real encoded music included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from melodia.encoding import get_encoding
from melodia.encoding.events import NOTE_OFF, NOTE_ON
from melodia.model.memory import Gate, ShortTermModel, Views, mix
from tests.conftest import DATA

ENCODING = get_encoding("piano")
VIEWS = Views.of(ENCODING)


def _read(path) -> np.ndarray:
    return ENCODING.encode(str(path))


def _probabilities(stm: ShortTermModel, ids) -> list[float | None]:
    """The short-term model's probability of each event before seeing it (None: no match)."""
    out = []
    for event in ids:
        probs, _ = stm.predict()
        out.append(probs.get(int(event), 0.0) if probs else None)
        stm.observe(int(event))
    return out


def test_a_piece_played_twice_is_predicted_near_certainly_the_second_time():
    ids = _read(sorted((DATA / "chorales").glob("*.mid"))[0])
    got = _probabilities(ShortTermModel(VIEWS), np.concatenate([ids, ids]))
    second = np.array(got[len(ids) + 40:], dtype=float)  # once the longest contexts are in
    assert np.nanmean(second) > 0.95 and not np.isnan(second).any()
    first = [p for p in got[:len(ids)] if p is not None]
    assert np.mean(first) < 0.8  # the first time round, only what the piece repeats itself


def test_a_transposed_repeat_is_recognised_by_its_intervals():
    ids = _read(sorted((DATA / "chorales").glob("*.mid"))[0])
    kinds, values = VIEWS.kinds, VIEWS.values
    notes = (kinds[ids] == NOTE_ON) | (kinds[ids] == NOTE_OFF)
    up = np.where(notes, ids + 5, ids)  # a fourth higher (NOTE_ON and NOTE_OFF ids move by 5)
    assert (values[up[notes]] == values[ids[notes]] + 5).all()
    relative = _probabilities(ShortTermModel(VIEWS), np.concatenate([ids, up]))
    absolute = _probabilities(ShortTermModel(VIEWS, relative=False), np.concatenate([ids, up]))
    tail = slice(len(ids) + 40, None)
    assert np.nanmean(np.array(relative[tail], dtype=float)) > 0.9
    assert np.nanmean(np.array(absolute[tail], dtype=float)) < 0.6


def test_random_events_gain_nothing_and_lose_little_with_the_gate():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, ENCODING.vocab_size, 3000)
    stm, gate = ShortTermModel(VIEWS), Gate()
    uniform = np.full(ENCODING.vocab_size, 1.0 / ENCODING.vocab_size)
    alone, mixed = [], []
    for event in ids:
        probs, features = stm.predict()
        p, _ = mix(uniform.copy(), probs, features, gate)
        alone.append(-math.log(uniform[event]))
        mixed.append(-math.log(p[event]))
        stm.observe(int(event))
    assert abs(np.mean(mixed) - np.mean(alone)) < 0.05 * np.mean(alone)


def test_cost_per_event_does_not_grow_with_the_piece():
    """Bounded structures: the history kept stays short however long the piece."""
    stm = ShortTermModel(VIEWS)
    for event in np.random.default_rng(1).integers(0, ENCODING.vocab_size, 5000):
        stm.predict()
        stm.observe(int(event))
    assert len(stm._history) <= 2 * max(stm.orders) and stm.events == 5000


def test_mix_keeps_a_distribution_and_memory_zero_is_the_model_alone():
    stm = ShortTermModel(VIEWS)
    for event in [300, 60, 316, 188, 300, 60, 316, 188, 300]:
        stm.observe(event)
    probs, features = stm.predict()
    assert max(probs, key=probs.get) == 60 and probs[60] > 0.5
    model = np.random.default_rng(0).dirichlet(np.ones(ENCODING.vocab_size))
    p, g = mix(model.copy(), probs, features.copy(), Gate(bias=0.0))
    assert 0 < g < 1 and p.sum() == pytest.approx(1.0) and p[60] > model[60]
    p0, g0 = mix(model.copy(), probs, features.copy(), Gate(memory=0.0))
    assert g0 == 0.0 and np.array_equal(p0, model)


def test_a_long_copied_run_fades_the_gate_while_sampling():
    gate = Gate(bias=0.0, run_cap=10)
    features = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.5])
    assert gate.weight(features, run=40, sampling=True) < 0.2 * gate.weight(features, run=5,
                                                                             sampling=True)
    assert gate.weight(features, run=40) == gate.weight(features, run=5)  # scoring: no fade


def test_the_lean_raises_the_share_while_sampling_only_and_scales_with_memory():
    features = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.5])
    fitted = Gate(bias=-6.0)
    leaning = Gate(bias=-6.0, lean=4.0)
    assert leaning.weight(features) == fitted.weight(features)  # scoring: the fitted gate
    assert leaning.weight(features, sampling=True) > 4 * fitted.weight(features, sampling=True)
    half = Gate(bias=-6.0, lean=4.0, memory=0.5)
    assert fitted.weight(features, sampling=True) < half.weight(features, sampling=True) < \
        leaning.weight(features, sampling=True)
    assert Gate(bias=-6.0, lean=4.0, memory=0.0).weight(features, sampling=True) == 0.0
    assert Gate.from_dict(leaning.to_dict()) == leaning


@pytest.mark.parametrize("bad", [{"memory": 1.5}, {"weights": (1.0,)},
                                 {"bias": float("nan")}, {"lean": float("inf")},
                                 {"run_cap": 0}])
def test_gate_refuses_bad_settings(bad):
    with pytest.raises(ValueError):
        Gate(**bad)
