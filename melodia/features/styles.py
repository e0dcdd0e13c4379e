"""Style names as musicians write them: ``heavy-metal``, ``Bossa Nova``, ``jazz`` -> a band model's
own styles. No torch here.

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
from typing import Iterable, Mapping, Sequence

from melodia.errors import GenerateError

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


__all__ = ["COMMON_ALIASES", "aliases_for", "model_aliases", "resolve_style", "style_key"]
