"""The band plan: style names as musicians write them (against the shipped band model and a
trained one), line-ups and per-instrument knobs resolved over the line-up, the conditions."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from melodia.cli import main
from melodia.errors import GenerateError
from melodia.features.plan import (BandLayout, aliases_for, conditions, model_aliases, plan_band,
                                   resolve_style, style_key)
from melodia.midi.instruments import DRUMS, family_of
from melodia.model.registry import load_model

SHIPPED = ["bossa", "country", "funk", "latin", "metal", "rock", "swing"]


@pytest.mark.parametrize("name, style", [
    ("metal", "metal"), ("METAL", "metal"), ("heavy-metal", "metal"), ("Heavy Metal", "metal"),
    ("heavy_metal", "metal"), ("hard-rock", "rock"), ("Hard Rock", "rock"),
    ("bossa-nova", "bossa"), ("Bossa Nova", "bossa"), ("jazz", "swing"), ("Swing", "swing"),
    ("salsa", "latin"), ("Cha-Cha", "latin"), ("bluegrass", "country"), ("disco", "funk")])
def test_names_people_use_reach_the_shipped_styles(name, style):
    assert resolve_style(name, SHIPPED, model_aliases(load_model("band").extra["band"])) == style


def test_an_unknown_name_gets_one_line_with_the_nearest_styles():
    with pytest.raises(GenerateError) as err:
        resolve_style("heavy mtal", SHIPPED)
    message = str(err.value)
    assert "\n" not in message and "unknown style 'heavy mtal'" in message
    assert "did you mean metal?" in message and "bossa, country" in message
    with pytest.raises(GenerateError, match="knows: metal, rock; did you mean rock"):
        resolve_style("rok", ["metal", "rock"])
    with pytest.raises(GenerateError, match="trained without styles"):
        resolve_style("rock", [])


def test_a_models_own_aliases_win_and_only_name_its_styles():
    own = {"chiptune": "ambient", "heavy metal": "ambient"}  # a model may map names its own way
    assert resolve_style("Heavy-Metal", ["ambient", "metal"], own) == "ambient"
    assert resolve_style("chip_tune", ["ambient", "metal"], own) == "ambient"
    assert resolve_style("metal", ["ambient", "metal"], own) == "metal"  # its own names first
    assert set(aliases_for(["metal"]).values()) == {"metal"}
    assert "jazz" not in aliases_for(["metal", "rock"])
    # a checkpoint from before aliases were recorded falls back on the common names
    assert model_aliases({"styles": ["swing"]})["jazz"] == "swing"
    assert len({style_key(a) for a in aliases_for(SHIPPED)}) == len(aliases_for(SHIPPED))


def test_the_lnh_command_runs_as_written(tmp_path: Path, capsys):
    out = tmp_path / "lnh.mid"
    assert main(["generate", "--model", "band", "--style", "heavy-metal", "--tempo", "160",
                 "--randomness", "0.2", "--seed", "1", "-o", str(out)]) == 0
    assert "metal at 160 BPM" in capsys.readouterr().err
    mid = mido.MidiFile(out)
    tempos = [m.tempo for t in mid.tracks for m in t if m.type == "set_tempo"]
    assert mido.tempo2bpm(tempos[0]) == pytest.approx(160, abs=0.01)
    assert any(m.type == "note_on" and m.velocity for t in mid.tracks for m in t)
    assert main(["generate", "--model", "band", "--list-styles"]) == 0
    listed = capsys.readouterr().out
    assert "heavy metal" in listed and "bossa nova" in listed and "jazz" in listed


def test_the_plan_resolves_per_instrument_knobs_over_its_lineup():
    checkpoint = load_model("band")
    info, encoding = checkpoint.extra["band"], checkpoint.encoding
    plan = plan_band(info, checkpoint.model.config.band_dim, encoding, style="Funky",
                     lineup="drums,bass,guitar,guitar", tempo=97, seed=1,
                     randomness="drums=0.2,guitar=0.9", temperatures="bass=1.3")
    drums, bass, *guitars = plan["instruments"]
    assert plan["style"] == "funk" and plan["qpm"] == 97.0 and drums == DRUMS
    assert family_of(bass) == "bass" and [family_of(g) for g in guitars] == ["guitar"] * 2
    assert plan["randomness"] == {DRUMS: 0.2, guitars[0]: 0.9, guitars[1]: 0.9}
    assert plan["temperatures"] == {bass: 1.3}
    layout = BandLayout.from_info(info)
    expected = conditions(layout, encoding, plan["instruments"], layout.styles.index("funk"), 97)
    assert np.array_equal(plan["conditions"], expected)
    number = plan_band(info, checkpoint.model.config.band_dim, encoding, randomness=0.3, seed=1)
    assert number["randomness"] is None and number["temperatures"] is None


def test_per_instrument_knobs_outside_the_lineup_or_model_get_one_line():
    checkpoint = load_model("band")
    args = (checkpoint.extra["band"], checkpoint.model.config.band_dim, checkpoint.encoding)
    with pytest.raises(GenerateError, match="keys is not in the line-up"):
        plan_band(*args, lineup="drums,bass", randomness="keys=0.5")
    with pytest.raises(GenerateError, match="the value must be a number"):
        plan_band(*args, lineup="drums,bass", temperatures="drums=hot")
    with pytest.raises(GenerateError, match="needs a band model"):
        plan_band(None, 0, load_model("piano").encoding, temperatures="drums=0.8")
