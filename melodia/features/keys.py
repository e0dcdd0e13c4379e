"""A key asked for by name, as the pitch-class control a model is conditioned on."""

from __future__ import annotations

import re

import numpy as np

from melodia.errors import GenerateError

_NOTE_NAMES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
# How often each pitch class occurs in major / minor music, from C: the share of segments holding
# it in the Kostka-Payne corpus (Temperley, "Music and Probability", 2007), squared to sharpen the
# tonal hierarchy; then the tonic and the third weigh 1.3x more, which sets a key apart from its
# relative (same scale, other triad). Asked for as a pitch-class control, these land on the asked
# key far more often than a flat scale (tests/benchmarks/eval_quality.py --key-check).
_TRIAD_WEIGHT = 1.3
_MAJOR_PROFILE = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366,
                           0.057, 0.400]) ** 2 * np.where(np.isin(np.arange(12), [0, 4]),
                                                          _TRIAD_WEIGHT, 1.0)
_MINOR_PROFILE = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067,
                           0.133, 0.330]) ** 2 * np.where(np.isin(np.arange(12), [0, 3]),
                                                          _TRIAD_WEIGHT, 1.0)


_KEY = re.compile(r"\s*([a-gA-G])\s*(#{1,2}|♯|x|b{1,2}|♭|-{1,2}|\s+sharp|\s+flat)?"
                  r"\s*(m|min|minor|maj|major)?\s*", re.IGNORECASE)
_ALTER = {"#": 1, "##": 2, "♯": 1, "x": 2, "b": -1, "bb": -2, "♭": -1, "-": -1, "--": -2,
          "sharp": 1, "flat": -1}
_SPELLINGS = ("C, F#, Eb major, E- major (music21's flat), E♭ major, Bbm, f# minor, Am; a "
              "lower-case letter alone is minor (eb = E♭ minor, as music21 writes keys)")


def parse_key(key: str) -> tuple[int, str]:
    """``(tonic pitch class, "major" | "minor")`` of a key in any common spelling.

    Sharps ``#`` / ``♯``, flats ``b`` / ``♭`` / ``-`` (music21's spelling); ``major`` / ``maj``
    or ``minor`` / ``min`` / ``m`` after it; with no mode, an upper-case letter is major and a
    lower-case one minor (music21's convention).

    >>> [parse_key(k) for k in ("E- major", "Eb", "E♭ major", "eb", "D#m", "f# minor", "B-")]
    [(3, 'major'), (3, 'major'), (3, 'major'), (3, 'minor'), (3, 'minor'), (6, 'minor'), (10, 'major')]
    >>> parse_key("H major")
    Traceback (most recent call last):
    ...
    melodia.errors.GenerateError: cannot read the key 'H major'; write a letter A-G, an accidental and a mode, e.g. C, F#, Eb major, E- major (music21's flat), E♭ major, Bbm, f# minor, Am; a lower-case letter alone is minor (eb = E♭ minor, as music21 writes keys)
    """
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    if not match:
        raise GenerateError(f"cannot read the key {key!r}; write a letter A-G, an accidental and "
                            f"a mode, e.g. {_SPELLINGS}")
    letter, accidental, mode = match.groups()
    if mode is None:  # music21: upper case major, lower case minor
        minor = letter.islower()
    else:  # "m" minor, "M" major (as in chord names), the words in any case
        minor = mode == "m" or mode.lower() in ("min", "minor")
    alter = _ALTER[accidental.strip().lower()] if accidental else 0
    return (_NOTE_NAMES[letter.lower()] + alter) % 12, "minor" if minor else "major"


def key_histogram(key: str) -> np.ndarray:
    """Pitch-class weights ``[12]`` (C, C#, ..., B) for a key: how often each pitch class sounds
    in music of that mode (Kostka-Payne frequencies, squared; tonic and third 1.3x), rotated to
    the tonic.

    Accepts every spelling :func:`parse_key` reads. The tonic weighs most; the third and the
    fifth come next:

    >>> weights = key_histogram("D minor")
    >>> int(weights.argmax())  # D
    2
    >>> bool(weights[5] > weights[4])  # F, the minor third, over F#
    True
    """
    tonic, mode = parse_key(key)
    profile = _MINOR_PROFILE if mode == "minor" else _MAJOR_PROFILE
    return np.roll(profile, tonic)


__all__ = ["key_histogram", "parse_key"]
