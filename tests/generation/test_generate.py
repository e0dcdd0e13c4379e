"""melodia.generate, the fast stepper, primers, controls, the CLI and the shipped piano model."""

from __future__ import annotations

import itertools

import mido
import numpy as np
import pretty_midi
import pytest
import torch

import melodia
from melodia.cli import main
from melodia.encoding import get_encoding
from melodia.errors import GenerateError
from melodia.features.controls import CONTROL_DIM
from melodia.features.keys import key_histogram
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.generator import generate_ids
from melodia.generation.grammar import GrammarConfig
from melodia.generation.session import primer_events
from melodia.midi import read_midi, write_midi
from melodia.model.checkpoint import save_checkpoint
from melodia.model.config import ModelConfig
from melodia.model.lstm import PerformanceRNN
from melodia.model.registry import load_model, shipped_model_path
from melodia.model.stepper import FastStepper, int8_available, sequence_nll
from tests.generation.test_grammar import check_stream
from tests.midi.test_midi import _check_daw_ready

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_checkpoint(path, name: str = "piano", controls: bool = True, seed: int = 0):
    encoding = get_encoding(name)
    torch.manual_seed(seed)
    model = PerformanceRNN(ModelConfig(vocab_size=encoding.vocab_size, embed_dim=24,
                                       hidden_size=32, num_layers=2,
                                       control_dim=CONTROL_DIM if controls else 0))
    return save_checkpoint(path, model, encoding, step=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("models") / "tiny.pt")


@pytest.fixture(scope="module")
def tiny_plain(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("models") / "plain.pt", controls=False)


SAMPLERS = {
    "probability": SamplerConfig(),
    "top-k-p": SamplerConfig(temperature=1.5, top_k=40, top_p=0.9),
    "greedy": SamplerConfig(temperature=0),
    "embedding-gaussian": SamplerConfig(sampler="embedding", noise=1.0),
    "embedding-vmf": SamplerConfig(sampler="embedding", noise=2.0, noise_kind="vmf",
                                   metric="cosine"),
    "beam": SamplerConfig(beam_size=3, branch_factor=2, steps_per_iteration=2),
}


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("sampler", SAMPLERS.values(), ids=SAMPLERS.keys())
def test_same_seed_same_music_and_always_well_formed(tiny, sampler, tmp_path):
    config = GenerateConfig(seconds=4.0, seed=11, sampler=sampler, num=2)
    a = generate_ids(tiny, config)
    b = generate_ids(tiny, config)
    assert all(np.array_equal(x, y) for x, y in zip(a.pieces, b.pieces))
    assert a.seed == 11 and len(a.pieces) == 2
    for i, ids in enumerate(a.pieces):
        check_stream(ids, a.encoding, config.grammar)
        score = a.encoding.decode(ids)
        assert score.end_s >= 4.0 - 1e-9
        back = read_midi(write_midi(score, tmp_path / f"{i}.mid"))
        assert back.note_count == score.note_count


def test_different_seeds_differ(tiny):
    a = generate_ids(tiny, GenerateConfig(events=60, seed=1)).pieces[0]
    b = generate_ids(tiny, GenerateConfig(events=60, seed=2)).pieces[0]
    assert not np.array_equal(a, b)


def test_event_count_and_batch(tiny):
    result = generate_ids(tiny, GenerateConfig(events=37, num=3, seed=0))
    assert [len(p) - result.primer_events for p in result.pieces] == [37, 37, 37]
    beam = generate_ids(tiny, GenerateConfig(events=25, seed=0, sampler=SAMPLERS["beam"]))
    assert len(beam.pieces[0]) - beam.primer_events == 25


def test_constraints_hold_under_a_tight_grammar(tiny):
    grammar = GrammarConfig(max_polyphony=2, max_note_s=0.2, max_wait_s=0.3,
                            max_events_per_step=2)
    result = generate_ids(tiny, GenerateConfig(seconds=6.0, seed=4, num=3, grammar=grammar))
    for ids in result.pieces:
        check_stream(ids, result.encoding, grammar)


