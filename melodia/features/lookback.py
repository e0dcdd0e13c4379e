"""Bar lookback: what each part struck at this point of the bar, one and two bars ago.

Magenta's Lookback RNN gives a melody model the events of one and two bars back, so that a
small model only has to learn *when* to copy; this is the same idea for a band's performance
events (issue 33, lever 1). At a step whose time lies ``b`` beats into the piece, lag ``k``
holds the onsets whose beat lies in ``[b - k * BAR_BEATS, b - k * BAR_BEATS + WINDOW_BEATS)``
(the 16th that is about to come, one bar back), as a multi-hot over :data:`FEATURES` onset
kinds:

- drums: :data:`DRUM_GROUPS` kinds by GM drum note (kick, snare, closed hat, open hat, low and
  high toms, crash, ride, hand percussion, other);
- pitched parts: the pitch class, per family (bass, guitar, keys, other): 4 x 12.

Beats come from the music's tempo map (training) or the stream's tempo (generation), as the
meter input's do (:func:`melodia.features.band.beats_at`); a bar is 4 beats. No torch here:
:func:`lookback_rows` builds the inputs of a whole sequence at once (training and scoring), and
:class:`LookbackTracker` the same values step by step as a piece is played (generation).
"""

from __future__ import annotations

import numpy as np

from melodia.encoding.events import NOTE_ON, lookup_tables
from melodia.features.band import current_instrument
from melodia.midi.instruments import DRUMS, group_of

LAGS = (1, 2)  # bars back
BAR_BEATS = 4.0  # 4/4, as the band's bars are counted everywhere in melodia
WINDOW_BEATS = 0.25  # the 16th about to come
_KINDS = {  # GM drum notes by what they are
    0: (35, 36),  # kick
    1: (37, 38, 39, 40),  # snare, side stick, clap
    2: (42, 44),  # closed and pedal hi-hat
    3: (46,),  # open hi-hat
    4: (41, 43, 45),  # low toms
    5: (47, 48, 50),  # high toms
    6: (49, 52, 55, 57),  # crash, china, splash
    7: (51, 53, 59),  # ride
    8: tuple(range(60, 69)),  # bongos, congas, timbales
    9: (54, 56, 58, 69, 70, 73, 74, 75, 76, 77),  # tambourine, cowbell, shakers, claves, blocks
}
DRUM_GROUPS = 11  # the kinds above and "other"
DRUM_KIND = np.full(128, DRUM_GROUPS - 1, dtype=np.int64)
for _kind, _notes in _KINDS.items():
    DRUM_KIND[list(_notes)] = _kind
FAMILIES = ("bass", "guitar", "keys", "other")
FEATURES = DRUM_GROUPS + 12 * len(FAMILIES)
LOOKBACK_DIM = len(LAGS) * FEATURES
KEEP_BEATS = max(LAGS) * BAR_BEATS + WINDOW_BEATS  # how far back a tracker remembers


_FAMILY = np.array([FAMILIES.index(g) if (g := group_of(i)) in FAMILIES else len(FAMILIES) - 1
                    for i in range(DRUMS)] + [0], dtype=np.int64)  # per instrument, drums aside


