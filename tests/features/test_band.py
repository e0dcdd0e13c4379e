"""The band model's parts: line-ups, conditions, instrument inputs, the line-up grammar, a tiny
band model trained on real Freedoom files, and what it generates."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import mido
import numpy as np
import torch
import pytest

from melodia.cli import main
from melodia.corpus.preparation import PrepareConfig, prepare
from melodia.encoding import BandEncoding
from melodia.errors import GenerateError
from melodia.features.band import current_instrument, file_conditions, playing
from melodia.features.controls import model_inputs
from melodia.features.plan import BandLayout, conditions
from melodia.generation.config import GenerateConfig
from melodia.generation.generator import generate_ids
from melodia.generation.grammar import Grammar, GrammarConfig
from melodia.generation.session import band_styles
from melodia.midi.instruments import (DRUMS, LineupError, family_of, group_of, instrument_values,
                                      parse_lineup, part_instruments)
from melodia.model.config import ModelConfig
from melodia.model.registry import load_model
from melodia.training.config import TrainConfig
from melodia.training.crops import CropDataset, transpose_ids
from melodia.training.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")

ENC = BandEncoding()
FREEDOOM = Path(__file__).resolve().parents[2] / "data" / "midi" / "freedoom"


def ev(*events: tuple[str, int]) -> np.ndarray:
    return np.array([ENC.vocab.encode_event(t, v) for t, v in events], dtype=np.int64)


# ----------------------------------------------------------------------------- line-ups


def test_part_names_stand_for_instruments():
    assert part_instruments("bass") == frozenset(range(32, 40))
    assert part_instruments("Drums") == part_instruments("kit") == frozenset([DRUMS])
    assert part_instruments("overdriven guitar") == part_instruments("29") == frozenset([29])
    with pytest.raises(LineupError, match="unknown part 'kazoo'"):
        part_instruments("kazoo")


def test_lineup_families_take_distinct_programs_preferred_first():
    assert parse_lineup("drums,bass,guitar,guitar") == [DRUMS, 33, 29, 30]
    assert parse_lineup("guitar,guitar", {"guitar": [30, 27]}) == [30, 27]
    assert parse_lineup("keys, overdriven guitar, 33") == [0, 29, 33]
    assert parse_lineup(["drums", 81]) == [DRUMS, 81]
    assert [family_of(i) for i in parse_lineup("sax,horns,pad")] == ["reed", "brass", "synth-pad"]
    assert group_of(DRUMS) == "drums" and group_of(30) == "guitar" and group_of(17) == "keys"


@pytest.mark.parametrize("spec", ["", "drums,drums", "kazoo", "200", "30,30",
                                  ",".join(["guitar"] * 9), ",".join(["piano"] * 8 + ["organ"] * 8
                                                                     + ["drums"])])
def test_bad_lineups_are_refused_with_a_reason(spec):
    with pytest.raises(LineupError):
        parse_lineup(spec)


def test_instrument_values_cover_the_lineup_family():
    lineup = [DRUMS, 33, 29, 30]
    assert instrument_values("drums=0.8,guitar=1.1", lineup) == {DRUMS: 0.8, 29: 1.1, 30: 1.1}
    assert instrument_values("33=0.5", lineup) == {33: 0.5}
    with pytest.raises(LineupError, match="not in the line-up"):
        instrument_values("organ=1", lineup)
    with pytest.raises(LineupError):
        instrument_values("drums", lineup)


# ---------------------------------------------------------------------------- conditions


def test_conditions_encode_lineup_style_and_tempo():
    layout = BandLayout(("bossa", "metal"))
    c = conditions(layout, ENC, [DRUMS, 33], style=1, qpm=160.0)
    assert c.shape == (layout.dim,) and c[DRUMS] == 1 and c[33] == 1 and c[:128].sum() == 1
    assert c[layout.style].tolist() == [0, 1]
    tempo = c[layout.tempo]
    assert tempo.sum() == pytest.approx(1.0)
    centre = np.dot(np.arange(layout.tempo_bins), tempo)
    assert ENC.bin_to_qpm(centre) == pytest.approx(160.0, rel=1e-3)  # log-linear interpolation
    assert not conditions(layout, ENC).any()  # all absent


def test_current_instrument_and_playing_follow_program_events():
    ids = ev(("NOTE_ON", 60), ("PROGRAM", DRUMS), ("NOTE_ON", 36), ("TIME_SHIFT", 10),
             ("PROGRAM", 33), ("NOTE_ON", 40), ("NOTE_OFF", 40))
    assert current_instrument(ids, ENC).tolist() == [0, DRUMS, DRUMS, DRUMS, 33, 33, 33]
    assert playing(ids, ENC) == [0, 33, DRUMS]
    assert playing(ids[3:], ENC) == [33]


def test_file_conditions_take_the_tempo_in_force():
    layout = BandLayout(("a",))
    ids = np.concatenate([ev(("TEMPO", 10)), ev(("PROGRAM", 33), ("NOTE_ON", 40)),
                          ev(("TEMPO", 20)), ev(("TIME_SHIFT", 5), ("NOTE_OFF", 40))])
    early = file_conditions(ids, ENC, layout, 0, start=1)
    late = file_conditions(ids, ENC, layout, 0, start=4)
    assert np.argmax(early[layout.tempo]) == 10 and np.argmax(late[layout.tempo]) == 20


def test_transposition_leaves_drums_alone():
    ids = ev(("PROGRAM", DRUMS), ("NOTE_ON", 36), ("PROGRAM", 33), ("NOTE_ON", 40),
             ("TIME_SHIFT", 5), ("NOTE_OFF", 40), ("PROGRAM", DRUMS), ("NOTE_OFF", 36))
    up = [str(ENC.vocab.decode_event(i)) for i in transpose_ids(ids, 3, ENC)]
    assert up == ["PROGRAM 128", "NOTE_ON 36", "PROGRAM 33", "NOTE_ON 43", "TIME_SHIFT 5",
                  "NOTE_OFF 43", "PROGRAM 128", "NOTE_OFF 36"]


# ------------------------------------------------------------------------------ grammar


def test_grammar_plays_only_the_lineup_and_keeps_the_tempo():
    g = Grammar(ENC, GrammarConfig(instruments=(DRUMS, 33), tempo_changes=False))
    mask = g.mask()[0]
    p0, t0, on0 = (ENC.vocab.offset(k) for k in ("PROGRAM", "TEMPO", "NOTE_ON"))
    assert set(np.flatnonzero(mask[p0 : p0 + 129])) == {33, DRUMS}
    assert not mask[t0 : t0 + 32].any()
    assert not mask[on0 : on0 + 128].any()  # program 0 (the start) is not in the line-up
    g.update(np.array([p0 + 33]))
    assert g.mask()[0, on0 + 40] and g.instrument_onehot()[0].argmax() == 33


# --------------------------------------------------------------- a tiny band model, trained


TINY_MODELS = {"lstm": ModelConfig(embed_dim=16, hidden_size=32, num_layers=1),
               "transformer": ModelConfig(kind="transformer", embed_dim=16, hidden_size=32,
                                          num_layers=1, num_heads=2, context=64)}


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def band_run(tmp_path_factory, request) -> Path:
    """Four real Freedoom files in two style folders, prepared with labels, and 12 steps of a
    tiny band model on them: an LSTM, and a transformer (every band test runs with both)."""
    root = tmp_path_factory.mktemp("band")
    files = sorted(FREEDOOM.glob("*.mid"))[:4]
    for i, f in enumerate(files):
        folder = root / "src" / ("metal" if i % 2 else "ambient")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, folder / f.name)
    prepare([root / "src"], root / "data", ENC,
            config=PrepareConfig(workers=1, labels_from_folders=True), progress=False)
    manifest = json.loads((root / "data" / "manifest.json").read_text())
    for i, record in enumerate(manifest["files"]):
        record["split"] = "validation" if i == 0 else "train"
    (root / "data" / "manifest.json").write_text(json.dumps(manifest))
    config = TrainConfig(data=str(root / "data"), out=str(root / "run"), steps=12, batch_size=4,
                         seq_len=64, lr=1e-2, min_lr=1e-3, warmup_steps=2, eval_every=12,
                         log_every=4, eval_events=600, eval_segment=200, device="cpu",
                         model=TINY_MODELS[request.param])
    train(config, progress=False)
    return root / "run" / "best.pt"


def test_band_run_learns_styles_and_conditions(band_run: Path):
    from melodia.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(band_run)
    info = ckpt.extra["band"]
    assert band_styles(band_run) == info["styles"] == ["ambient", "metal"]
    c = ckpt.model.config
    assert c.band_dim == BandLayout(("ambient", "metal")).dim and c.instrument_dim == 129
    assert {r["style"] for r in info["lineups"]} <= {"ambient", "metal"}
    assert all(DRUMS in r["instruments"] for r in info["lineups"])  # Freedoom always has drums


def test_crops_feed_what_generation_feeds(band_run: Path, tmp_path: Path):
    """Training crops and the generator build the step inputs (note state, instrument, meter)
    alike."""
    from melodia.features.band import METER_DIM, beats_at, meter_features
    from melodia.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(band_run)
    g = generate_ids(ckpt, GenerateConfig(events=150, seed=0, lineup="drums,bass,guitar",
                                          tempo=97.0))
    ids = g.pieces[0]
    c = ckpt.model.config
    assert c.meter_dim == METER_DIM
    expected = model_inputs(ids, ENC, c, tempos=[[0.0, 97.0]])[:, c.fixed_dim :]
    grammar = Grammar(ENC, GrammarConfig(pitch_range=None, max_note_s=None))
    rows = []
    for event in ids:
        grammar.update(np.array([event]))
        meter = meter_features(beats_at(grammar.now / 100.0, [[0.0, 97.0]]))[0]
        rows.append(np.concatenate([grammar.note_state()[0], grammar.instrument_onehot()[0],
                                    meter]))
    np.testing.assert_allclose(np.stack(rows), expected, atol=1e-5)
    crops = CropDataset([ids] * 2, ENC, 40, note_state=True, controls=True,
                        band_layout=BandLayout(("ambient", "metal")), styles=[1, 1],
                        meter=True, tempos=[[[0.0, 97.0]]] * 2)
    got, inputs = crops.sample(0)
    assert inputs.shape[1] == c.input_dim
    assert inputs[:, c.control_dim + 129 + 1].all()  # style metal on every row
    assert (inputs[:, -129 - METER_DIM : -METER_DIM].sum(1) == 1).all()  # one instrument
    # the crop's meter is the generator's at the same events
    start = int(np.flatnonzero([np.array_equal(ids[i : i + len(got)], got)
                                for i in range(len(ids) - len(got) + 1)])[0])
    np.testing.assert_allclose(inputs[:, -METER_DIM:],
                               expected[start : start + len(got) - 1, -METER_DIM:], atol=1e-4)


def test_generated_band_plays_the_lineup_only_at_the_tempo(band_run: Path, tmp_path: Path):
    out = tmp_path / "band.mid"
    code = main(["generate", "--model", str(band_run), "--style", "metal", "--tempo", "160",
                 "--lineup", "drums,bass,guitar,guitar", "--seconds", "6", "--seed", "1",
                 "--temperature", "drums=0.8,guitar=1.1", "-o", str(out)])
    assert code == 0
    mid = mido.MidiFile(out)
    assert mid.type == 1
    tempos = [m.tempo for t in mid.tracks for m in t if m.type == "set_tempo"]
    assert tempos and mido.tempo2bpm(tempos[0]) == pytest.approx(160, abs=0.01)
    melodic = []
    for track in mid.tracks:
        programs = {m.program for m in track if m.type == "program_change"}
        channels = {m.channel for m in track if m.type == "note_on"}
        if 9 in channels:
            assert channels == {9}  # drums only on channel 10, and nothing else there
        elif channels:
            melodic += [family_of(p) for p in programs]
    assert melodic and not Counter(melodic) - Counter(bass=1, guitar=2)
    notes = [m for t in mid.tracks for m in t if m.type == "note_on" and m.velocity]
    assert notes, "nothing played"


def test_training_records_aliases_in_the_checkpoint(band_run: Path):
    info = load_model(band_run).extra["band"]
    assert info["style_aliases"] and set(info["style_aliases"].values()) <= set(info["styles"])
    assert generate_ids(band_run, GenerateConfig(seconds=1, seed=1, style="Heavy-Metal")
                        ).band["style"] == "metal"


def test_band_options_need_a_band_model_and_a_known_style(band_run: Path, tmp_path: Path,
                                                          capsys):
    with pytest.raises(GenerateError, match="unknown style"):
        generate_ids(band_run, GenerateConfig(seconds=1, style="jazz"))
    assert main(["generate", "--model", str(band_run), "--list-styles"]) == 0
    listed = capsys.readouterr().out
    assert "ambient" in listed and "metal" in listed and "Drums" in listed
    code = main(["generate", "--model", str(band_run), "--randomness", "drums=0.2,organ=0.5",
                 "--lineup", "drums,bass", "-o", str(tmp_path / "x.mid")])
    assert code == 2 and "organ is not in the line-up" in capsys.readouterr().err


def test_bars_set_the_length_at_the_tempo(band_run: Path):
    g = generate_ids(band_run, GenerateConfig(bars=2, tempo=120, seed=4, lineup="drums,bass"))
    score = g.scores()[0]
    assert score.tempos["qpm"].tolist() == [120.0]
    assert score.end_s == pytest.approx(4.0, abs=0.15)  # 2 bars of 4/4 at 120


def test_randomness_moves_the_sampler_and_per_instrument_temperature_is_used(band_run: Path):
    from melodia.generation.config import SamplerConfig
    from melodia.generation.session import randomized_sampler
    from melodia.midi.instruments import instrument_values

    assert randomized_sampler(SamplerConfig(), 0.5, None).temperature == pytest.approx(1.0)
    assert randomized_sampler(SamplerConfig(), 0.0, None).temperature == pytest.approx(0.6)
    emb = randomized_sampler(SamplerConfig(sampler="embedding"), "drums=0.25",
                             instrument_values("drums=0.25", [DRUMS, 33]))
    assert emb.noise_factor_by_instrument == {DRUMS: 0.5}
    cold = generate_ids(band_run, GenerateConfig(events=200, seed=5, lineup="drums,bass",
                                                 instrument_temperature="drums=0.05,bass=0.05"))
    hot = generate_ids(band_run, GenerateConfig(events=200, seed=5, lineup="drums,bass",
                                                instrument_temperature="drums=3,bass=3"))
    assert len(set(cold.pieces[0].tolist())) < len(set(hot.pieces[0].tolist()))


# --------------------------------------------------------------- instruments' own rules


def test_instrument_profile_finds_ranges_and_monophonic_parts():
    from melodia.features.band import instrument_profile

    bass = [("PROGRAM", 33)] + [e for p in (28, 31, 33, 35, 36) * 6
                                for e in (("NOTE_ON", p), ("TIME_SHIFT", 20), ("NOTE_OFF", p))]
    chords = [("PROGRAM", 30)] + [e for root in (40, 45, 47) * 8
                                  for e in (("NOTE_ON", root), ("NOTE_ON", root + 7),
                                            ("TIME_SHIFT", 30), ("NOTE_OFF", root),
                                            ("NOTE_OFF", root + 7))]
    profile = instrument_profile([ev(*bass), ev(*chords)], ENC, quantile=0.0)
    assert profile["ranges"] == {"30": [40, 54], "33": [28, 36]}
    assert profile["monophonic"] == [33]


def test_grammar_keeps_instruments_in_range_and_basses_monophonic():
    g = Grammar(ENC, GrammarConfig(instrument_ranges={33: (28, 48)}, monophonic=(33,)))
    on0, p0 = ENC.vocab.offset("NOTE_ON"), ENC.vocab.offset("PROGRAM")
    g.update(np.array([p0 + 33]))
    allowed = np.flatnonzero(g.mask()[0, on0 : on0 + 128])
    assert allowed.min() == 28 and allowed.max() == 48
    g.update(np.array([on0 + 40]))
    assert not g.mask()[0, on0 : on0 + 128].any()  # one bass note at a time
    g.update(np.array([ENC.vocab.offset("NOTE_OFF") + 40]))
    assert g.mask()[0, on0 + 30]
    g.update(np.array([p0 + 30]))  # another instrument: no range given, chords allowed
    g.update(np.array([on0 + 60]))
    assert g.mask()[0, on0 + 64] and g.mask()[0, on0 + 100]


def test_event_groups_follow_the_instrument_of_each_event():
    from melodia.features.band import EVENT_GROUPS, event_groups

    ids = ev(("TEMPO", 3), ("PROGRAM", DRUMS), ("NOTE_ON", 36), ("PROGRAM", 33),
             ("VELOCITY", 20), ("NOTE_ON", 40), ("TIME_SHIFT", 10), ("NOTE_OFF", 40))
    names = [EVENT_GROUPS[i] for i in event_groups(ids, ENC)]
    assert names == ["time", "drums", "drums", "bass", "bass", "bass", "time", "bass"]


def test_nll_by_group_covers_every_event(band_run: Path):
    from melodia.corpus.shards import TokenDataset
    from melodia.evaluate import model_totals, ngram_totals
    from melodia.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(band_run)
    data = TokenDataset(band_run.parent.parent / "data")
    seqs = data.sequences("validation")
    for totals in (model_totals(ckpt.model, seqs, ENC, max_events=800),
                   ngram_totals(data.sequences("train"), seqs, ENC, 3, max_events=800)):
        r = totals.result("x")
        by_group = r.by_group
        assert sum(g["events"] for g in by_group.values()) == r.events
        assert by_group["drums"]["events"] > 0 and by_group["time"]["events"] > 0
        weighted = sum(g["nll"] * g["events"] for g in by_group.values() if g["events"])
        assert weighted / r.events == pytest.approx(r.nll, rel=1e-6)


# ------------------------------------------------------------------ the shipped band model


def test_shipped_band_model_plays_the_asked_band(tmp_path: Path, capsys):
    """The issue's command: a 30 s metal arrangement at 160 BPM for drums, bass and two guitars,
    as MIDI a DAW opens and as audio."""
    from melodia.midi import read_midi

    mid, wav = tmp_path / "band.mid", tmp_path / "band.wav"
    assert main(["generate", "--model", "band", "--style", "metal", "--tempo", "160",
                 "--lineup", "drums,bass,guitar,guitar", "--seconds", "30", "-o", str(mid),
                 "--audio", str(wav), "--seed", "1"]) == 0
    score = read_midi(mid)
    assert score.tempos["qpm"][0] == pytest.approx(160, abs=0.01)
    assert score.end_s == pytest.approx(30.0 + 0.01, abs=0.05)
    families = sorted(family_of(128 if t.is_drum else t.program) for t in score.tracks
                      if len(t.notes))
    assert families == ["bass", "drums", "guitar", "guitar"]
    for t in score.tracks:  # no note overlaps another of its pitch within a track
        for pitch in np.unique(t.notes["pitch"]):
            n = np.sort(t.notes[t.notes["pitch"] == pitch], order="start_s")
            assert (n["start_s"][1:] >= n["end_s"][:-1] - 1e-6).all()
    import soundfile

    audio, rate = soundfile.read(wav)
    assert len(audio) >= 30 * rate and np.abs(audio).max() > 0.05
    assert main(["generate", "--model", "band", "--list-styles"]) == 0
    listed = capsys.readouterr().out
    for style in ("bossa", "country", "funk", "latin", "metal", "rock", "swing"):
        assert style in listed


def test_piano_takes_a_tempo_for_the_file_and_bars(tmp_path: Path):
    """A piano model ignores the tempo musically (its timing is absolute) but writes it, and
    --bars counts bars at it."""
    from melodia.midi import read_midi

    out = tmp_path / "p.mid"
    assert main(["generate", "--tempo", "90", "--bars", "2", "--seed", "2", "-o", str(out)]) == 0
    score = read_midi(out)
    assert score.tempos["qpm"][0] == pytest.approx(90, abs=0.01)
    assert score.end_s == pytest.approx(2 * 4 * 60 / 90 + 0.01, abs=0.05)


def test_a_band_model_widened_to_the_bar_lookback_starts_as_it_was(band_run: Path):
    """``--init`` from a model without bar lookback inputs: the same weights, the new inputs'
    at zero (so it plays as before until trained); it trains and generates with them, and the
    generator feeds what scoring feeds."""
    from melodia.features.lookback import LOOKBACK_DIM
    from melodia.model.checkpoint import load_checkpoint

    source = load_checkpoint(band_run)
    run = band_run.parent.parent / "lookback"
    seen = {}
    config = TrainConfig(data=str(band_run.parent.parent / "data"), out=str(run), steps=1,
                         batch_size=4, seq_len=64, lr=1e-9, min_lr=1e-9, warmup_steps=0,
                         eval_every=1, log_every=1, eval_events=300, eval_segment=100,
                         device="cpu", model=source.model_config, lookback=True,
                         init=str(band_run))
    train(config, progress=False, callbacks=[lambda info: seen.update(model=info.model)])
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt.model.config.lookback_dim == LOOKBACK_DIM
    widened = seen["model"].state_dict()
    grown = 0
    for name, value in source.model.state_dict().items():
        new = widened[name]
        if new.shape != value.shape:
            grown += 1
            assert torch.allclose(new[..., : value.shape[-1]], value, atol=1e-6), name
            assert new[..., value.shape[-1]:].abs().max() < 1e-6, name
        else:
            assert torch.allclose(new, value, atol=1e-6), name
    assert grown == 1  # the first layer's input weights
    g = generate_ids(ckpt, GenerateConfig(events=300, seed=0, lineup="drums,bass", tempo=97.0))
    ids = g.pieces[0]
    inputs = model_inputs(ids, ENC, ckpt.model.config, tempos=[[0.0, 97.0]])
    assert inputs.shape[1] == ckpt.model.config.input_dim and inputs[:, -LOOKBACK_DIM:].any()
