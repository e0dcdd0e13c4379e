"""Which pieces a score source holds -> :class:`ScoreItem`: score files, tunes of multi-tune ABC
files and ``music21:`` corpus references (``music21:bach``, ``music21:all``,
``music21:bach/bwv66.6``).

ABC files that hold many tunes (``X:`` headers) give one item per tune, named ``file.abc#i``
(``i`` counts from 0 in file order). An item from the music21 corpus knows its licence. Reading an
item (music21 parsing and conversion to a :class:`~melodia.midi.Score`) is :mod:`melodia.corpus.scores`.
This module imports music21 only to list the corpus, and knows nothing of tokens or torch.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from melodia.errors import ScoreReadError

MUSIC21_PREFIX = "music21:"
SCORE_FORMATS = {".musicxml": "musicxml", ".mxl": "musicxml", ".xml": "musicxml",
                 ".abc": "abc", ".krn": "humdrum"}
SCORE_SUFFIXES = set(SCORE_FORMATS)

_TERMS = ("music21 corpus, shipped with music21 (BSD-3-Clause software); encodings distributed "
          "with the encoders' permission, some for non-commercial use only: see "
          "music21/corpus/license.txt")
#: music21 corpus folder -> licence / provenance recorded in the manifest of every item from it.
LICENCES = {
    "bach": "J.S. Bach (public-domain compositions); " + _TERMS,
    "essenFolksong": "Essen folksong collection (EsAC; ABC by Seymour Schlien): non-commercial "
                     "distribution and use by permission, see corpus/essenFolksong/license.txt; "
                     + _TERMS,
    "ryansMammoth": "Ryan's Mammoth Collection (1883, public-domain tunes), ABC contributed to "
                    "music21; " + _TERMS,
    "oneills1850": "O'Neill's 1850 Irish tunes (public-domain tunes), ABC; " + _TERMS,
    "nottingham-dataset": "Nottingham Music Database (folk tunes, ABC); " + _TERMS,
}


@dataclass(frozen=True)
class ScoreItem:
    """One piece to read: a score file, or one tune of a multi-tune ABC file."""

    file: str  # path on disk
    index: int | None = None  # tune of a multi-tune ABC file, from 0; None = the whole file
    source: str | None = None  # the ``music21:`` reference that found it, if any

    @property
    def path(self) -> str:
        """Name in manifests and reports: ``file``, or ``file#index`` for one tune."""
        return self.file if self.index is None else f"{self.file}#{self.index}"

    @property
    def format(self) -> str:
        return SCORE_FORMATS.get(Path(self.file).suffix.lower(), "musicxml")

    def sha1(self, data: bytes) -> str:
        """Content hash: of the file's bytes, plus the tune index for one tune of many."""
        digest = hashlib.sha1(data)
        if self.index is not None:
            digest.update(f"#{self.index}".encode())
        return digest.hexdigest()

    def licence(self) -> str | None:
        """Licence / provenance of a music21 corpus item; ``None`` (unknown) for other files."""
        if self.source is None:
            return None
        folder = _corpus_folder(Path(self.file))
        return LICENCES.get(folder, f"{folder}: " + _TERMS)


# ------------------------------------------------------------------------------- discovery


def is_music21_ref(source: str | Path) -> bool:
    return str(source).startswith(MUSIC21_PREFIX)


def music21_paths(ref: str) -> list[Path]:
    """Score files of a ``music21:`` reference: ``all``, a composer or collection folder
    (``bach``, ``essenFolksong``), or one work (``bach/bwv66.6``). Sorted; only formats this
    module reads (roman-numeral analyses and the like are left out)."""
    from music21 import corpus

    name = ref[len(MUSIC21_PREFIX):].strip("/")
    if not name:
        raise ScoreReadError(ref, "empty music21 corpus reference (try music21:bach)")
    if name == "all":
        paths = corpus.getPaths()
    elif "/" not in name and corpus.getComposer(name):
        paths = corpus.getComposer(name)
    else:
        try:
            work = corpus.getWork(name)
        except Exception as err:  # music21 raises CorpusException or others for unknown names
            raise ScoreReadError(ref, f"not in the music21 corpus ({err})") from None
        paths = work if isinstance(work, list) else [work]
    found = sorted({Path(p) for p in paths if Path(p).suffix.lower() in SCORE_SUFFIXES})
    if not found:
        raise ScoreReadError(ref, "the music21 corpus holds no readable scores under that name")
    return found


def _corpus_folder(path: Path) -> str:
    parts = path.parts
    return parts[parts.index("corpus") + 1] if "corpus" in parts[:-1] else path.parent.name


_TUNE_START = re.compile(r"^\s*X\s*:", re.MULTILINE)


def split_abc_tunes(text: str) -> list[str]:
    """The tunes of an ABC file, each with the file header (text before the first ``X:``)."""
    starts = [m.start() for m in _TUNE_START.finditer(text)]
    if len(starts) <= 1:
        return [text]
    header = text[: starts[0]]
    return [header + text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


def score_items(path: str | Path, source: str | None = None) -> list[ScoreItem]:
    """The items of one score file: one per tune of a multi-tune ABC file, else one."""
    path = Path(path)
    if path.suffix.lower() == ".abc" and path.is_file():
        tunes = split_abc_tunes(path.read_bytes().decode("utf-8", errors="replace"))
        if len(tunes) > 1:
            return [ScoreItem(str(path), i, source) for i in range(len(tunes))]
    return [ScoreItem(str(path), None, source)]


def find_score_items(source: str | Path) -> list[ScoreItem]:
    """Items of a ``music21:`` reference or a score file."""
    if is_music21_ref(source):
        ref = str(source)
        return [item for p in music21_paths(ref) for item in score_items(p, ref)]
    return score_items(source)


__all__ = ["LICENCES", "MUSIC21_PREFIX", "SCORE_FORMATS", "SCORE_SUFFIXES", "ScoreItem",
           "find_score_items", "is_music21_ref", "music21_paths", "score_items", "split_abc_tunes"]
