"""Audio rendering with FluidSynth: real synthesis of small MIDI files written here, no mocks."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from melodia.cli import main
from melodia.errors import RenderError
from melodia.midi import PEDAL_DTYPE, Score, Track, make_notes, read_midi, write_midi
from melodia.output.audio import render, render_stems
from melodia.output.synth import (SOUNDFONT_ENV, find_soundfont, import_fluidsynth, install_hint,
                                  packaged_soundfont)

# Synthesis needs libfluidsynth and pyfluidsynth (README's set-up and CI install both): without
# them these tests fail rather than skip. The marker lets `pytest -m "not fluidsynth"` deselect them.
needs_fluidsynth = pytest.mark.fluidsynth

SR = 22050  # half the default rate: enough for these pitches, twice as fast
DATA = Path(__file__).resolve().parents[2] / "data"


def _notes(starts, ends, pitches, velocity=100):
    return make_notes(starts, ends, pitches, [velocity] * len(pitches))


def _midi(tmp_path: Path, *tracks: Track, name: str = "in.mid") -> Path:
    return write_midi(Score(tracks=list(tracks)), tmp_path / name)


def _spectrum(audio: np.ndarray, sample_rate: int = SR) -> tuple[np.ndarray, np.ndarray]:
    mono = audio.mean(axis=1)
    mags = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return np.fft.rfftfreq(len(mono), 1 / sample_rate), mags


def _band_max(freqs, mags, hz: float) -> float:
    return float(mags[(freqs > hz * 0.98) & (freqs < hz * 1.02)].max())


def _centroid_hz(audio: np.ndarray) -> float:
    freqs, mags = _spectrum(audio)
    return float((freqs * mags).sum() / mags.sum())


@needs_fluidsynth
def test_a4_peaks_at_440_hz(tmp_path):
    path = _midi(tmp_path, Track(_notes([0.0], [1.0], [69])))
    audio = render(path, sample_rate=44100)
    assert audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[1] == 2
    assert np.abs(audio).max() <= 1.0
    freqs, mags = _spectrum(audio, 44100)
    peak_hz = freqs[np.argmax(mags)]
    assert peak_hz == pytest.approx(440.0, rel=0.02)


@needs_fluidsynth
def test_c_major_chord_has_peaks_at_c_e_g(tmp_path):
    path = _midi(tmp_path, Track(_notes([0.0] * 3, [1.0] * 3, [60, 64, 67])))
    freqs, mags = _spectrum(render(path, sample_rate=SR))
    chord = [_band_max(freqs, mags, hz) for hz in (261.63, 329.63, 392.00)]  # C4 E4 G4
    others = [_band_max(freqs, mags, hz) for hz in (293.66, 349.23, 440.00)]  # D4 F4 A4
    assert min(chord) > 50 * max(others)


def test_silent_midi_is_refused_with_a_clear_error(tmp_path):
    path = _midi(tmp_path, Track(program=0))
    with pytest.raises(RenderError, match="no notes"):
        render(path, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


@needs_fluidsynth
def test_length_is_midi_length_plus_release_tail(tmp_path):
    path = _midi(tmp_path, Track(_notes([0.0, 0.5], [0.5, 1.0], [60, 67])))
    audio = render(path, sample_rate=SR, max_tail_s=5.0)
    assert SR * 1.0 <= len(audio) <= SR * (1.0 + 5.0)
    after = audio[SR : SR + SR // 10]  # the 100 ms after the last note-off
    assert np.abs(after).max() > 1e-3  # the release is kept, not cut at the note-off
    short = render(path, sample_rate=SR, max_tail_s=0.05)
    assert SR * 1.0 <= len(short) <= SR * 1.05 + 1


@needs_fluidsynth
def test_zero_length_note_does_not_hang(tmp_path):
    audio = render(_midi(tmp_path, Track(_notes([0.0], [0.0], [60]))), sample_rate=SR)
    assert len(audio) < 3 * SR  # released at once, not held until the 5 s limit


@needs_fluidsynth
def test_sustain_pedal_holds_notes(tmp_path):
    pedal = np.array([(0.0, 127), (1.5, 0)], dtype=PEDAL_DTYPE)
    dry = render(_midi(tmp_path, Track(_notes([0.0], [0.2], [60]))), sample_rate=SR)
    held = render(_midi(tmp_path, Track(_notes([0.0], [0.2], [60]), pedal=pedal), name="p.mid"),
                  sample_rate=SR)
    assert len(held) >= 1.5 * SR
    window = slice(SR, SR + SR // 10)  # 1.0-1.1 s: long after the key was let go at 0.2 s
    dry_level = np.abs(dry[window]).max() if len(dry) > SR else 0.0
    assert np.abs(held[window]).max() > 10 * dry_level + 1e-3


@needs_fluidsynth
def test_drums_render_percussion(tmp_path):
    notes = _notes([0.0, 0.25, 0.5, 0.5], [0.1, 0.35, 0.6, 0.6], [36, 38, 42, 36])
    drums = render(_midi(tmp_path, Track(notes, is_drum=True)), sample_rate=SR)
    assert read_midi(tmp_path / "in.mid").tracks[0].is_drum
    assert np.sqrt(np.mean(drums**2)) > 0.01
    piano = render(_midi(tmp_path, Track(notes), name="piano.mid"), sample_rate=SR)
    assert _centroid_hz(drums) > 2 * _centroid_hz(piano)  # noise-like kit, not pitched C2/D2


@needs_fluidsynth
def test_program_changes_timbre(tmp_path):
    def play(program: int) -> np.ndarray:
        return render(_midi(tmp_path, Track(_notes([0.0], [1.0], [60]), program=program),
                            name=f"p{program}.mid"), sample_rate=SR)

    piano, piano_again, violin = play(0), play(0), play(40)
    np.testing.assert_array_equal(piano, piano_again)  # rendering is deterministic
    assert _centroid_hz(violin) > 1.3 * _centroid_hz(piano)


@needs_fluidsynth
def test_gain_sets_level_without_normalize(tmp_path):
    path = _midi(tmp_path, Track(_notes([0.0], [0.5], [60])))
    quiet = render(path, sample_rate=SR, gain=0.1, normalize=False)
    loud = render(path, sample_rate=SR, gain=0.2, normalize=False)
    assert np.abs(loud).max() == pytest.approx(2 * np.abs(quiet).max(), rel=0.05)
    normalized = render(path, sample_rate=SR)
    assert np.abs(normalized).max() == pytest.approx(10 ** (-1 / 20), rel=1e-3)


@needs_fluidsynth
@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_writes_audio_files(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    audio = render(_midi(tmp_path, Track(_notes([0.0], [0.3], [64]))), out, sample_rate=SR)
    if suffix == ".wav":
        with wave.open(str(out)) as f:
            assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (SR, 2, 2)
            assert f.getnframes() == len(audio)
    else:
        import soundfile
        data, rate = soundfile.read(str(out))
        assert rate == SR and data.shape[1] == 2 and abs(len(data) - len(audio)) < SR // 10


def test_unsupported_suffix_is_refused_before_rendering(tmp_path):
    with pytest.raises(RenderError, match=r"\.wav, \.flac, \.ogg"):
        render(_midi(tmp_path, Track(_notes([0.0], [0.3], [64]))), tmp_path / "out.mp3")


@needs_fluidsynth
def test_real_file_from_data(tmp_path):
    files = sorted(DATA.rglob("*.mid"), key=lambda p: ("freedoom" not in str(p), str(p)))
    assert files, "data/ holds no MIDI files"
    score = read_midi(files[0])
    for track in score.tracks:  # the first 4 seconds keep the test fast
        track.notes = track.notes[track.notes["start_s"] < 4.0]
        track.notes["end_s"] = np.minimum(track.notes["end_s"], 4.0)
        track.pedal = track.pedal[track.pedal["time_s"] < 4.0]
    audio = render(score, tmp_path / "real.wav", sample_rate=SR)
    assert len(audio) >= score.end_s * SR and np.sqrt(np.mean(audio**2)) > 0.01


# ----------------------------------------------------------------------------- errors


def test_install_hint_says_how_to_install():
    hint = install_hint("libfluidsynth")
    for command in ("sudo apt-get install libfluidsynth3", "brew install fluid-synth",
                    "conda install -c conda-forge fluidsynth", "pip install 'melodia[audio]'"):
        assert command in hint
    assert "pip install 'melodia[audio]'" in install_hint("pyfluidsynth")


def test_missing_pyfluidsynth_gives_render_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # how Python marks a module unimportable
    with pytest.raises(RenderError, match=r"pip install 'melodia\[audio\]'"):
        import_fluidsynth()


def test_missing_soundfont_gives_clear_error(tmp_path, monkeypatch):
    path = _midi(tmp_path, Track(_notes([0.0], [0.3], [64])))
    with pytest.raises(RenderError, match="nope.sf2.*does not exist"):
        render(path, soundfont=tmp_path / "nope.sf2")
    monkeypatch.setenv(SOUNDFONT_ENV, str(tmp_path / "env.sf2"))
    with pytest.raises(RenderError, match=SOUNDFONT_ENV):
        render(path)


@needs_fluidsynth
def test_invalid_soundfont_is_an_error_not_noise(tmp_path, capfd):
    bogus = tmp_path / "bogus.sf2"
    bogus.write_text("not a soundfont")
    with pytest.raises(RenderError, match="not a valid SoundFont"):
        render(_midi(tmp_path, Track(_notes([0.0], [0.3], [64]))), soundfont=bogus)
    assert capfd.readouterr().err == ""  # nothing printed by FluidSynth or its libraries
    truncated = tmp_path / "truncated.sf2"
    truncated.write_bytes(packaged_soundfont().read_bytes()[:4096])
    with pytest.raises(RenderError, match="not a valid SoundFont"):
        render(_midi(tmp_path, Track(_notes([0.0], [0.3], [64]))), soundfont=truncated)
    assert capfd.readouterr().err == ""


def test_soundfont_precedence(tmp_path, monkeypatch):
    explicit, env = tmp_path / "a.sf2", tmp_path / "b.sf2"
    explicit.write_bytes(b""), env.write_bytes(b"")
    monkeypatch.setenv(SOUNDFONT_ENV, str(env))
    assert find_soundfont(explicit) == explicit
    assert find_soundfont() == env
    monkeypatch.delenv(SOUNDFONT_ENV)
    assert find_soundfont() == packaged_soundfont()
    assert find_soundfont().name == "TimGM6mb.sf2"


@needs_fluidsynth
def test_missing_preset_falls_back_and_fluidsynth_messages_go_to_logging(tmp_path, capfd, caplog):
    caplog.set_level("DEBUG", logger="melodia.output.audio")
    kit = Track(_notes([0.0], [0.3], [38]), is_drum=True, program=5)  # TimGM6mb has kit 0 only
    audio = render(_midi(tmp_path, kit), sample_rate=SR)
    assert np.sqrt(np.mean(audio**2)) > 0.01  # played with the standard kit
    assert "using program 0" in caplog.text
    assert any(r.message.startswith("fluidsynth: ") for r in caplog.records)
    assert capfd.readouterr().err == ""  # FluidSynth's own messages were not printed


# ------------------------------------------------------------------------------- stems


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as f:
        assert f.getframerate() == SR and f.getnchannels() == 2
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    return pcm.reshape(-1, 2).astype(np.float64) / 32767


def _band_midi(tmp_path: Path) -> Path:
    """Drums, bass, a guitar from 0 s, a track without notes, a second guitar only from 1 s."""
    drums = Track(_notes([0.0, 0.25, 0.5, 0.75], [0.1, 0.35, 0.6, 0.85], [36, 38, 42, 38]),
                  is_drum=True)
    bass = Track(_notes([0.0, 0.5], [0.5, 1.0], [40, 43]), program=33)
    guitar = Track(_notes([0.0], [0.8], [52]), program=30)
    guitar2 = Track(_notes([1.0], [1.4], [64]), program=30)
    return _midi(tmp_path, drums, bass, guitar, Track(program=40), guitar2, name="band.mid")


@needs_fluidsynth
def test_stems_line_up_and_add_up_to_the_mix(tmp_path):
    stems = render_stems(_band_midi(tmp_path), tmp_path / "stems", mix=tmp_path / "mix.wav",
                         sample_rate=SR)
    assert [p.name for p in stems] == ["01-drums.wav", "02-electric-bass-finger.wav",
                                       "03-distortion-guitar.wav", "04-distortion-guitar.wav"]
    assert sorted(p.name for p in (tmp_path / "stems").iterdir()) == [p.name for p in stems]
    audio = [_read_wav(p) for p in stems]
    mix = _read_wav(tmp_path / "mix.wav")
    assert {len(a) for a in audio} == {len(mix)} and len(mix) > 1.4 * SR
    for a in audio:
        assert np.sqrt(np.mean(a**2)) > 0.005
    late = audio[3]  # the second guitar enters at 1 s: silent before, sounding after
    assert np.abs(late[: int(0.95 * SR)]).max() < 1e-3 < np.abs(late[SR:]).max()
    residual = np.sqrt(np.mean((sum(audio) - mix) ** 2)) / np.sqrt(np.mean(mix**2))
    assert residual < 0.01
    assert len(render(tmp_path / "band.mid", sample_rate=SR)) == len(mix)


@needs_fluidsynth
def test_drum_stem_plays_the_drum_kit(tmp_path):
    notes = _notes([0.0, 0.25, 0.5, 0.5], [0.1, 0.35, 0.6, 0.6], [36, 38, 42, 36])
    midi = _midi(tmp_path, Track(notes, is_drum=True), Track(_notes([0.0], [0.6], [40]),
                                                             program=33))
    drums_path, _ = render_stems(midi, tmp_path / "stems", sample_rate=SR)
    drums = _read_wav(drums_path)
    as_piano = render(_midi(tmp_path, Track(notes), name="piano.mid"), sample_rate=SR)
    assert _centroid_hz(drums) > 2 * _centroid_hz(as_piano)


@needs_fluidsynth
def test_stems_refuse_a_score_without_notes_and_a_bad_suffix(tmp_path):
    with pytest.raises(RenderError, match="no notes"):
        render_stems(Score(tracks=[Track(program=3)]), tmp_path / "stems")
    with pytest.raises(RenderError, match="use one of"):
        render_stems(_band_midi(tmp_path), tmp_path / "stems", suffix=".mp3")
    assert not (tmp_path / "stems").exists()


# -------------------------------------------------------------------------------- CLI


@needs_fluidsynth
def test_cli_render_writes_audio(tmp_path, capsys):
    path = _midi(tmp_path, Track(_notes([0.0], [0.3], [64])))
    out = tmp_path / "cli.wav"
    assert main(["render", str(path), "-o", str(out), "--sample-rate", str(SR)]) == 0
    assert out.stat().st_size > 1000
    assert main(["render", str(path), "--sample-rate", str(SR)]) == 0  # default: in.wav
    assert path.with_suffix(".wav").exists()
    assert main(["render", str(path), "--soundfont", str(tmp_path / "x.sf2")]) == 2
    assert "does not exist" in capsys.readouterr().err


@needs_fluidsynth
def test_cli_render_stems(tmp_path, capsys):
    midi = _band_midi(tmp_path)
    out = tmp_path / "mix.flac"
    assert main(["render", str(midi), "-o", str(out), "--stems", str(tmp_path / "stems"),
                 "--sample-rate", str(SR), "--quiet"]) == 0
    import soundfile

    stems = sorted((tmp_path / "stems").iterdir())
    assert [p.name for p in stems] == ["01-drums.flac", "02-electric-bass-finger.flac",
                                       "03-distortion-guitar.flac", "04-distortion-guitar.flac"]
    assert {soundfile.info(str(p)).frames for p in stems} == {soundfile.info(str(out)).frames}
    assert "4 stems" in capsys.readouterr().err


def test_cli_render_help():
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "--help"])
    assert exit_info.value.code == 0


def test_package_render_and_plot_stay_functions_after_submodule_imports():
    import melodia
    import melodia.output.audio
    import melodia.output.plot

    assert callable(melodia.render) and melodia.render.__module__ == "melodia.output.audio"
    assert callable(melodia.plot) and melodia.plot.__name__ == "plot_piano_roll"
