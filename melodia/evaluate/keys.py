"""Key finding by key-profile correlation (Krumhansl-Schmuckler), vectorised with numpy.

music21's :class:`music21.analysis.discrete.KrumhanslSchmuckler` builds a duration-weighted
pitch-class histogram of a stream and takes, over the 24 major and minor keys, the largest
Pearson correlation between that histogram and the key's profile rotated to its tonic. Building
music21 streams costs milliseconds per note, so here the same profile weights (read once from
music21 with ``getWeights``) are correlated with histograms computed straight from note arrays;
the histogram weights each pitch class by its sounding time in seconds, where music21 uses
quarter lengths (the same up to a factor under one tempo).

Keys are numbered ``0..23``: ``tonic`` for C..B major, ``12 + tonic`` for c..b minor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: ``--key-profile`` names -> music21 analysis classes (all KeyWeightKeyAnalysis subclasses).
PROFILES = {"krumhansl": "KrumhanslSchmuckler", "aarden": "AardenEssen",
            "bellman": "BellmanBudge", "temperley": "TemperleyKostkaPayne",
            "simple": "SimpleWeights"}
TONICS = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")


@lru_cache(maxsize=None)
def key_profiles(name: str = "krumhansl") -> np.ndarray:
    """``[24, 12]`` profile of each key over pitch classes C..B: majors then minors."""
    from music21.analysis import discrete

    if name not in PROFILES:
        raise ValueError(f"unknown key profile {name!r}; choose one of {sorted(PROFILES)}")
    analysis = getattr(discrete, PROFILES[name])()
    rows = []
    for mode in ("major", "minor"):
        weights = np.asarray(analysis.getWeights(mode), float)
        rows += [np.roll(weights, tonic) for tonic in range(12)]
    return np.stack(rows)


def key_name(key: int) -> str:
    """``0`` -> ``"C major"``, ``21`` -> ``"a minor"``."""
    tonic = TONICS[key % 12]
    return f"{tonic} major" if key < 12 else f"{tonic.lower()} minor"


def key_correlations(histograms: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Pearson correlation ``[..., 24]`` of each pitch-class histogram ``[..., 12]`` with each key
    profile; 0 where a histogram is flat (music21's convention)."""
    h = histograms - histograms.mean(axis=-1, keepdims=True)
    p = profiles - profiles.mean(axis=-1, keepdims=True)
    top = h @ p.T
    norm = np.sqrt((h * h).sum(axis=-1, keepdims=True) * (p * p).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, top / np.where(norm > 0, norm, 1.0), 0.0)


def pitch_class_time(notes: np.ndarray, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
    """``[windows, 12]`` seconds each pitch class sounds within each window ``[start, end)``."""
    if not len(notes):
        return np.zeros((len(starts_s), 12))
    lo = np.maximum(notes["start_s"][:, None], starts_s[None, :])
    hi = np.minimum(notes["end_s"][:, None], ends_s[None, :])
    overlap = np.clip(hi - lo, 0.0, None)  # [notes, windows]
    onehot = np.zeros((len(notes), 12))
    onehot[np.arange(len(notes)), notes["pitch"].astype(np.int64) % 12] = 1.0
    return overlap.T @ onehot


def best_keys(histograms: np.ndarray, profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most likely key and its correlation for each histogram row."""
    r = key_correlations(np.atleast_2d(histograms), profiles)
    key = r.argmax(axis=-1)
    return key, r[np.arange(len(r)), key]


def estimate_key(notes: np.ndarray, duration_s: float | None = None,
                 profile: str = "krumhansl") -> tuple[int, float]:
    """Key (``0..23``) and correlation coefficient of notes sounding in ``[0, duration_s)``."""
    end = float(notes["end_s"].max()) if duration_s is None and len(notes) else duration_s or 0.0
    hist = pitch_class_time(notes, np.array([0.0]), np.array([end]))
    key, r = best_keys(hist, key_profiles(profile))
    return int(key[0]), float(r[0])


@dataclass(frozen=True)
class KeyStats:
    """Tonal stability of an excerpt (see :func:`key_stats`)."""

    key: int  # global key, 0..23
    correlation: float  # its correlation coefficient, -1..1
    stability: float  # share of windows whose key is the global key
    changes_per_min: float  # key changes between consecutive windows, per minute of excerpt

    def to_dict(self) -> dict[str, float]:
        return {"key_correlation": self.correlation, "key_stability": self.stability,
                "key_changes_per_min": self.changes_per_min}


def window_bounds(duration_s: float, window_s: float,
                  hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of windows of ``window_s`` every ``hop_s`` that fit in the excerpt (one
    window of the whole excerpt when it is shorter than ``window_s``)."""
    if duration_s <= window_s:
        return np.array([0.0]), np.array([duration_s])
    starts = np.arange(0.0, duration_s - window_s + 1e-9, hop_s)
    return starts, starts + window_s


def key_stats(notes: np.ndarray, duration_s: float, profiles: np.ndarray, *,
              window_s: float = 5.0, hop_s: float = 2.5) -> KeyStats:
    """Global key of the excerpt and how steadily the music stays in it.

    Each window of ``window_s`` seconds (every ``hop_s``) gets its own key from the time each pitch
    class sounds inside it; windows where nothing sounds are left out. ``stability`` is the share
    of the other windows in the global key, ``changes_per_min`` the number of consecutive windows
    with different keys per minute of excerpt.
    """
    if not len(notes) or duration_s <= 0:
        return KeyStats(-1, math.nan, math.nan, math.nan)
    global_hist = pitch_class_time(notes, np.array([0.0]), np.array([duration_s]))
    (key,), (r,) = best_keys(global_hist, profiles)
    starts, ends = window_bounds(duration_s, window_s, hop_s)
    hist = pitch_class_time(notes, starts, ends)
    hist = hist[hist.sum(axis=1) > 0]
    if not len(hist):
        return KeyStats(int(key), float(r), math.nan, math.nan)
    keys, _ = best_keys(hist, profiles)
    changes = int((keys[1:] != keys[:-1]).sum())
    return KeyStats(int(key), float(r), float((keys == key).mean()),
                    changes / (duration_s / 60.0))


__all__ = ["KeyStats", "PROFILES", "best_keys", "estimate_key", "key_correlations", "key_name",
           "key_profiles", "key_stats", "pitch_class_time", "window_bounds"]
