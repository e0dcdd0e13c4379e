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


def key_histogram(key: str) -> np.ndarray:
    """Pitch-class weights ``[12]`` (C, C#, ..., B) for a key: how often each pitch class sounds
    in music of that mode (Kostka-Payne frequencies, squared; tonic and third 1.3x), rotated to
    the tonic.

    Accepts ``C``, ``c#``, ``Eb``, ``F# major``, ``Am``, ``a minor``, ``Bbm``. The tonic weighs
    most; the third and the fifth come next:

    >>> weights = key_histogram("D minor")
    >>> int(weights.argmax())  # D
    2
    >>> bool(weights[5] > weights[4])  # F, the minor third, over F#
    True
    """
    match = re.fullmatch(r"\s*([a-gA-G])([#b♯♭]?)\s*(m|min|minor|maj|major)?\s*", key)
    if not match:
        raise GenerateError(f"cannot read the key {key!r}; try C, F#, Bb, Am or 'E minor'")
    letter, accidental, mode = match.groups()
    alter = {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)
    tonic = (_NOTE_NAMES[letter.lower()] + alter) % 12
    profile = _MINOR_PROFILE if mode in ("m", "min", "minor") else _MAJOR_PROFILE
    return np.roll(profile, tonic)


__all__ = ["key_histogram"]
