"""Bar relations and the groove table: known riffs give known relations, plans obey the knob,
the table survives its JSON round trip, and the shipped table knows the band's styles."""

import numpy as np
import pytest

from melodia.features.groove import (LAGS, POOLED, TABLE_PATH, GrooveTable, bar_relations,
                                     bar_sets, relations)
from melodia.midi import TEMPO_DTYPE, Score, Track, make_notes, read_midi, write_midi


def _bars(pitches_per_bar: list[list[int]], qpm: float = 120.0) -> np.ndarray:
    """Notes of 4/4 bars at ``qpm``: each bar's pitches struck on its 16ths, in order."""
    sixteenth = 15.0 / qpm
    start, pitch = [], []
    for n, bar in enumerate(pitches_per_bar):
        for slot, p in enumerate(bar):
            start.append((16 * n + slot) * sixteenth)
            pitch.append(p)
    start = np.array(start)
    return make_notes(start, start + sixteenth / 2, pitch, [90] * len(pitch))


def test_two_bar_riff_returns_two_bars_back():
    a, b = [36, 42, 38, 42], [45, 47, 49, 51]  # no (position, pitch) in common
    rels = bar_relations(_bars([a, b, a, b, a, b]), None)
    assert [k for k, _ in rels] == [0, 0, 2, 2, 2, 2]
    assert all(s == 1.0 for k, s in rels if k)


def test_a_varied_bar_relates_and_a_new_one_is_free():
    a = [36, 42, 38, 42, 36, 42, 38, 42]
    varied = a[:7] + [49]  # 7 of 8 onsets kept: Jaccard 7/9
    new = [60, 61, 62, 63, 64, 65, 66, 67]
    rels = bar_relations(_bars([a, varied, new]), None)
    assert rels[1] == (1, pytest.approx(7 / 9))
    assert rels[2][0] == 0


def test_empty_bars_are_free_and_nothing_reaches_before_the_first_bar():
    bars = [frozenset({(0, 36)}), frozenset(), frozenset({(0, 36)})]
    assert [k for k, _ in relations(bars)] == [0, 0, 2]
    assert relations([]) == []


def test_relations_read_back_from_a_real_midi_file(tmp_path):
    """A written and re-read drum groove at 97 qpm (bars between the file's ticks)."""
    groove = [36, 42, 38, 42] * 4
    notes = _bars([groove] * 6, qpm=97.0)
    score = Score([Track(notes, is_drum=True, name="drums")],
                  tempos=np.array([(0.0, 97.0)], dtype=TEMPO_DTYPE))
    write_midi(score, tmp_path / "groove.mid")
    back = read_midi(tmp_path / "groove.mid")
    drums = next(t for t in back.tracks if t.is_drum)
    assert len(bar_sets(drums.notes, back.tempos)) == 6
    assert [k for k, _ in bar_relations(drums.notes, back.tempos)] == [0, 1, 1, 1, 1, 1]


def _table() -> GrooveTable:
    table = GrooveTable()
    table.add("funk", "drums", [(0, 0.0), (1, 1.0), (1, 0.8), (2, 0.6), (0, 0.1)])
    table.add("metal", "bass", [(0, 0.0), (0, 0.2), (4, 0.9)])
    return table


def test_table_counts_a_chain_per_style_and_pooled():
    table = _table()
    assert np.sum(table.transitions["funk"]["drums"]) == 4
    assert np.sum(table.transitions[POOLED]["drums"]) == 4
    assert table.return_share("funk", "drums") == pytest.approx(3 / 4)
    assert table.mean_similarity("funk", "drums", 1) == pytest.approx(0.9)
    assert table.chain("funk", "bass") is not None  # from the pooled styles
    assert table.chain("funk", "winds") is None
    assert np.allclose(table.chain("funk", "drums").sum(axis=1), 1.0)


@pytest.mark.parametrize("repeat", [0.0, 0.5, 1.0, None])
def test_plans_never_reach_before_the_first_bar_and_follow_repeat(repeat):
    plans = [_table().draw("funk", "drums", 40, np.random.default_rng(seed), repeat)
             for seed in range(20)]
    for plan in plans:
        assert len(plan) == 40 and plan[0] == 0
        assert all(k <= n and k in (0, *LAGS) for n, k in enumerate(plan))
    returning = np.mean([k > 0 for plan in plans for k in plan[1:]])
    if repeat is not None:
        assert returning == pytest.approx(repeat, abs=0.05)


def test_table_round_trips_through_json(tmp_path):
    table = _table()
    table.strength = {"drums": 6.0}
    table.save(tmp_path / "t.json")
    assert GrooveTable.load(tmp_path / "t.json") == table


def test_the_shipped_table_knows_the_band_styles():
    table = GrooveTable.load(TABLE_PATH)
    for style in ("metal", "funk", "bossa", "rock"):
        assert 0.3 <= table.return_share(style, "drums") <= 1.0
        assert table.chain(style, "bass") is not None
    assert set(table.strength) >= {"drums", "bass"}
    assert table.presence_share("metal", "bass") >= 0.85  # a metal bass plays most bars


def test_presence_counts_bars_from_the_first_note_on():
    table = GrooveTable()
    empty, hit = frozenset(), frozenset({(0, 36)})
    table.add_presence("funk", "bass", [empty, empty, hit, empty, hit, hit])
    assert table.presence["funk"]["bass"] == [3.0, 4.0]
    assert table.presence_share("funk", "bass") == 0.75
    assert table.presence_share("metal", "bass") == 0.75  # pooled
    assert table.presence_share("funk", "winds") == 0.0