def test_band_model_generates_multi_instrument_streams(tmp_path):
    path = tiny_checkpoint(tmp_path / "band.pt", name="band", controls=False)
    result = generate_ids(path, GenerateConfig(seconds=5.0, seed=3))
    check_stream(result.pieces[0], result.encoding, GrammarConfig())
    score = result.encoding.decode(result.pieces[0])
    assert len(score.tracks) >= 1
    assert read_midi(write_midi(score, tmp_path / "band.mid")).note_count == score.note_count
    out = tmp_path / "cli-band.mid"
    assert main(["generate", "--model", str(path), "-o", str(out), "--seconds", "5",
                 "--seed", "3"]) == 0
    _check_daw_ready(mido.MidiFile(out), [t.name for t in read_midi(out).tracks],
                     [t.program for t in read_midi(out).tracks], drums="Drums",
                     qpm=float(read_midi(out).tempos["qpm"][0]))


def test_int8_precision_is_deterministic(tiny):
    config = GenerateConfig(events=80, seed=5, precision="int8")
    first, second = generate_ids(tiny, config), generate_ids(tiny, config)
    assert np.array_equal(first.pieces[0], second.pieces[0])


# ------------------------------------------------------------------------------ fast stepper


@pytest.mark.parametrize("tie,controls,layers", [(True, True, 2), (False, False, 3),
                                                  (True, False, 1)])
def test_fast_stepper_matches_the_model(tie, controls, layers):
    torch.manual_seed(0)
    model = PerformanceRNN(ModelConfig(vocab_size=60, embed_dim=16, hidden_size=24,
                                       num_layers=layers, tie_embeddings=tie,
                                       control_dim=5 if controls else 0)).eval()
    ids = torch.randint(0, 60, (3, 30))
    ctrl = torch.rand(3, 30, 5) if controls else None
    with torch.no_grad():
        reference, (h, c) = model(ids, None, ctrl)
    for precision, tol in (("fp32", 1e-5), ("int8", 2e-2)):
        stepper, state, out = FastStepper(model, precision), None, []
        for t in range(30):
            logits, _, state = stepper.step(ids[:, t], state, None if ctrl is None else ctrl[:, t])
            out.append(logits)
        assert torch.allclose(torch.stack(out, 1), reference, atol=tol), precision
    logits, features, state = FastStepper(model).prime(ids, ctrl)
    assert torch.allclose(logits, reference[:, -1], atol=1e-5)
    assert torch.allclose(FastStepper.to_model_state(state)[0], h, atol=1e-6)
    assert torch.allclose(model.logits(features), logits, atol=1e-5)


def test_int8_nll_is_close_to_fp32():
    torch.manual_seed(1)
    model = PerformanceRNN(ModelConfig(vocab_size=50, embed_dim=32, hidden_size=64,
                                       num_layers=2)).eval()
    ids = torch.randint(0, 50, (4, 40))
    fp32 = sequence_nll(FastStepper(model, "fp32"), ids)
    with torch.no_grad():
        logits, _ = model(ids)
    reference = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50),
                                                  ids[:, 1:].reshape(-1)).item()
    assert abs(fp32 - reference) < 1e-4
    if int8_available():
        assert abs(sequence_nll(FastStepper(model, "int8"), ids) - fp32) / fp32 < 0.01


def test_generation_feeds_only_new_events(tiny, monkeypatch):
    """The LSTM state carries the context: after priming, each step sees one event per row."""
    seen = []
    real_step = FastStepper.step

    def spy(self, ids, state=None, controls=None):
        seen.append(tuple(ids.shape))
        return real_step(self, ids, state, controls)

    monkeypatch.setattr(FastStepper, "step", spy)
    generate_ids(tiny, GenerateConfig(events=20, num=2, seed=0), primer=[60, 64, 67])
    assert seen and set(seen) == {(2,)}
    assert len(seen) == 19  # the first event comes from the primer's output


# ---------------------------------------------------------------------- primers and controls