def features_of(instruments: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """The onset kinds (indices into :data:`FEATURES`, ``int64``) of ``pitches`` struck by
    ``instruments``."""
    instruments, pitches = np.asarray(instruments), np.asarray(pitches, dtype=np.int64)
    pitched = DRUM_GROUPS + 12 * _FAMILY[instruments] + pitches % 12
    return np.where(instruments == DRUMS, DRUM_KIND[np.clip(pitches, 0, 127)], pitched)


def feature_of(instrument: int, pitch: int) -> int:
    """:func:`features_of` of one onset."""
    return int(features_of(np.array([instrument]), np.array([pitch]))[0])


def lookback_rows(onset_beats: np.ndarray, onset_features: np.ndarray,
                  row_beats: np.ndarray) -> np.ndarray:
    """``uint8[R, LOOKBACK_DIM]``: for each row at ``row_beats``, the kinds struck in each lag's
    window, from onsets at ``onset_beats`` of kinds ``onset_features`` (any order)."""
    order = np.argsort(onset_beats, kind="stable")
    beats = np.asarray(onset_beats, dtype=np.float64)[order]
    kinds = np.asarray(onset_features, dtype=np.int64)[order]
    prefix = np.zeros((len(beats) + 1, FEATURES), dtype=np.int32)
    prefix[np.arange(1, len(beats) + 1), kinds] = 1
    np.cumsum(prefix, axis=0, out=prefix)
    rows = np.asarray(row_beats, dtype=np.float64)
    out = np.zeros((len(rows), LOOKBACK_DIM), dtype=np.uint8)
    for j, lag in enumerate(LAGS):
        start = rows - lag * BAR_BEATS
        lo = np.searchsorted(beats, start, side="left")
        hi = np.searchsorted(beats, start + WINDOW_BEATS, side="left")
        out[:, j * FEATURES:(j + 1) * FEATURES] = (prefix[hi] - prefix[lo]) > 0
    return out


def event_onsets(ids: np.ndarray, encoding) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The NOTE_ONs of an event stream: their indices, instruments (the last PROGRAM's; 0
    before any, as :func:`melodia.features.band.current_instrument`) and pitches."""
    ids = np.asarray(ids, dtype=np.int64)
    kinds, values = lookup_tables(encoding.vocab)
    at = np.flatnonzero(kinds[ids] == NOTE_ON)
    return at, current_instrument(ids, encoding)[at], values[ids[at]].astype(np.int64)


def sequence_lookback(ids: np.ndarray, encoding, beats: np.ndarray,
                      start: int = 0) -> np.ndarray:
    """``uint8[T - start, LOOKBACK_DIM]``: the rows of an event stream from ``start`` on, each
    event at ``beats[i]`` (the beat after it, as the meter input's), every earlier onset
    counted."""
    at, instruments, pitches = event_onsets(ids, encoding)
    beats = np.asarray(beats, dtype=np.float64)
    return lookback_rows(beats[at], features_of(instruments, pitches), beats[start:])


class LookbackTracker:
    """:func:`lookback_rows` as a piece is played, one step at a time, for ``batch`` rows:
    :meth:`add` each onset as it is struck, :meth:`features` at each step's beat."""

    def __init__(self, batch: int, onsets: list[tuple[float, int]] | None = None) -> None:
        self.onsets = [list(onsets or ()) for _ in range(batch)]  # per row: (beat, kind)

    def add(self, row: int, beat: float, instrument: int, pitch: int) -> None:
        onsets = self.onsets[row]
        onsets.append((float(beat), feature_of(instrument, pitch)))
        if onsets[0][0] < beat - KEEP_BEATS - BAR_BEATS:  # forget, a bar at a time
            self.onsets[row] = [o for o in onsets if o[0] >= beat - KEEP_BEATS]

    def selected(self, rows: np.ndarray) -> "LookbackTracker":
        """A tracker of ``rows`` (a beam search's copies of each context), in that order."""
        out = LookbackTracker(0)
        out.onsets = [list(self.onsets[int(r)]) for r in rows]
        return out

    def features(self, beats: np.ndarray) -> np.ndarray:
        """``float32[batch, LOOKBACK_DIM]`` at each row's beat."""
        out = np.zeros((len(self.onsets), LOOKBACK_DIM), dtype=np.float32)
        for row, (onsets, beat) in enumerate(zip(self.onsets, np.asarray(beats, np.float64))):
            if onsets:
                at, kinds = zip(*onsets)
                out[row] = lookback_rows(np.array(at), np.array(kinds), np.array([beat]))[0]
        return out


__all__ = ["BAR_BEATS", "DRUM_GROUPS", "FAMILIES", "FEATURES", "LAGS", "LOOKBACK_DIM",
           "LookbackTracker", "WINDOW_BEATS", "event_onsets", "feature_of", "features_of",
           "lookback_rows", "sequence_lookback"]
