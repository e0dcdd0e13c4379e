"""The band grooves: planned bars lean on the part's own earlier bars, drums fall on the grid,
``repeat=0`` with free drums and ``keep_playing=False`` is the model alone; pieces written to
MIDI and read back."""

import numpy as np
import pytest

from melodia.encoding import get_encoding
from melodia.encoding.events import lookup_tables
from melodia.evaluate.stats import grid_share
from melodia.evaluate.structure import bar_return
from melodia.features.groove import GrooveTable
from melodia.generation.config import GenerateConfig
from melodia.generation.generator import generate_ids, iter_events
from melodia.generation.groove import (
    PRESENT_SHARE,
    BarLines,
    GrooveGuide,
    draw_plans,
    groove_for,
)
from melodia.midi import read_midi, write_midi
from melodia.midi.instruments import group_of
from melodia.model.registry import load_model
from melodia.util.knobs import KnobError

LNH = {"style": "heavy-metal", "tempo": 160.0, "randomness": 0.2,
       "lineup": "drums,bass,guitar,guitar"}


def test_guide_leans_on_the_bar_before_at_the_same_place():
    encoding = get_encoding("band")
    vocab = encoding.vocab
    kinds, values = lookup_tables(vocab)
    plans = [{128: [0, 1, 0]}]  # bar 1 repeats bar 0; bar 2 is free
    guide = GrooveGuide(encoding, plans, BarLines.even(0, 100.0), now=np.zeros(1, np.int64),
                        strengths={128: 5.0})
    kick = vocab.encode_event("NOTE_ON", 36)
    drums = np.array([128])
    guide.update(np.array([vocab.encode_event("TIME_SHIFT", 20)]), kinds, values, drums)
    guide.update(np.array([kick]), kinds, values, drums)  # a kick at step 20 of bar 0
    assert not guide.bias(np.array([20]), drums).any()  # bar 0 is free
    guide.update(np.array([vocab.encode_event("TIME_SHIFT", 90)]), kinds, values, drums)
    bias = guide.bias(np.array([110]), drums)[0]  # step 10 of bar 1: the kick is 10 ahead
    assert bias[vocab.encode_event("TIME_SHIFT", 10)] == 5.0
    assert bias[vocab.encode_event("TIME_SHIFT", 11)] == -5.0  # not past the kick
    assert bias[kick] == -5.0  # a returning part adds little of its own
    bias = guide.bias(np.array([120]), drums)[0]
    assert bias[kick] == 5.0 and bias[kick + 1] == -5.0
    guitar = guide.bias(np.array([120]), np.array([29]))[0]  # another part sounds: program
    assert guitar[vocab.offset("PROGRAM") + 128] == 5.0
    assert not guide.bias(np.array([220]), drums).any()  # bar 2 is free


def test_a_song_s_own_bars_carry_a_returning_bar_to_the_same_beat_across_a_tempo_change():
    lines = BarLines([0, 100, 200, 250], tail=50)  # bars of 100 steps, then twice as fast
    assert [lines.bar_of(s) for s in (0, 96, 97, 198, 199, 248, 249, 299, 330, 351)] == \
        [0, 0, 1, 1, 2, 2, 3, 4, 4, 5]  # half a 16th (of the bar it starts) early: next bar
    assert lines.moved(20, 0, 1) == 120 and lines.moved(120, 1, 3) == 260  # 20% into the bar
    assert lines.start(5) == 350 and lines.length(3) == 50
    encoding = get_encoding("band")
    vocab = encoding.vocab
    kinds, values = lookup_tables(vocab)
    guide = GrooveGuide(encoding, [{128: [0, 0, 0, 2]}], lines, now=np.zeros(1, np.int64),
                        strengths={128: 5.0})  # bar 3 returns to bar 1
    kick, drums = vocab.encode_event("NOTE_ON", 36), np.array([128])
    guide.update(np.array([vocab.encode_event("TIME_SHIFT", 100)]), kinds, values, drums)
    guide.update(np.array([vocab.encode_event("TIME_SHIFT", 20)]), kinds, values, drums)
    guide.update(np.array([kick]), kinds, values, drums)  # step 120: 20% into bar 1
    for shift in (100, 30):
        guide.update(np.array([vocab.encode_event("TIME_SHIFT", shift)]), kinds, values, drums)
    assert guide.bias(np.array([250]), drums)[0, vocab.encode_event("TIME_SHIFT", 10)] == 5.0
    guide.update(np.array([vocab.encode_event("TIME_SHIFT", 10)]), kinds, values, drums)
    assert guide.bias(np.array([260]), drums)[0, kick] == 5.0
    for bad in (([0, 0, 100], None), ([0], None), ([0, 100], -1.0)):
        with pytest.raises(ValueError):
            BarLines(*bad)