def test_primer_pitches_start_the_piece(tiny):
    result = generate_ids(tiny, GenerateConfig(events=30, seed=0), primer=[64, 60, 67])
    encoding = result.encoding
    assert encoding.describe(result.pieces[0][:4]) == ["VELOCITY 20", "NOTE_ON 60", "NOTE_ON 64",
                                                       "NOTE_ON 67"]
    with pytest.raises(GenerateError):
        primer_events([200], encoding)


def test_primer_file_keeps_its_last_seconds(tiny, piano_with_pedal):
    encoding = get_encoding("piano")
    full = encoding.encode_file(piano_with_pedal)
    tail = primer_events(piano_with_pedal, encoding, seconds=3.0)
    assert encoding.describe(tail[:1])[0].startswith("VELOCITY")
    assert np.array_equal(tail[1:], full[len(full) - len(tail) + 1:])  # VELOCITY + the last events
    decoded = encoding.decode(tail)
    assert 2.0 < decoded.end_s <= 3.0 + 1.0  # notes struck in the window, some held past it
    result = generate_ids(tiny, GenerateConfig(seconds=2.0, seed=0, primer_seconds=3.0),
                          primer=piano_with_pedal)
    assert np.array_equal(result.pieces[0][: result.primer_events], tail)


def test_controls_reach_every_step(tiny, tiny_plain, monkeypatch):
    from melodia.features.controls import constant_controls

    seen = []
    real_step, real_prime = FastStepper.step, FastStepper.prime

    def spy_step(self, ids, state=None, controls=None):
        seen.append(controls)
        return real_step(self, ids, state, controls)

    def spy_prime(self, ids, controls=None):
        seen.append(controls[:, -1])
        return real_prime(self, ids, controls)

    monkeypatch.setattr(FastStepper, "step", spy_step)
    monkeypatch.setattr(FastStepper, "prime", spy_prime)
    generate_ids(tiny, GenerateConfig(events=30, seed=3, num=2, density=30, key="F# minor"))
    expected = torch.from_numpy(constant_controls(30, key_histogram("F# minor")))
    assert len(seen) == 30
    assert all(torch.equal(c, expected.expand_as(c)) for c in seen)
    with pytest.raises(GenerateError, match="without controls"):
        generate_ids(tiny_plain, GenerateConfig(events=10, density=4))


def test_key_histogram():
    c = key_histogram("C")
    assert np.argsort(c)[::-1][:3].tolist() == [0, 4, 7]  # tonic, third, fifth
    assert np.array_equal(key_histogram("Am"), key_histogram("a minor"))
    assert np.argsort(key_histogram("Am"))[::-1][:3].tolist() == [9, 4, 0]  # A, E, C
    assert np.allclose(key_histogram("Bb"), np.roll(c, 10))
    assert np.all(c[[1, 3, 6, 8, 10]] < 0.02)  # chromatic notes are rare
    with pytest.raises(GenerateError):
        key_histogram("H major")


# ---------------------------------------------------------------------------- python API


def test_generate_returns_pretty_midi(tiny):
    pm = melodia.generate(tiny, seconds=3, seed=2, top_p=0.9)
    assert isinstance(pm, pretty_midi.PrettyMIDI)
    assert pm.get_end_time() >= 3.0 and pm.instruments[0].notes


def test_package_api_is_lazy_and_callable():
    import subprocess
    import sys

    import melodia.generation.generator  # noqa: F401  (a submodule import must not shadow the function)

    assert callable(melodia.generate) and callable(melodia.iter_events)
    code = "import sys, melodia; melodia.__dir__(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_iter_events_is_seeded_and_restores_threads(tiny):
    torch.set_num_threads(2)
    a = list(itertools.islice(melodia.iter_events(tiny, seed=8), 50))
    assert torch.get_num_threads() == 2
    b = list(itertools.islice(melodia.iter_events(tiny, seed=8), 50))
    assert a == b and all(isinstance(x, int) for x in a)


