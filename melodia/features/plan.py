"""The band plan: what a band piece is asked to be (a style, a line-up, a tempo, how random each
instrument plays), resolved against what a band model knows, and the conditions it makes
(:class:`BandLayout`, :func:`conditions`). No torch here.

Style names as musicians write them: ``heavy-metal``, ``Bossa Nova``, ``jazz`` -> a band model's
own styles.
A band model knows the styles of its training corpus's folders (``metal``, ``bossa``, ...). A name
a user types is matched in three ways, in order:

1. itself, ignoring case, spaces, hyphens and underscores (``Heavy_Metal`` = ``heavy metal``);
2. an alias the model's checkpoint records (``extra["band"]["style_aliases"]``, written at
   training time from :data:`COMMON_ALIASES`, so a new band model brings its own);
3. for a checkpoint written before aliases were recorded, :data:`COMMON_ALIASES` itself.

>>> resolve_style("Heavy-Metal", ["metal", "rock"])
'metal'
>>> resolve_style("hard_rock", ["metal", "rock"])
'rock'
>>> resolve_style("polka", ["metal", "rock"])
Traceback (most recent call last):
...
melodia.errors.GenerateError: unknown style 'polka'; this model knows: metal, rock (--list-styles shows their other names)
>>> resolve_style("hevy metl", ["metal", "rock"])
Traceback (most recent call last):
...
melodia.errors.GenerateError: unknown style 'hevy metl'; this model knows: metal, rock; did you mean metal? (--list-styles shows their other names)
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from melodia.errors import GenerateError
from melodia.midi.instruments import (N_INSTRUMENTS, LineupError, instrument_name,
                                      instrument_values, parse_lineup)

# The names people use for the styles melodia's corpora are filed under (folder names of the
# MMA grooves and Freedoom's tracks). Keys are the styles; a model uses those it was trained on.
COMMON_ALIASES: dict[str, tuple[str, ...]] = {
    "metal": ("heavy metal", "heavy-metal", "thrash", "thrash metal", "speed metal", "doom",
              "doom metal", "death metal", "nu metal", "power metal"),
    "rock": ("hard rock", "hard-rock", "classic rock", "rock and roll", "rock n roll",
             "rock'n'roll", "rocknroll", "pop rock", "punk", "punk rock", "grunge", "alternative",
             "indie rock", "blues rock"),
    "bossa": ("bossa nova", "bossa-nova", "bossanova", "brazilian"),
    "latin": ("salsa", "samba", "rumba", "mambo", "cha cha", "cha-cha", "cha cha cha",
              "merengue", "cumbia", "bolero", "son", "latin jazz", "afro cuban", "afro-cuban",
              "tango", "beguine"),
    "swing": ("jazz", "big band", "bigband", "jazz swing", "swing jazz", "jump blues", "bebop",
              "shuffle"),
    "funk": ("funky", "disco", "soul", "r&b", "rnb", "rhythm and blues"),
    "country": ("country and western", "country & western", "western", "bluegrass",
                "country rock", "americana", "folk"),
}


def style_key(name: str) -> str:
    """``name`` with case, spaces, hyphens and underscores dropped: the form names match in.

    >>> style_key(" Bossa_Nova "), style_key("rock-n-roll")
    ('bossanova', 'rocknroll')
    """
    return re.sub(r"[\s_\-]+", "", str(name).lower())


def aliases_for(styles: Iterable[str],
                table: Mapping[str, Sequence[str]] = COMMON_ALIASES) -> dict[str, str]:
    """``{alias: style}`` for the styles a model knows (what a checkpoint records at training).

    >>> aliases_for(["metal"])["heavy metal"]
    'metal'
    """
    known = {style_key(s): s for s in styles}
    out: dict[str, str] = {}
    seen = set(known)
    for style, names in table.items():
        target = known.get(style_key(style))
        for alias in names if target is not None else ():
            if style_key(alias) not in seen:  # one spelling of each name is enough
                seen.add(style_key(alias))
                out[alias] = target
    return out


def model_aliases(info: Mapping | None) -> dict[str, str]:
    """The aliases a band checkpoint's ``extra["band"]`` records, else the common ones for its
    styles (checkpoints from before aliases were recorded)."""
    info = info or {}
    recorded = info.get("style_aliases")
    if isinstance(recorded, dict):
        return {str(k): str(v) for k, v in recorded.items()}
    return aliases_for(info.get("styles") or ())


def resolve_style(name: str, styles: Sequence[str],
                  aliases: Mapping[str, str] | None = None) -> str:
    """The model style ``name`` means; one line with the nearest known names if none.

    ``aliases`` (``{alias: style}``) defaults to :data:`COMMON_ALIASES` for ``styles``.
    """
    aliases = aliases_for(styles) if aliases is None else aliases
    by_key = {style_key(a): s for a, s in aliases.items() if s in styles}
    by_key.update({style_key(s): s for s in styles})
    found = by_key.get(style_key(name))
    if found is not None:
        return found
    if not styles:
        raise GenerateError(f"unknown style {name!r}: this model was trained without styles")
    near = difflib.get_close_matches(style_key(name), list(by_key), n=4, cutoff=0.7)
    guesses = list(dict.fromkeys(by_key[k] for k in near))  # the styles, nearest first
    hint = f"; did you mean {' or '.join(guesses)}?" if guesses else ""
    raise GenerateError(f"unknown style {name!r}; this model knows: {', '.join(styles)}{hint} "
                        f"(--list-styles shows their other names)")


# ---------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class BandLayout:
    """Where each band condition sits in a model's ``band_dim`` inputs."""

    styles: tuple[str, ...]
    tempo_bins: int = 32

    @property
    def dim(self) -> int:
        return N_INSTRUMENTS + len(self.styles) + self.tempo_bins

    @property
    def lineup(self) -> slice:
        return slice(0, N_INSTRUMENTS)

    @property
    def style(self) -> slice:
        return slice(N_INSTRUMENTS, N_INSTRUMENTS + len(self.styles))

    @property
    def tempo(self) -> slice:
        return slice(N_INSTRUMENTS + len(self.styles), self.dim)

    @classmethod
    def from_info(cls, info: dict) -> "BandLayout":
        """The layout a checkpoint's ``extra["band"]`` describes."""
        return cls(tuple(info.get("styles") or ()), int(info.get("tempo_bins", 32)))

    def style_index(self, style: str) -> int:
        if style not in self.styles:
            known = ", ".join(self.styles) or "none (the model was trained without styles)"
            raise LineupError(f"unknown style {style!r}; this model knows: {known}")
        return self.styles.index(style)


