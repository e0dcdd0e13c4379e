"""One validation layer for every knob: the CLI, the Python API and the configs refuse the same
numbers, each with one line, before any memory is spent."""

from __future__ import annotations

import math

import pytest

import melodia
from melodia.errors import MelodiaError
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.model.config import ModelConfig
from melodia.model.families import make_model
from melodia.training.config import TrainConfig
from melodia.util.knobs import KNOBS, KnobError, argument, check
from tests.cli.test_cli_errors import one_error_line


def test_every_knob_refuses_strings_bools_nan_inf_and_out_of_range_values():
    for name, knob in KNOBS.items():
        inside = knob.low + (1 if knob.open_low or knob.kind is int else 0) \
            if knob.low + 1 <= knob.high else knob.high
        assert check(name, inside) == inside
        assert isinstance(check(name, inside), knob.kind)
        for bad in ("1", True, None, math.nan, math.inf, -math.inf, knob.high * 2 + 1,
                    knob.low - 1):
            with pytest.raises(KnobError) as err:
                check(name, bad)
            assert "\n" not in str(err.value) and str(err.value).startswith(f"{name} must be")
        if knob.kind is int:
            with pytest.raises(KnobError, match="whole number"):
                check(name, inside + 0.5)


@pytest.mark.parametrize("options, words", [
    (dict(events=2.5), "events must be a whole number"),
    (dict(seconds=math.inf), "seconds must be a number above 0"),
    (dict(seed="abc"), "seed must be a whole number"),
    (dict(seed=2 ** 70), "seed must be a whole number from 0 to 9223372036854775807"),
    (dict(num=10 ** 6), "num must be"),
    (dict(beam=100_000), "beam_size must be"),
    (dict(density=1e9), "density must be a number from 0 to 200"),
    (dict(tempo=1e-9), "tempo must be a number from 10 to 1000"),
    (dict(bars=10 ** 8), "bars must be"),
    (dict(bars=50_000, tempo=10), "the most is 86400 s"),
    (dict(temperature="1"), "temperature must be a number"),
    (dict(primer=[60.5]), "whole MIDI note numbers"),
])
def test_the_api_refuses_what_the_cli_refuses(options, words):
    with pytest.raises(MelodiaError, match=words) as err:
        melodia.generate(**options)
    assert isinstance(err.value, ValueError) or "primer" in str(err.value)  # as in Python
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("argv, flag", [
    (["generate", "--density", "1e9"], "--density"), (["generate", "--tempo", "1e-9"], "--tempo"),
    (["generate", "--beam", "100000"], "--beam"), (["generate", "--events", "1e9"], "--events"),
    (["generate", "--num", "100000"], "--num"), (["generate", "--bars", "1e8"], "--bars"),
    (["generate", "--seed", "99999999999999999999999"], "--seed"),
    (["train", "data", "--seq-len", "100000000"], "--seq-len"),
    (["train", "data", "--hidden-size", "200000"], "--hidden-size"),
    (["plot", "x.mid", "--width", "1000000"], "--width"),
    (["render", "x.mid", "--gain", "nan"], "--gain"),
])
def test_sizes_typed_at_the_command_line_are_refused_by_name(argv, flag, capsys):
    line = one_error_line(argv, capsys, argv[0])
    assert flag in line and "needs a" in line


def test_bars_cannot_get_around_the_day_limit(tmp_path, capsys):
    line = one_error_line(["generate", "--bars", "1", "--tempo", "1e-9", "-o", tmp_path / "x.mid"],
                          capsys, "generate")
    assert "--tempo" in line
    with pytest.raises(KnobError, match="the most is 86400 s"):
        GenerateConfig(bars=100_000, tempo=10)


def test_model_sizes_are_refused_before_memory_is_spent():
    with pytest.raises(KnobError, match="hidden_size must be"):
        ModelConfig(hidden_size=200_000)
    wide = ModelConfig(hidden_size=16_384, num_layers=128)  # each in range, together absurd
    with pytest.raises(KnobError, match="parameters .* melodia builds at most"):
        make_model(wide)
    with pytest.raises(KnobError, match="seq_len must be"):
        TrainConfig(seq_len=10 ** 8)
    with pytest.raises(KnobError, match="lr must be a number, not 'fast'"):
        TrainConfig(lr="fast")  # was "'<=' not supported between 'float' and 'str'"


def test_sampler_and_render_and_plot_share_the_table(tmp_path):
    from melodia.errors import RenderError
    from melodia.output.plot import PlotError

    with pytest.raises(KnobError, match="top_p"):
        SamplerConfig(top_p=0)
    with pytest.raises(RenderError, match="gain must be"):
        melodia.render(melodia.generate(events=20, seed=1), tmp_path / "x.wav", gain=math.nan)
    with pytest.raises(PlotError, match="dpi must be"):
        melodia.plot(melodia.generate(events=20, seed=1), tmp_path / "x.png", dpi=0)


def test_argument_types_read_text_then_check():
    assert argument("events")("12") == 12
    for bad in ("1.5", "x", "0", "1e9"):
        with pytest.raises(Exception, match="needs a whole number from 1 to 1000000"):
            argument("events")(bad)


@pytest.mark.parametrize("argv, flag", [
    (["stream", "--rounds", "-1"], "--rounds"), (["stream", "--trigger-cc", "500"], "--trigger-cc"),
    (["stream", "--channel", "17"], "--channel"),
    (["evaluate", "piano", "data", "--batch-size", "100000000"], "--batch-size"),
    (["evaluate", "piano", "data", "--max-events", "-5"], "--max-events"),
    (["evaluate", "--generated", "a", "--reference", "b", "--workers", "100000"], "--workers"),
    (["prepare", "x", "-o", "y", "--humanize", "1e9"], "--humanize"),
    (["prepare", "x", "-o", "y", "--max-files", "0"], "--max-files"),
])
def test_live_corpus_and_evaluation_sizes_share_the_table(argv, flag, capsys):
    # `stream --rounds -1` used to be taken, and play until Ctrl-C with the option ignored
    line = one_error_line(argv, capsys, argv[0])
    assert flag in line and "needs a" in line
