"""Grammar masks: every rule holds for any stream, whatever the model wants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melodia.encoding import get_encoding
from melodia.encoding.events import NOTE_OFF, NOTE_ON, PROGRAM, TIME_SHIFT, VELOCITY, lookup_tables
from melodia.generation.grammar import Grammar, GrammarConfig
from melodia.generation.pick import sample_probability
from melodia.midi import read_midi, write_midi

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------ grammar


def check_stream(ids: np.ndarray, encoding, config: GrammarConfig) -> None:
    """Replay a stream independently of Grammar and assert every rule held."""
    kinds, values = lookup_tables(encoding.vocab)
    sps = encoding.config.steps_per_second
    sounding: dict[tuple[int, int], int] = {}
    now = last_on = at_step = 0
    instrument, prev = 0, -1
    for i in ids.tolist():
        kind, value = kinds[i], values[i]
        if prev == VELOCITY and config.velocity_before_note_on:
            assert kind == NOTE_ON, "VELOCITY not followed by NOTE_ON"
        if kind == TIME_SHIFT:
            now += value
            at_step = 0
            for start in sounding.values():
                assert now - start <= config.max_note_s * sps, "note longer than max_note_s"
            assert now - last_on <= config.max_wait_s * sps, "waited too long for a note"
        elif kind != NOTE_OFF:
            at_step += 1
            assert at_step <= config.max_events_per_step, "too many events at one instant"
        if kind == NOTE_ON:
            sounding[(instrument, value)] = now
            last_on = now
            assert len(sounding) <= config.max_polyphony, "too many notes at once"
        elif kind == NOTE_OFF:
            assert (instrument, value) in sounding, "NOTE_OFF of a silent pitch"
            del sounding[(instrument, value)]
        elif kind == PROGRAM:
            instrument = value
        prev = kind


def random_stream(encoding, config: GrammarConfig, n: int, batch: int, seed: int,
                  logits: torch.Tensor | None = None) -> np.ndarray:
    """Events drawn under the grammar from fixed (default uniform) logits."""
    grammar = Grammar(encoding, config, batch)
    g = gen(seed)
    logits = torch.zeros(batch, encoding.vocab_size) if logits is None else logits
    out = []
    for _ in range(n):
        ids = sample_probability(logits, g, mask=torch.from_numpy(grammar.mask())).numpy()
        grammar.update(ids)
        out.append(ids)
    return np.stack(out, axis=1)


CONFIGS = [GrammarConfig(), GrammarConfig(max_polyphony=3, max_note_s=0.3, max_wait_s=0.5,
                                          max_events_per_step=3)]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name", ["piano", "band"])
def test_grammar_holds_for_uniform_random_events(name, config, tmp_path):
    encoding = get_encoding(name)
    streams = random_stream(encoding, config, n=1500, batch=4, seed=1)
    for b, ids in enumerate(streams):
        check_stream(ids, encoding, config)
        path = write_midi(encoding.decode(ids), tmp_path / f"{b}.mid")
        back = read_midi(path)
        assert back.note_count == encoding.decode(ids).note_count > 0


def test_grammar_holds_when_the_model_wants_to_break_it():
    """Logits that favour the forbidden: long shifts, note-offs, velocities; still well formed."""
    encoding = get_encoding("piano")
    v = encoding.vocab
    logits = torch.full((2, v.size), -5.0)
    logits[:, v.offset("NOTE_OFF"):v.offset("NOTE_OFF") + 128] = 5.0
    logits[:, v.offset("TIME_SHIFT") + 99] = 8.0
    logits[:, v.offset("VELOCITY"):] = 6.0
    for config in CONFIGS:
        for ids in random_stream(encoding, config, n=800, batch=2, seed=2, logits=logits):
            check_stream(ids, encoding, config)


def test_grammar_forces_the_note_off_of_a_held_note():
    encoding = get_encoding("piano")
    v = encoding.vocab
    grammar = Grammar(encoding, GrammarConfig(max_note_s=1.0))
    grammar.feed([v.encode_event("NOTE_ON", 60), v.encode_event("TIME_SHIFT", 60)])
    mask = grammar.mask()[0]
    shifts = np.flatnonzero(mask[v.offset("TIME_SHIFT"):v.offset("VELOCITY")]) + 1
    assert shifts.max() == 40  # 0.6 s played, 0.4 s left
    grammar.feed([v.encode_event("TIME_SHIFT", 40)])
    assert np.flatnonzero(grammar.mask()[0]).tolist() == [v.encode_event("NOTE_OFF", 60)]


def test_grammar_select_copies_rows():
    encoding = get_encoding("piano")
    v = encoding.vocab
    grammar = Grammar(encoding, batch=2)
    grammar.update(np.array([v.encode_event("NOTE_ON", 60), v.encode_event("NOTE_ON", 62)]))
    grammar.select(np.array([1, 1, 0]))
    off = grammar.mask()[:, v.offset("NOTE_OFF"):v.offset("TIME_SHIFT")]
    assert [np.flatnonzero(r).tolist() for r in off] == [[62], [62], [60]]
