"""Audio from MIDI: drive FluidSynth directly, keep the release tail, write WAV/FLAC/OGG.

FluidSynth (the C library ``libfluidsynth``) and its Python binding ``pyfluidsynth`` are optional:
they are imported when :func:`render` runs, and their absence raises :class:`RenderError` saying
how to install them. Every note, program and sustain-pedal change of the score is scheduled at
its own sample, the synth is rendered in 32-bit float between events (nothing clips inside the
synth), and rendering goes on after the last event until the sound has died away.

SoundFont precedence (see :func:`~melodia.output.synth.find_soundfont`, with the rest of the FluidSynth
set-up in :mod:`melodia.output.synth`): the ``soundfont`` argument, then the
``MELODIA_SOUNDFONT`` environment variable, then ``TimGM6mb.sf2`` shipped inside pretty_midi's
wheel, then common system SoundFonts such as ``/usr/share/sounds/sf2/FluidR3_GM.sf2``.
"""

from __future__ import annotations

import logging
import re
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from melodia.errors import RenderError
from melodia.midi import DRUM_CHANNEL, Score, Track, instrument_name, load_score
from melodia.output.synth import _open_synth, _write_float, find_soundfont, import_fluidsynth
from melodia.util.knobs import check

log = logging.getLogger(__name__)

DEFAULT_GAIN = 0.2  # FluidSynth's own default master gain (synth.gain)
PEAK_AFTER_NORMALIZE = 10 ** (-1 / 20)  # -1 dBFS, leaves room for lossy encoders
SILENCE_DB = -80.0  # the tail ends when the output stays this far below the peak
_TAIL_BLOCK_S = 0.05
_SUFFIXES = (".wav", ".flac", ".ogg")

# Event kinds, in the order they apply when several fall on the same sample.
_PEDAL, _NOTE_OFF, _NOTE_ON = 0, 1, 2


# ---------------------------------------------------------------------------------- events


def assign_channels(score: Score) -> list[int]:
    """One MIDI channel per track: the first drum track on channel 9 (GM channel 10), the others
    counting up from 0 and skipping 9. Further drum tracks get the drum bank by program select."""
    channels, free, drums_placed = [], iter(c for c in range(10_000) if c != DRUM_CHANNEL), False
    for track in score.tracks:
        if track.is_drum and not drums_placed:
            channels.append(DRUM_CHANNEL)
            drums_placed = True
        else:
            channels.append(next(free))
    return channels


def score_events(score: Score, channels: list[int], sample_rate: int) -> np.ndarray:
    """All timed events as rows ``(sample, kind, channel, data1, data2)``, in playing order.

    At one sample, pedal changes come first, then note-offs, then note-ons, so a note repeated
    back to back is released before it is struck again. A note shorter than one sample is
    released one sample after it starts (never before, which would leave it hanging).
    """
    rows = []
    for track, channel in zip(score.tracks, channels):
        n, p = track.notes, track.pedal
        on = np.round(n["start_s"] * sample_rate).astype(np.int64)
        off = np.maximum(np.round(n["end_s"] * sample_rate).astype(np.int64), on + 1)
        pedal = np.round(p["time_s"] * sample_rate).astype(np.int64)
        for samples, kind, d1, d2 in ((pedal, _PEDAL, 64, p["value"]),
                                      (off, _NOTE_OFF, n["pitch"], 0),
                                      (on, _NOTE_ON, n["pitch"], n["velocity"])):
            block = np.empty((len(samples), 5), dtype=np.int64)
            block[:, 0], block[:, 1], block[:, 2], block[:, 3], block[:, 4] = (
                samples, kind, channel, d1, d2)
            rows.append(block)
    events = np.concatenate(rows) if rows else np.empty((0, 5), np.int64)
    return events[np.lexsort((events[:, 1], events[:, 0]))]


# ---------------------------------------------------------------------------------- render


def _select_programs(synth, sfid: int, score: Score, channels: list[int]) -> None:
    for track, channel in zip(score.tracks, channels):
        bank = 128 if track.is_drum else 0
        if synth.program_select(channel, sfid, bank, track.program) == 0:
            continue
        if synth.program_select(channel, sfid, bank, 0) == 0:
            log.warning("SoundFont has no preset bank %d program %d; using program 0 instead",
                        bank, track.program)
        else:
            log.warning("SoundFont has no preset in bank %d: a track stays silent", bank)


