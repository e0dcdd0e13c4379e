"""Small band pieces built note by note (drums on a 16th grid, bass, guitar), for the band tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from melodia.midi import TEMPO_DTYPE, Score, Track, make_notes, write_midi

KICK, SNARE, HIHAT = 36, 38, 42


def _track(start, length, pitch, velocity, **kwargs) -> Track:
    start = np.asarray(start, float)
    return Track(notes=make_notes(start, start + length, pitch, velocity), **kwargs)


def band_score(rng: np.random.Generator, *, qpm: float = 120.0, seconds: float = 20.0,
               hits_per_quarter: int = 2, bass_per_quarter: int = 1, velocity: int = 90,
               drum_offset_s: float = 0.0, keys: bool = False) -> Score:
    """Drums (kick on 1 and 3, snare on 2 and 4, hi-hat ``hits_per_quarter`` per beat, all on the
    16th grid, shifted by ``drum_offset_s``), a bass line on ``bass_per_quarter`` notes per beat,
    power chords on a distortion guitar each half bar; optionally a piano part."""
    beat = 60.0 / qpm
    beats = np.arange(int(seconds / beat))
    hat = np.arange(len(beats) * hits_per_quarter) * beat / hits_per_quarter
    kick = beats[beats % 2 == 0] * beat
    snare = beats[beats % 2 == 1] * beat
    times = np.concatenate([hat, kick, snare]) + drum_offset_s
    pitches = [HIHAT] * len(hat) + [KICK] * len(kick) + [SNARE] * len(snare)
    vel = np.clip(velocity + rng.integers(-10, 11, len(times)), 1, 127)
    drums = _track(times, 0.05, pitches, vel, is_drum=True)
    step = beat / bass_per_quarter
    bass_t = np.arange(int(seconds / step)) * step
    roots = rng.choice([40, 43, 45, 47], len(bass_t) // 8 + 1).repeat(8)[:len(bass_t)]
    bass = _track(bass_t, 0.9 * step, roots, np.clip(velocity + rng.integers(-5, 6, len(bass_t)),
                                                     1, 127), program=33)
    chord_t = np.arange(int(seconds / (2 * beat))) * 2 * beat
    chord_roots = rng.choice([52, 55, 57, 59], len(chord_t))
    guitar = _track(np.repeat(chord_t, 2), 1.8 * beat, np.stack([chord_roots, chord_roots + 7],
                                                                 1).reshape(-1),
                    [velocity] * 2 * len(chord_t), program=30)
    tracks = [drums, bass, guitar]
    if keys:
        t = np.arange(int(seconds / beat)) * beat
        tracks.append(_track(t, beat, rng.choice([60, 64, 67, 72], len(t)), [70] * len(t),
                             program=0))
    return Score(tracks=tracks, tempos=np.array([(0.0, qpm)], dtype=TEMPO_DTYPE))


STYLES = {"slow": dict(qpm=70.0, hits_per_quarter=1, bass_per_quarter=1, velocity=60),
          "fast": dict(qpm=170.0, hits_per_quarter=4, bass_per_quarter=2, velocity=115)}


def write_band_folder(folder: Path, count: int, seed: int, **kwargs) -> Path:
    """``count`` band files in ``folder``, built by :func:`band_score` with ``kwargs``."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        write_midi(band_score(rng, **kwargs), folder / f"piece_{i}.mid")
    return folder