def test_unknown_models_say_what_to_do(tmp_path):
    with pytest.raises(GenerateError, match="no such model"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(GenerateError, match="no shipped model"):
        shipped_model_path("orchestra")


# ----------------------------------------------------------------------- the shipped model


def test_shipped_piano_model_loads_small():
    path = shipped_model_path("piano")
    assert path.stat().st_size < 15 * 2**20  # small enough for git
    checkpoint = load_model("piano")
    assert checkpoint.encoding.name == "piano" and checkpoint.model.config.control_dim > 0
    assert checkpoint.model.config.state_dim > 0  # the note-state input
    assert len(checkpoint.extra["control_prior"]) == 256
    assert set(checkpoint.extra["embedding_noise"]["scale"]) >= {"NOTE_ON", "TIME_SHIFT"}
    assert "CC BY-NC-SA 4.0" in checkpoint.extra["licences"].values()


def test_cli_generate_with_the_shipped_model(tmp_path, capsys):
    out = tmp_path / "piece.mid"
    assert main(["generate", "-o", str(out), "--seconds", "3", "--seed", "1", "--top-p", "0.95",
                 "--key", "C", "--density", "6"]) == 0
    assert read_midi(out).note_count > 0
    assert "seed 1" in capsys.readouterr().err
    _check_daw_ready(mido.MidiFile(out), ["Piano"], [0], drums="Drums", qpm=120.0)


def test_cli_generate_with_no_arguments_names_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["generate"]) == 0
    files = list(tmp_path.glob("melodia-piano-*.mid"))
    # 10 s of music (a sparse piece may end in a rest, so the last note can end earlier)
    assert len(files) == 1 and 5.0 <= read_midi(files[0]).end_s <= 10.0 + 5.0
    assert files[0].name in capsys.readouterr().err


def test_cli_generate_options(tiny, tmp_path):
    out = tmp_path / "x.mid"
    assert main(["generate", "--model", str(tiny), "-o", str(out), "--events", "40", "--num", "2",
                 "--beam", "2", "--sampler", "embedding", "--noise", "0.7", "--noise-kind",
                 "vmf", "--primer", "60,64,67", "--precision", "int8", "--seed", "3"]) == 0
    assert (tmp_path / "x-1.mid").is_file() and (tmp_path / "x-2.mid").is_file()
    assert main(["generate", "--model", str(tmp_path / "nope.pt"), "-o", str(out)]) == 2
    assert main(["generate", "--model", str(tiny), "--top-p", "0", "-o", str(out)]) == 2


def test_cli_generate_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0
    assert "--sampler" in capsys.readouterr().out


def test_load_and_generate_take_shipped_names_and_num():
    import pretty_midi

    import melodia

    assert melodia.load("piano").encoding.vocab_size == 388
    assert melodia.load("band").model.config.band_dim > 0
    pieces = melodia.generate(seconds=1.5, num=2, seed=3)
    assert len(pieces) == 2 and all(isinstance(p, pretty_midi.PrettyMIDI) for p in pieces)
    one = melodia.generate("band", bars=1, tempo=100, lineup="drums,bass", seed=3)
    assert one.get_tempo_changes()[1].tolist() == [100.0]
    assert {i.is_drum for i in one.instruments} <= {True, False} and len(one.instruments) <= 2
    note = one.instruments[0].notes[0]
    assert type(note.pitch) is int and isinstance(note.start, float)


def test_a_primer_file_keeps_its_tempo(tmp_path):
    import numpy as np

    from melodia.generation.config import GenerateConfig
    from melodia.generation.generator import generate_ids
    from melodia.midi import TEMPO_DTYPE, Score, Track, make_notes, write_midi

    primer = tmp_path / "primer.mid"
    notes = make_notes(np.array([0.0, 0.5]), np.array([0.4, 0.9]), np.array([60, 64]),
                       np.array([80, 80]))
    write_midi(Score(tracks=[Track(notes=notes)], tempos=np.array([(0.0, 84.0)], TEMPO_DTYPE)),
               primer)
    out = generate_ids("piano", GenerateConfig(seconds=1.0, seed=1), primer=primer).scores()[0]
    assert out.tempos["qpm"][0] == pytest.approx(84.0)