def test_a_silent_part_the_style_plays_is_called_back():
    encoding = get_encoding("band")
    vocab = encoding.vocab
    kinds, values = lookup_tables(vocab)
    guide = GrooveGuide(encoding, [{33: [0, 0]}], BarLines.even(0, 100.0),
                        now=np.zeros(1, np.int64), strengths={}, present={33: 3.0})
    program = vocab.offset("PROGRAM") + 33
    assert guide.bias(np.array([60]), np.array([128]))[0, program] == 3.0
    bass = np.array([33])
    assert guide.bias(np.array([60]), bass)[0, vocab.encode_event("NOTE_ON", 40)] == 3.0
    guide.update(np.array([vocab.encode_event("TIME_SHIFT", 60)]), kinds, values, bass)
    guide.update(np.array([vocab.encode_event("NOTE_ON", 40)]), kinds, values, bass)
    assert not guide.bias(np.array([100]), np.array([128])).any()  # it played 40 steps ago
    assert guide.bias(np.array([111]), np.array([128]))[0, program] == 3.0


def test_plans_are_drawn_by_seed_and_row():
    table = GrooveTable.load()
    a = draw_plans(table, "funk", [128, 33], 16, 2, seed=5, repeat=None)
    assert a == draw_plans(table, "funk", [128, 33], 16, 2, seed=5, repeat=None)
    assert a[0] != a[1]
    assert all(k == 0 for plan in draw_plans(table, "funk", [128], 16, 1, 5, 0.0)
               for k in plan[128])


def test_repeat_knob_is_checked():
    with pytest.raises(KnobError):
        GenerateConfig(repeat=1.5)
    assert GenerateConfig().repeat == 0 and not GenerateConfig().drum_grid  # opt-in for now
    assert GenerateConfig().keep_playing  # the parts called back: on unless turned off


def test_every_lever_off_leaves_the_model_alone():
    config = GenerateConfig(repeat=0.0, drum_grid=False, keep_playing=False)
    plan = {"qpm": 160.0, "instruments": [128, 33], "style": "metal"}
    assert groove_for(get_encoding("band"), config, plan, np.zeros(1, np.int64), 1000, 1) == \
        (None, None)
    assert groove_for(get_encoding("band"), GenerateConfig(repeat=None), None, np.zeros(1, np.int64),
                      1000, 1) == (None, None)


def test_keep_playing_alone_calls_back_the_style_s_steady_parts_with_every_bar_free():
    plan = {"qpm": 160.0, "instruments": [128, 33, 30], "style": "heavy-metal"}
    guide, _ = groove_for(get_encoding("band"), GenerateConfig(keep_playing=True), plan,
                          np.zeros(2, np.int64), 1000, 1)
    table = GrooveTable.load()
    steady = {i for i in plan["instruments"]
              if table.presence_share("heavy-metal", group_of(i)) >= PRESENT_SHARE}
    assert steady and set(guide.present) == steady  # what the style plays in most bars
    assert all(k == 0 for row in guide.plans for bars in row.values() for k in bars)


def _measure(tmp_path, **knobs) -> tuple[float, float, float]:
    result = generate_ids("band", GenerateConfig(seconds=15.0, seed=3, **LNH, **knobs))
    path = tmp_path / f"piece-{sorted(knobs.items())}.mid"
    write_midi(result.scores()[0], path)
    score = read_midi(path)
    drums = next(t for t in score.tracks if t.is_drum).notes
    bass = np.concatenate([t.notes for t in score.tracks if not t.is_drum
                           and 32 <= t.program < 40] or [drums[:0]])
    return (bar_return(drums, score.tempos), bar_return(bass, score.tempos),
            grid_share(np.unique(drums["start_s"]), score.tempos))


def test_grooving_band_returns_more_and_sits_on_the_grid(tmp_path):
    free_drums, _, free_grid = _measure(tmp_path, repeat=0.0, drum_grid=False)
    drums, _, grid = _measure(tmp_path, repeat=0.8, drum_grid=True)
    assert grid >= 0.85 and grid > free_grid  # on 16ths or triplets; 16ths are counted
    assert drums >= free_drums + 0.2


def _longest_bass_rest(keep_playing: bool, seconds: float = 20.0) -> tuple[float, int]:
    """The longest stretch (s) without a bass note in the first ``seconds`` of a stream
    (:func:`iter_events`, the LnH command, seed 3: the seed whose bass played 8 notes in 30 s),
    and the bass notes."""
    checkpoint = load_model("band")
    vocab, sps = checkpoint.encoding.vocab, checkpoint.encoding.config.steps_per_second
    config = GenerateConfig(seed=3, keep_playing=keep_playing, **LNH)
    now, program, bass = 0, None, []
    for i in iter_events(checkpoint, config=config):
        event = vocab.decode_event(i)
        if event.type == "TIME_SHIFT":
            now += event.value
            if now > seconds * sps:
                break
        elif event.type == "PROGRAM":
            program = event.value
        elif event.type == "NOTE_ON" and program is not None and 32 <= program < 40:
            bass.append(now)
    return float(np.diff([0, *bass, now]).max()) / sps, len(bass)


def test_a_stream_calls_its_bass_back_within_a_bar():
    """``melodia stream`` plays with the parts called back by default: at 160 BPM a bar is
    1.5 s, and a part silent for half a bar is called back."""
    rest, notes = _longest_bass_rest(True)
    free_rest, free_notes = _longest_bass_rest(False)
    assert rest <= 1.5 and notes >= 30, (rest, notes)
    assert free_rest > 3.0 and free_notes < notes  # the model alone lets this bass drop out
