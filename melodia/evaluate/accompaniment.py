"""How well new parts play with given music: harmony, rhythm, seams and returning sections.

- :func:`harmonic_agreement`: the share of the new bass and chord notes whose pitch class sounds
  in the given music within the same beat, or belongs to the triad those pitch classes imply
  (beats where the given music is silent are not counted);
- :func:`bass_in_beat`: the bass notes alone, and the pitch classes alone: the share of the new
  bass notes whose pitch class the given music sounds within the beat of its onset (no implied
  triad; beats where the given music is silent are not counted);
- :func:`rhythmic_alignment`: the share of the new drum onsets within 30 ms of the given
  music's 16th-note grid (its tempo map);
- :func:`broken_link`: the same new parts with the link cut (transposed by a random 1..11
  semitones and shifted by half a beat): the level an accompanist must beat; :func:`link_scores`
  all of them for some tracks of a file against its others (``melodia evaluate
  --accompaniment``);
- :func:`bar_distance`: ``1 - Jaccard`` between two bars, each the set of (instrument, 16th in
  the bar, pitch) it strikes (:func:`melodia.midi.bars.bar_set`); :func:`seam_distances`: an
  infill's first and last bar against their neighbours; :func:`bar_neighbours`: the range real
  music moves in from one bar to the next.

>>> import numpy as np
>>> from melodia.midi import make_notes
>>> chord = make_notes([0.0] * 3, [2.0] * 3, [60, 64, 67], [80] * 3)    # C major, 4 beats
>>> bass = make_notes([0.0, 0.5, 1.0], [0.5, 1.0, 1.5], [36, 43, 37], [90] * 3)  # C, G, C#
>>> round(harmonic_agreement([chord], [bass], None), 3)
0.667
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from melodia.evaluate.stats import grid_positions, grid_share
from melodia.midi import Score, Track
from melodia.midi.bars import bar_set, bar_starts
from melodia.midi.instruments import family_of

ALIGN_TOLERANCE_S = 0.03
TRIADS = np.array([[0, 4, 7], [0, 3, 7]])  # major and minor, on each of 12 roots


def beat_pitch_classes(given: Sequence[np.ndarray], tempos, beats: int) -> np.ndarray:
    """``float[beats, 12]``: how long (in beats) each pitch class of the given notes sounds in
    each beat (drums excluded by the caller)."""
    out = np.zeros((beats, 12))
    for notes in given:
        if not len(notes):
            continue
        start = grid_positions(notes["start_s"], tempos, 1)
        end = grid_positions(notes["end_s"], tempos, 1)
        pc = notes["pitch"].astype(np.int64) % 12
        for b0, b1, p in zip(start.tolist(), end.tolist(), pc.tolist()):
            for beat in range(max(int(math.floor(b0)), 0), min(int(math.ceil(b1)), beats)):
                out[beat, p] += min(b1, beat + 1) - max(b0, beat)
    return out


def implied_triad(profile: np.ndarray) -> set[int]:
    """The major or minor triad whose pitch classes sound longest in ``profile`` (12 weights)."""
    best, chosen = -1.0, set()
    for root in range(12):
        for shape in TRIADS:
            pcs = (root + shape) % 12
            weight = float(profile[pcs].sum())
            if weight > best + 1e-12:
                best, chosen = weight, set(pcs.tolist())
    return chosen


def _in_beats(given: Sequence[np.ndarray], notes: Sequence[np.ndarray], tempos
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The beat of each of ``notes``' onsets, their pitch classes, and the pitch classes the
    ``given`` notes sound in every beat up to the last (None: no notes)."""
    notes = [n for n in notes if len(n)]
    if not notes:
        return None
    onsets = np.concatenate([n["start_s"] for n in notes])
    pcs = np.concatenate([n["pitch"] for n in notes]).astype(np.int64) % 12
    beat = np.floor(grid_positions(onsets, tempos, 1) + 1e-9).astype(np.int64)
    return beat, pcs, beat_pitch_classes(given, tempos, int(beat.max(initial=0)) + 1)


def harmonic_agreement(given: Sequence[np.ndarray], new: Sequence[np.ndarray], tempos) -> float:
    """Share of the ``new`` melodic notes whose pitch class sounds in the ``given`` melodic
    notes within the beat of its onset, or is in the triad they imply; nan when no new note
    falls in a beat where the given music sounds. ``tempos``: ``TEMPO_DTYPE`` or None (120)."""
    found = _in_beats(given, new, tempos)
    if found is None:
        return math.nan
    beat, pcs, profiles = found
    hits = counted = 0
    for b, p in zip(beat.tolist(), pcs.tolist()):
        if b < 0 or not profiles[b].any():
            continue
        counted += 1
        hits += bool(profiles[b, p] > 0 or p in implied_triad(profiles[b]))
    return float(hits / counted) if counted else math.nan


def bass_in_beat(given: Sequence[np.ndarray], bass: Sequence[np.ndarray], tempos) -> float:
    """Share of the ``bass`` notes whose pitch class sounds in the ``given`` melodic notes
    within the beat of its onset (beats of the tempo map ``tempos``, ``TEMPO_DTYPE`` or None:
    120); nan when no bass note falls in a beat where the given music sounds."""
    found = _in_beats(given, bass, tempos)
    if found is None:
        return math.nan
    beat, pcs, profiles = found
    inside = beat >= 0
    beat, pcs = beat[inside], pcs[inside]
    counted = profiles[beat].any(axis=1)
    if not counted.any():
        return math.nan
    return float(np.mean(profiles[beat[counted], pcs[counted]] > 0))