def tempo_position(qpm: float, encoding) -> float:
    """Fractional tempo bin of ``qpm`` (the band encoding's log-spaced bins)."""
    c = encoding.config
    q = float(np.clip(qpm, c.min_qpm, c.max_qpm))
    return (np.log(q) - np.log(c.min_qpm)) / (np.log(c.max_qpm) - np.log(c.min_qpm)) * (
        c.tempo_bins - 1)


def conditions(layout: BandLayout, encoding, instruments: Sequence[int] | None = None,
               style: int | None = None, qpm: float | None = None) -> np.ndarray:
    """The constant band inputs ``float32[layout.dim]``; ``None`` leaves a part absent (zeros)."""
    out = np.zeros(layout.dim, dtype=np.float32)
    if instruments is not None:
        out[np.asarray(list(instruments), dtype=np.int64)] = 1.0
    if style is not None:
        out[layout.style.start + int(style)] = 1.0
    if qpm is not None:
        x = tempo_position(qpm, encoding)
        low = int(np.floor(x))
        high = min(low + 1, layout.tempo_bins - 1)
        w = x - low
        out[layout.tempo.start + low] += 1.0 - w
        out[layout.tempo.start + high] += w
    return out


def plan_band(info: dict[str, Any] | None, band_dim: int, encoding, *, style: str | None = None,
              lineup: str | Sequence[str | int] | None = None, tempo: float | None = None,
              rules: bool = True, randomness=None, temperatures=None,
              seed: int = 0, given: Sequence[int] = ()) -> dict[str, Any] | None:
    """Style, line-up and tempo to play (asked for, else drawn by ``seed`` from the training files
    of the style, as a band model's checkpoint lists them in ``info``), with the band conditions
    they make and the per-instrument ``randomness`` and ``temperatures`` (``"drums=0.8,bass=1.1"``)
    as ``{instrument: value}`` over the line-up; None for a model without band conditions
    (``band_dim`` 0). ``given``: instruments of given material that the line-up plays beside
    (in the conditions' line-up, never in the plan's)."""
    asked = [k for k, v in (("style", style), ("lineup", lineup)) if v is not None]
    if not band_dim:  # a tempo alone only sets the file's (and the beat clock's) tempo
        if asked:
            raise GenerateError(f"{', '.join(asked)}: only a band model (--model band) takes "
                                "these; this model has no band conditions")
        if temperatures is not None:
            raise GenerateError("a temperature per instrument needs a band model")
        return None
    info = info or {}
    layout = BandLayout(tuple(info.get("styles") or ()), int(info.get("tempo_bins", 32)))
    if layout.dim != band_dim:
        raise GenerateError("the checkpoint's band information does not match its model")
    if style is not None:  # as musicians write it: heavy-metal, Bossa Nova, jazz...
        style = resolve_style(style, layout.styles, model_aliases(info))
    rows = [r for r in info.get("lineups") or [] if style is None or r.get("style") == style]
    drawn = rows[int(np.random.default_rng((seed, 9)).integers(len(rows)))] if rows else {}
    style = style or drawn.get("style") or None
    style_index = layout.styles.index(style) if style in layout.styles else None
    qpm = float(tempo or drawn.get("qpm") or 120.0)
    band = conditions(layout, encoding, None, style_index, qpm)
    preferred = (info.get("programs") or {}).get(style or "", {})
    try:
        instruments = (parse_lineup(lineup, preferred, given) if lineup is not None
                       else [int(i) for i in drawn.get("instruments") or []] or None)
        names = [instrument_name(i) for i in instruments or []]
        per_instrument = [None if spec is None or isinstance(spec, (int, float)) and i == 0
                          else instrument_values(spec, instruments or [])
                          for i, spec in enumerate((randomness, temperatures))]
    except LineupError as err:
        raise GenerateError(str(err)) from None
    if instruments:
        band[layout.lineup][instruments] = 1.0  # the line-up's part of the conditions
    if given:
        band[layout.lineup][list(given)] = 1.0
    return {"style": style, "instruments": instruments, "qpm": qpm, "names": names,
            "profile": info.get("profile") if rules else None, "conditions": band,
            "randomness": per_instrument[0], "temperatures": per_instrument[1]}


__all__ = ["BandLayout", "COMMON_ALIASES", "aliases_for", "conditions", "model_aliases", "plan_band",
           "resolve_style", "style_key", "tempo_position"]