def _play(synth, write, events: np.ndarray, out: np.ndarray,
          report: Callable[[int], object]) -> int:
    """Render ``out`` up to the last event, sending each event at its sample; return that sample.

    ``report(sample)`` is called about every 1% of the way (for a progress bar).
    """
    base, pos, step = out.ctypes.data, 0, max(1, int(events[-1, 0]) // 100)
    for sample, kind, channel, d1, d2 in events.tolist():
        if sample > pos:
            ptr = base + pos * 8
            write(synth.synth, sample - pos, ptr, 0, 2, ptr, 1, 2)
            if sample // step != pos // step:
                report(sample)
            pos = sample
        if kind == _NOTE_ON:
            synth.noteon(channel, d1, d2)
        elif kind == _NOTE_OFF:
            synth.noteoff(channel, d1)
        else:
            synth.cc(channel, d1, d2)
    return pos


def _tail(synth, write, out: np.ndarray, pos: int, sample_rate: int) -> int:
    """Render past ``pos`` until the sound falls ``SILENCE_DB`` below the peak; return the end."""
    block, ratio = max(1, int(_TAIL_BLOCK_S * sample_rate)), 10 ** (SILENCE_DB / 20)
    start, peak = pos, _peak(out[:pos])
    while pos < len(out):
        n = min(block, len(out) - pos)
        ptr = out.ctypes.data + pos * 8
        write(synth.synth, n, ptr, 0, 2, ptr, 1, 2)
        block_peak = _peak(out[pos : pos + n])
        peak, pos = max(peak, block_peak), pos + n
        if block_peak < peak * ratio and synth.get_active_voice_count() == 0:
            break
    threshold = max(peak * ratio, 1e-9)
    loud = np.flatnonzero(np.abs(out[start:pos]).max(axis=1, initial=0.0) >= threshold)
    end = start + (int(loud[-1]) + 1 if len(loud) else 0)
    if end == len(out):  # still sounding at the limit (say, pedal held): fade, no click
        _fade_out(out, block)
    return end


def _fade_out(audio: np.ndarray, samples: int) -> None:
    fade = min(samples, len(audio))
    audio[len(audio) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]


def _synthesize(fluidsynth, synth, sfid: int, score: Score, sample_rate: int, max_tail_s: float,
                progress: bool, length: int | None = None) -> np.ndarray:
    """Raw synth output (no levelling): to the end of the tail, or exactly ``length`` samples."""
    from tqdm.auto import tqdm

    channels = assign_channels(score)
    _select_programs(synth, sfid, score, channels)
    events = score_events(score, channels, sample_rate)
    end = int(events[-1, 0])
    audio = np.zeros((length or end + int(max_tail_s * sample_rate), 2), dtype=np.float32)
    write = _write_float(fluidsynth)
    with tqdm(total=round(end / sample_rate), desc="rendering", unit="s", leave=False,
              disable=not progress, bar_format="{l_bar}{bar}| {n:.0f}/{total} s") as bar:
        pos = _play(synth, write, events, audio, lambda at: bar.update(at / sample_rate - bar.n))
    if length is None:
        return audio[: _tail(synth, write, audio, pos, sample_rate)]
    ptr = audio.ctypes.data + pos * 8
    write(synth.synth, length - pos, ptr, 0, 2, ptr, 1, 2)
    return audio


def _render_raw(fluidsynth, soundfont: Path, score: Score, sample_rate: int, gain: float,
                max_tail_s: float, progress: bool = False, length: int | None = None
                ) -> np.ndarray:
    synth, sfid = _open_synth(fluidsynth, soundfont, sample_rate, gain, len(score.tracks) + 1)
    try:
        return _synthesize(fluidsynth, synth, sfid, score, sample_rate, max_tail_s, progress,
                           length)
    finally:
        synth.delete()


def render(midi, out: str | Path | None = None, *, soundfont: str | Path | None = None,
           sample_rate: int = 44100, gain: float = DEFAULT_GAIN, normalize: bool = True,
           max_tail_s: float = 5.0, progress: bool = False) -> np.ndarray:
    """Synthesize a score with FluidSynth and return (and optionally write) stereo audio.

    Parameters
    ----------
    midi : Score, path, bytes or PrettyMIDI
        Anything :func:`melodia.midi.load_score` accepts.
    out : path, optional
        Also write the audio here; the suffix picks the format: ``.wav`` (16-bit PCM),
        ``.flac`` (16-bit) or ``.ogg`` (Vorbis); the last two need ``soundfile``.
    soundfont : path, optional
        ``.sf2``/``.sf3`` file. Default: ``$MELODIA_SOUNDFONT``, else pretty_midi's TimGM6mb.sf2,
        else a system General MIDI SoundFont (see :func:`find_soundfont`).
    sample_rate : int
        Output rate in Hz, 8000-96000 (default 44100).
    gain : float
        FluidSynth's master gain (``synth.gain``, linear, default 0.2 as in the ``fluidsynth``
        program). It sets the output level only when ``normalize`` is False.
    normalize : bool
        Scale so the peak sits at -1 dBFS (default). If False, the synth's level is kept and
        samples beyond full scale are clipped, with a warning.
    max_tail_s : float
        Longest release/reverb tail kept after the last event, in seconds (default 5). Sound
        still ringing at that limit (a pedal never released) is faded out over 50 ms.
    progress : bool
        Show a progress bar on stderr (worth it for pieces longer than ~10 minutes).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n_samples, 2)`` (left, right), values in [-1, 1]. Its length is the time
        of the last event (note-off or pedal change) plus the tail until the sound falls to
        -80 dB below its peak, at most ``max_tail_s``.

    Raises
    ------
    RenderError
        FluidSynth is missing, the SoundFont is missing or invalid, the score holds no notes
        (a silent file is refused rather than rendered as an empty or silent clip), or the
        output suffix is not supported.
    """
    _check_options(sample_rate, max_tail_s, out, gain)
    score = load_score(midi)
    if score.note_count == 0:
        raise RenderError("the MIDI holds no notes: nothing to render")
    path = find_soundfont(soundfont)
    fluidsynth = import_fluidsynth()
    audio = _render_raw(fluidsynth, path, score, sample_rate, gain, max_tail_s, progress)
    log.debug("rendered %.2f s of audio (%.2f s of music) with %s",
              len(audio) / sample_rate, score.end_s, path.name)
    audio = _level(audio, normalize)
    if out is not None:
        write_audio(audio, out, sample_rate)
    return audio


def _check_options(sample_rate: int, max_tail_s: float, out: str | Path | None,
                   gain: float = DEFAULT_GAIN) -> None:
    check("sample_rate", sample_rate, None, RenderError)
    check("max_tail", max_tail_s, "max_tail_s", RenderError), check("gain", gain, None, RenderError)
    if out is not None:
        _check_suffix(Path(out))


# ----------------------------------------------------------------------------------- stems


def stem_name(number: int, track: Track) -> str:
    """File stem of a track's audio: its number and name, e.g. ``02-electric-bass-finger``."""
    name = track.name or instrument_name(track.program, track.is_drum)
    return f"{number:02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-') or 'track'}"


def render_stems(midi, out_dir: str | Path, *, suffix: str = ".wav", mix: str | Path | None = None,
                 soundfont: str | Path | None = None, sample_rate: int = 44100,
                 gain: float = DEFAULT_GAIN, normalize: bool = True, max_tail_s: float = 5.0,
                 progress: bool = False) -> list[Path]:
    """Render each track of a score alone into ``out_dir``, one audio file per instrument.

    Every stem lasts exactly as long as the full mix (the release tail of the whole piece
    included), so the files line up when dropped into a DAW at 0 s, and all are scaled by the
    same factor, so they add up to the mix. Drum tracks play the SoundFont's drum kits (bank 128).
    Tracks without notes get no file.

    Parameters
    ----------
    midi : Score, path, bytes or PrettyMIDI
        Anything :func:`melodia.midi.load_score` accepts.
    out_dir : path
        Folder for the stems (created if missing), named ``NN-instrument`` (see :func:`stem_name`),
        numbered from 01 in track order, e.g. ``01-drums.wav``, ``02-electric-bass-finger.wav``.
    suffix : {".wav", ".flac", ".ogg"}
        Audio format of the stems (default ``.wav``).
    mix : path, optional
        Also write the full mix here, at the stems' level.
    soundfont, sample_rate, gain, max_tail_s, progress
        As in :func:`render`; the progress bar counts stems.
    normalize : bool
        Scale everything by the factor that puts the mix's peak at -1 dBFS (default); otherwise
        keep FluidSynth's level (``gain``), clipping beyond full scale.

    Returns
    -------
    list of Path
        The stems written, in track order.
    """
    from tqdm.auto import tqdm

    _check_options(sample_rate, max_tail_s, mix, gain)
    _check_suffix(Path(f"stem{suffix}"))
    score = load_score(midi)
    parts = [t for t in score.tracks if len(t.notes)]
    if not parts:
        raise RenderError("the MIDI holds no notes: nothing to render")
    path = find_soundfont(soundfont)
    fluidsynth = import_fluidsynth()
    full = _render_raw(fluidsynth, path, score, sample_rate, gain, max_tail_s)
    events_end = int(score_events(score, assign_channels(score), sample_rate)[-1, 0])
    faded = len(full) == events_end + int(max_tail_s * sample_rate)
    peak = _peak(full)
    scale = PEAK_AFTER_NORMALIZE / peak if normalize and peak > 0 else 1.0
    written = []
    for number, track in enumerate(tqdm(parts, desc="stems", leave=False, disable=not progress), 1):
        alone = Score(tracks=[track], tempos=score.tempos, time_signatures=score.time_signatures)
        audio = _render_raw(fluidsynth, path, alone, sample_rate, gain, max_tail_s,
                            length=len(full))
        if faded:
            _fade_out(audio, int(_TAIL_BLOCK_S * sample_rate))
        if _peak(audio) == 0.0:
            log.warning("stem %s is silent (does the SoundFont have this instrument?)",
                        stem_name(number, track))
        audio *= scale
        written.append(write_audio(np.clip(audio, -1.0, 1.0, out=audio),
                                   Path(out_dir) / f"{stem_name(number, track)}{suffix}",
                                   sample_rate))
    if mix is not None:
        write_audio(_level(full, normalize), mix, sample_rate)
    log.debug("wrote %d stems of %.2f s to %s", len(written), len(full) / sample_rate, out_dir)
    return written


def _peak(audio: np.ndarray) -> float:
    """Largest absolute sample (without building ``abs(audio)``, which costs a full copy)."""
    return max(float(audio.max(initial=0.0)), -float(audio.min(initial=0.0)))


def _level(audio: np.ndarray, normalize: bool) -> np.ndarray:
    peak = _peak(audio)
    if peak == 0.0:
        log.warning("the rendered audio is silent (does the SoundFont have these instruments?)")
        return audio
    if normalize:
        audio *= PEAK_AFTER_NORMALIZE / peak
        return audio
    clipped = int(np.count_nonzero(np.abs(audio) > 1.0))
    if clipped:
        log.warning("%d samples clipped (peak %.2f): lower --gain or normalize", clipped, peak)
    return np.clip(audio, -1.0, 1.0, out=audio)


# ---------------------------------------------------------------------------------- output


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in _SUFFIXES:
        raise RenderError(f"cannot write {path}: use one of {', '.join(_SUFFIXES)}")


def write_audio(audio: np.ndarray, path: str | Path, sample_rate: int) -> Path:
    """Write float audio in [-1, 1], shape ``(n,)`` or ``(n, channels)``, as WAV, FLAC or OGG.

    WAV is written as 16-bit PCM with the standard library; FLAC (16-bit) and OGG (Vorbis) go
    through ``soundfile``.
    """
    path = Path(path)
    _check_suffix(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RenderError(f"cannot write {path}: a file is in the way of its folder") from None
    frames = audio.reshape(len(audio), -1)
    if path.suffix.lower() == ".wav":
        scaled = frames * np.float32(32767)
        pcm = np.rint(np.clip(scaled, -32767, 32767, out=scaled), out=scaled).astype("<i2")
        # Open the file ourselves: wave.open(name) on a path it cannot create leaves a
        # half-built Wave_write whose __del__ raises AttributeError over the real OSError.
        with open(path, "wb") as raw, wave.open(raw, "wb") as f:
            f.setnchannels(frames.shape[1])
            f.setsampwidth(2)
            f.setframerate(sample_rate)
            f.writeframes(pcm)  # any C-contiguous buffer; no extra copy
        return path
    try:
        import soundfile
    except ImportError:
        raise RenderError(f"writing {path.suffix} needs soundfile: pip install 'melodia[audio]' "
                          "(or write .wav)") from None
    subtype = "PCM_16" if path.suffix.lower() == ".flac" else "VORBIS"
    soundfile.write(str(path), frames, sample_rate, subtype=subtype)
    return path


__all__ = ["DEFAULT_GAIN", "PEAK_AFTER_NORMALIZE", "SILENCE_DB", "assign_channels", "render",
           "render_stems", "score_events", "stem_name", "write_audio"]