def rhythmic_alignment(drums: np.ndarray, tempos, tolerance_s: float = ALIGN_TOLERANCE_S) -> float:
    """Share of drum onsets within ``tolerance_s`` of the 16th-note grid of ``tempos``."""
    if not len(drums):
        return math.nan
    return grid_share(np.unique(drums["start_s"]), tempos, tolerance_s=tolerance_s)


def broken_link(tracks: Sequence[Track], tempos, rng: np.random.Generator) -> list[Track]:
    """``tracks`` moved off the given music: melodic pitches up a random 1..11 semitones (one
    draw for all), every onset half a beat later (at the tempo where it falls)."""
    semitones = int(rng.integers(1, 12))
    out = []
    for track in tracks:
        notes = track.notes.copy()
        if not track.is_drum:
            notes["pitch"] = np.clip(notes["pitch"].astype(np.int64) + semitones, 0, 127)
        beat_s = 60.0 / _qpm_at(tempos, notes["start_s"])
        notes["start_s"] += beat_s / 2
        notes["end_s"] += beat_s / 2
        out.append(Track(notes, program=track.program, is_drum=track.is_drum, name=track.name))
    return out


def _qpm_at(tempos, times_s: np.ndarray) -> np.ndarray:
    if tempos is None or not len(tempos):
        return np.full(len(times_s), 120.0)
    k = np.searchsorted(tempos["time_s"], times_s, side="right") - 1
    return tempos["qpm"][np.maximum(k, 0)]


def accompaniment_scores(given: Sequence[Track], new: Sequence[Track], tempos) -> dict[str, float]:
    """``harmonic`` (new melodic parts vs the given melodic parts), ``bass`` (the new bass notes'
    pitch classes in the given music's beat, :func:`bass_in_beat`) and ``rhythmic`` (new drums
    on the given music's grid) agreement."""
    given_melodic = [t.notes for t in given if not t.is_drum]
    new_melodic = [t.notes for t in new if not t.is_drum]
    bass = [t.notes for t in new if not t.is_drum and family_of(t.program) == "bass"]
    drums = [t.notes for t in new if t.is_drum]
    return {"harmonic": harmonic_agreement(given_melodic, new_melodic, tempos),
            "bass": bass_in_beat(given_melodic, bass, tempos),
            "rhythmic": rhythmic_alignment(np.concatenate(drums), tempos) if drums
            else math.nan}


def link_scores(score: Score, new: Sequence[int], seed: int = 0) -> dict[str, float]:
    """The tracks ``new`` of ``score`` scored against its other tracks: ``harmonic`` and
    ``rhythmic`` (:func:`accompaniment_scores`), and the same for the link broken
    (:func:`broken_link`, drawn by ``seed``): ``broken_harmonic``, ``broken_rhythmic``."""
    given = [t for i, t in enumerate(score.tracks) if i not in new and len(t.notes)]
    parts = [score.tracks[i] for i in new]
    out = accompaniment_scores(given, parts, score.tempos)
    broken = accompaniment_scores(given, broken_link(parts, score.tempos,
                                                     np.random.default_rng(seed)), score.tempos)
    return {**out, "broken_harmonic": broken["harmonic"], "broken_bass": broken["bass"],
            "broken_rhythmic": broken["rhythmic"]}


def jaccard(a: set, b: set) -> float:
    """``|a & b| / |a | b|``; two empty bars are alike (1.0)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def bar_distance(a: set, b: set) -> float:
    """``1 - jaccard``: 0 for the same bar, 1 for bars with nothing in common."""
    return 1.0 - jaccard(a, b)


def bar_neighbours(tracks: Sequence[Track], score: Score) -> np.ndarray:
    """The bar distance from each bar of ``tracks`` to the next, by the score's own bars (time
    signatures and tempo map), over pairs where both bars strike something: how far real music
    moves from one bar to the next."""
    starts = bar_starts(score, max((t.end_s for t in tracks), default=0.0))
    sets = [bar_set(tracks, score, a, b) for a, b in zip(starts[:-1], starts[1:])]
    return np.array([bar_distance(a, b) for a, b in zip(sets[:-1], sets[1:]) if a and b])


def seam_distances(tracks: Sequence[Track], score: Score, start_s: float, end_s: float
                   ) -> tuple[float, float]:
    """The seams of a span of bars ``[start_s, end_s)``: the bar distance from the bar before it
    to its first bar, and from its last bar to the bar after it (NaN where the span starts the
    piece or ends it)."""
    starts = bar_starts(score, end_s + 1e-6)
    first = int(np.searchsorted(starts, start_s - 1e-6))  # the span's first bar
    after_span = int(np.searchsorted(starts, end_s - 1e-6))  # the bar after it

    def bar(i: int) -> set:
        return bar_set(tracks, score, starts[i], starts[i + 1])

    before = bar_distance(bar(first - 1), bar(first)) if first >= 1 else math.nan
    after = (bar_distance(bar(after_span - 1), bar(after_span))
             if end_s < score.end_s - 1e-6 and after_span + 1 < len(starts) else math.nan)
    return before, after


__all__ = ["ALIGN_TOLERANCE_S", "accompaniment_scores", "bar_distance", "bar_neighbours",
           "link_scores",
           "seam_distances",
           "bass_in_beat", "beat_pitch_classes", "broken_link", "harmonic_agreement", "implied_triad", "jaccard",
           "rhythmic_alignment"]
