"""The generation loop: the grammar advancing rows that continue other rows, beam search over a
batch of pieces, and the ids followed back through the rows a beam kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melodia.encoding import get_encoding
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.decoding import Step, _trace, best_beams, iter_steps
from melodia.generation.generator import generate_ids
from melodia.generation.grammar import Grammar, GrammarConfig
from melodia.generation.session import open_session
from tests.generation.test_grammar import check_stream

pytestmark = pytest.mark.usefixtures("one_thread")


def test_advance_continues_the_parent_rows_then_masks():
    encoding = get_encoding("piano")
    v = encoding.vocab
    on = [v.encode_event("NOTE_ON", p) for p in (60, 62, 64)]
    grammar, reference = Grammar(encoding, batch=3), Grammar(encoding, batch=3)
    for g in (grammar, reference):
        g.update(np.array(on))
    parents = np.array([2, 2, 0, 1])
    shift = np.full(4, v.encode_event("TIME_SHIFT", 5))
    mask = grammar.advance(shift, parents)
    reference.select(parents)
    reference.update(shift)
    assert np.array_equal(mask, reference.mask())
    off = mask[:, v.offset("NOTE_OFF"):v.offset("TIME_SHIFT")]
    assert [np.flatnonzero(r).tolist() for r in off] == [[64], [64], [60], [62]]
    assert grammar.now.tolist() == [5, 5, 5, 5]


def test_trace_follows_the_rows_kept():
    history = [Step(np.array([10, 11, 12, 13]), kept=np.array([0, 0, 1, 1])),
               Step(np.array([20, 21, 22, 23])),
               Step(np.array([30, 31, 32, 33]), kept=np.array([3, 3, 0, 0])),
               Step(np.array([40, 41, 42, 43]))]
    assert _trace(history, 0).tolist() == [13, 23, 30, 40]
    assert _trace(history, 3).tolist() == [10, 20, 33, 43]


def test_a_beam_of_several_pieces_keeps_each_piece_to_its_own_rows():
    """Two pieces with different corpus-drawn controls, one batch of beams: each piece's result
    is a well-formed stream, and the rows of one piece never continue the other's."""
    config = GenerateConfig(seconds=2, seed=3, num=2, sampler=SamplerConfig(beam_size=2,
                                                                            branch_factor=2))
    session = open_session("piano", config, batch=2)
    generator = torch.Generator().manual_seed(session.seed)
    steps = iter_steps(session.stepper, session.start, session.sampler, generator)
    width = 4
    for n, step in zip(range(40), steps):
        assert len(step.ids) == 2 * width
        if step.kept is not None and n:
            assert (step.kept[:width] < width).all() and (step.kept[width:] >= width).all()
    result = generate_ids("piano", config)
    again = generate_ids("piano", config)
    assert len(result.pieces) == 2
    for piece, same in zip(result.pieces, again.pieces):
        assert np.array_equal(piece, same)
        check_stream(piece, result.encoding, GrammarConfig())
    end = [result.encoding.decode(p).notes_end_s for p in result.pieces]
    assert all(e > 1.0 for e in end)
    assert not np.array_equal(result.pieces[0], result.pieces[1])


def test_best_beams_stops_each_piece_at_its_own_length():
    config = GenerateConfig(events=30, seed=1, num=2, sampler=SamplerConfig(beam_size=3))
    result = generate_ids("piano", config)
    assert [len(p) - result.primer_events for p in result.pieces] == [30, 30]
    with pytest.raises(ValueError, match="ended before"):
        best_beams(iter([]), Grammar(result.encoding), config.sampler, max_events=5)


def test_watched_reports_progress_and_a_raise_stops_generation():
    from melodia.generation.decoding import WATCH_EVERY, watched

    seen = []
    with watched(lambda events, seconds: seen.append((events, seconds))):
        generate_ids("piano", GenerateConfig(seconds=3, seed=1))
    assert seen and seen[0][0] == WATCH_EVERY
    assert all(b[0] > a[0] and b[1] >= a[1] for a, b in zip(seen, seen[1:]))
    assert 0 < seen[-1][1] <= 3.0

    class Stop(Exception):
        pass

    def cancel(events, seconds):
        raise Stop

    with pytest.raises(Stop), watched(cancel):
        generate_ids("piano", GenerateConfig(seconds=3, seed=1))
    assert generate_ids("piano", GenerateConfig(seconds=0.5, seed=1)).pieces  # unwatched again
