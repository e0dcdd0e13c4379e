"""Scores through music21 -> :class:`~melodia.midi.Score`: MusicXML, ABC, Humdrum kern, and the
bundled music21 corpus (``music21:bach``, ``music21:all``, ``music21:bach/bwv66.6``).

A score has no performance in it, so the conversion plays it "as written":

* repeats are expanded (``expandRepeats``); where music21 cannot, the score is read unexpanded
  and a log line says so;
* tempo marks (``MetronomeMark``, in quarter notes per minute) set the timing; a score without
  any plays at :data:`DEFAULT_QPM` (100 qpm, a moderate pace); the first mark also rules the
  time before it;
* dynamics marks set velocities through :data:`DYNAMIC_VELOCITY` (``mf`` = 80 until the first
  mark). A part with no dynamics of its own follows the marks of the whole score (piano scores
  often print them on one staff only); accents such as ``sf`` raise only the notes they sit on;
* every part becomes a :class:`~melodia.midi.Track` with its instrument's General MIDI program
  when music21 knows it (else 0, piano); chords give one note per pitch, tied notes become one
  note, grace notes are skipped;
* optional humanisation jitters onsets and velocities with a generator seeded from
  ``ScoreConfig.seed`` and the item's hash, so the same input always gives the same output.

ABC files that hold many tunes (``X:`` headers) give one item per tune, named ``file.abc#i``
(``i`` counts from 0 in file order); finding the items of a source is
:mod:`melodia.corpus.items`. This module imports music21 only when it parses, and knows nothing of
tokens or torch; the conversion cache lives in :mod:`melodia.corpus.cache`.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodia.corpus.items import ScoreItem, find_score_items, split_abc_tunes
from melodia.errors import ScoreReadError
from melodia.midi import NOTE_DTYPE, TEMPO_DTYPE, Score, Track
from melodia.util.timelimit import TimeLimitExceeded, time_limit

log = logging.getLogger(__name__)

DEFAULT_QPM = 100.0  # tempo of a score that has no metronome mark
EXPAND_LIMIT_S = 10.0  # music21's expandRepeats can run away on odd repeat structures...
EXPAND_MAX_RATIO = 4.0  # ...or multiply the notes; past either, the score stays unexpanded

#: Dynamics marks -> MIDI velocity (levels that hold until the next mark).
DYNAMIC_VELOCITY = {"pppp": 8, "ppp": 20, "pp": 33, "p": 49, "mp": 64, "mf": 80, "f": 96,
                    "ff": 112, "fff": 120, "ffff": 127}
DEFAULT_VELOCITY = DYNAMIC_VELOCITY["mf"]
#: Accents -> velocity of the notes starting where they stand (the level does not change).
ACCENT_VELOCITY = {"sf": 108, "sfz": 112, "sffz": 120, "fz": 108, "rf": 104, "rfz": 104,
                   "sfp": 108, "fp": 96}
#: Accents that leave a new level behind them.
ACCENT_THEN = {"sfp": "p", "fp": "p"}


@dataclass
class ScoreConfig:
    """How scores become notes, and where conversions are cached."""

    humanize_s: float = 0.0  # std of onset jitter in seconds (0.01 is light); 0 = off
    humanize_velocity: float = 6.0  # std of velocity jitter, applied only when humanize_s > 0
    seed: int = 0  # humanisation seed, mixed with each item's hash
    default_qpm: float = DEFAULT_QPM  # tempo of scores without a metronome mark
    cache: bool = True  # keep converted scores as .npz (music21 parses slowly)
    cache_dir: str | None = None  # None = $XDG_CACHE_HOME/melodia/scores or ~/.cache/...
    timeout_s: float | None = 120.0  # give up on a piece after this long (POSIX main thread)

    def __post_init__(self) -> None:
        if self.humanize_s < 0 or self.humanize_velocity < 0:
            raise ValueError("humanize_s and humanize_velocity must be >= 0")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0 or None")
        if self.default_qpm <= 0:
            raise ValueError("default_qpm must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreConfig:
        return cls(**data)


# ----------------------------------------------------------------------------------- parsing


def parse_item(item: ScoreItem, data: bytes | None = None):
    """Parse one item with music21 (a ``Score``); any failure is a :class:`ScoreReadError`."""
    from music21 import converter, stream

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if item.format == "abc":
                text = (data if data is not None else Path(item.file).read_bytes()).decode(
                    "utf-8", errors="replace")
                tunes = split_abc_tunes(text)
                if item.index is not None and item.index >= len(tunes):
                    raise ScoreReadError(item.path, f"the file holds only {len(tunes)} tune(s)")
                parsed = converter.parseData(tunes[item.index or 0], format="abc")
            else:
                parsed = converter.parse(item.file, format=item.format, forceSource=True)
    except ScoreReadError:
        raise
    except OSError as err:
        raise ScoreReadError(item.path, err.strerror or str(err)) from None
    except Exception as err:  # music21 raises many types on bad input
        raise ScoreReadError(item.path, _reason(err)) from None
    if isinstance(parsed, stream.Opus):
        if not parsed.scores:
            raise ScoreReadError(item.path, "the file holds no score")
        if len(parsed.scores) > 1:
            log.info("%s holds %d scores; reading the first", item.path, len(parsed.scores))
        parsed = parsed.scores[0]
    if not isinstance(parsed, stream.Stream):
        raise ScoreReadError(item.path, f"music21 returned a {type(parsed).__name__}, not a score")
    return parsed


def _reason(err: Exception) -> str:
    text = " ".join(str(err).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"music21 could not parse it ({type(err).__name__}: {text})"


def read_score(source: str | Path, config: ScoreConfig | None = None) -> Score:
    """Read one score file, one tune (``file.abc#3``) or one corpus work (``music21:bach/bwv66.6``).

    Raises
    ------
    ScoreReadError
        The file is missing or music21 cannot parse it; or the reference names several pieces.
    """
    config = config or ScoreConfig()
    text = str(source)
    match = re.fullmatch(r"(.*\.abc)#(\d+)", text, flags=re.IGNORECASE)
    items = [ScoreItem(match[1], int(match[2]))] if match else find_score_items(text)
    if len(items) != 1:
        raise ScoreReadError(text, f"names {len(items)} pieces; read them with find_score_items")
    item = items[0]
    try:
        data = Path(item.file).read_bytes()
    except OSError as err:
        raise ScoreReadError(item.path, err.strerror or str(err)) from None
    return humanize(convert_item(item, data, config), config, item.sha1(data))


def convert_item(item: ScoreItem, data: bytes, config: ScoreConfig) -> Score:
    """Parse and convert one item (not humanised) within ``config.timeout_s``."""
    try:
        with time_limit(config.timeout_s) as limit:
            return convert(parse_item(item, data), config.default_qpm, item.path)
    except TimeLimitExceeded as err:
        if err.limit is not limit:
            raise
        raise ScoreReadError(item.path, f"music21 took too long ({err})") from None


# -------------------------------------------------------------------------------- conversion


def convert(m21, default_qpm: float = DEFAULT_QPM, name: str = "<score>") -> Score:
    """A music21 ``Score`` (or ``Part``) -> :class:`Score`: repeats expanded, timed by its
    metronome marks, velocities from its dynamics, one track per part."""
    m21 = _expand_repeats(m21, name)
    tempo_q, tempo_s, qpm = _tempo_map(m21, default_qpm)

    def seconds(q: np.ndarray) -> np.ndarray:
        i = np.searchsorted(tempo_q, q, side="right") - 1
        return tempo_s[i] + (q - tempo_q[i]) * 60.0 / qpm[i]

    parts = list(m21.parts) or [m21]
    shared = _dynamics(m21)
    tracks = [_part_track(part, seconds, shared) for part in parts]
    tempos = np.empty(len(qpm), dtype=TEMPO_DTYPE)
    tempos["time_s"], tempos["qpm"] = tempo_s, qpm
    return Score(tracks=[t for t in tracks if len(t.notes)], tempos=tempos)


def _expand_repeats(m21, name: str):
    from music21 import bar, repeat

    marks = m21.recurse().getElementsByClass((bar.Repeat, repeat.RepeatExpression))
    if marks.first() is None:
        return m21
    try:
        with warnings.catch_warnings(), time_limit(EXPAND_LIMIT_S) as limit:
            warnings.simplefilter("ignore")
            expanded = m21.expandRepeats()
    except TimeLimitExceeded as err:
        if err.limit is not limit:
            raise
        log.info("%s: repeats left unexpanded (expandRepeats %s)", name, err)
        return m21
    except Exception as err:  # music21 raises on repeats it cannot resolve
        log.info("%s: repeats left unexpanded (%s: %s)", name, type(err).__name__, err)
        return m21
    before, after = len(m21.recurse().notes), len(expanded.recurse().notes)
    if after > EXPAND_MAX_RATIO * max(before, 1):
        log.info("%s: repeats left unexpanded (expansion gave %d notes from %d)", name, after,
                 before)
        return m21
    return expanded


def _tempo_map(m21, default_qpm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start in quarter notes, start in seconds, qpm) per tempo segment."""
    from music21 import tempo

    marks: dict[float, float] = {}
    for mark in m21.flatten().getElementsByClass(tempo.MetronomeMark):
        bpm = mark.getQuarterBPM()
        if bpm and bpm > 0:
            marks.setdefault(float(mark.offset), float(bpm))
    if not marks:
        marks = {0.0: default_qpm}
    offsets = np.array(sorted(marks), dtype=np.float64)
    qpm = np.array([marks[o] for o in offsets], dtype=np.float64)
    offsets[0] = 0.0  # the first mark also rules the time before it
    keep = np.concatenate([[True], qpm[1:] != qpm[:-1]])  # repeated marks change nothing
    offsets, qpm = offsets[keep], qpm[keep]
    start_s = np.concatenate([[0.0], np.cumsum(np.diff(offsets) * 60.0 / qpm[:-1])])
    return offsets, start_s, qpm


def _dynamics(stream_) -> list[tuple[float, str]]:
    """(offset in quarter notes, mark) of every dynamics mark, in time order."""
    from music21 import dynamics

    found = [(float(d.offset), str(d.value)) for d in
             stream_.flatten().getElementsByClass(dynamics.Dynamic)]
    return sorted(found, key=lambda x: x[0])


def _velocities(onsets: np.ndarray, marks: list[tuple[float, str]]) -> np.ndarray:
    """Velocity of each onset (quarter notes) from dynamics levels and accents."""
    levels = [(0.0, DEFAULT_VELOCITY)]
    accents: dict[float, int] = {}
    for offset, value in marks:
        if value in ACCENT_VELOCITY:
            accents[offset] = ACCENT_VELOCITY[value]
            value = ACCENT_THEN.get(value, "")
        if value in DYNAMIC_VELOCITY:
            levels.append((offset, DYNAMIC_VELOCITY[value]))
    at = np.array([o for o, _ in levels])
    vel = np.array([v for _, v in levels], dtype=np.int16)
    out = vel[np.searchsorted(at, onsets + 1e-9, side="right") - 1]
    for offset, v in accents.items():
        out[np.isclose(onsets, offset)] = v
    return out


def _part_track(part, seconds, shared: list[tuple[float, str]]) -> Track:
    """One part's notes (ties merged, grace notes skipped) as a :class:`Track`."""
    flat = part.stripTies().flatten()
    rows: list[tuple[float, float, int]] = []
    for element in flat.notes:
        if element.duration.isGrace:
            continue
        start = float(element.offset)
        end = start + float(element.quarterLength)
        for pitch in getattr(element, "pitches", ()):
            if 0 <= pitch.midi <= 127:
                rows.append((start, end, pitch.midi))
    notes = np.empty(len(rows), dtype=NOTE_DTYPE)
    if rows:
        table = np.array(rows, dtype=np.float64)
        notes["start_s"], notes["end_s"] = seconds(table[:, 0]), seconds(table[:, 1])
        notes["pitch"] = table[:, 2]
        notes["velocity"] = _velocities(table[:, 0], _dynamics(part) or shared)
        notes = notes[np.lexsort((notes["pitch"], notes["start_s"]))]
    program, is_drum = _instrument(part)
    return Track(notes=notes, program=program, is_drum=is_drum, name=str(part.partName or ""))


def _instrument(part) -> tuple[int, bool]:
    from music21 import instrument

    inst = part.getInstrument(returnDefault=False)
    if inst is None:
        return 0, False
    is_drum = isinstance(inst, instrument.UnpitchedPercussion) or inst.midiChannel == 9
    program = inst.midiProgram
    return (int(program) if program is not None and 0 <= program <= 127 else 0), is_drum


# ------------------------------------------------------------------------------ humanisation


def humanize(score: Score, config: ScoreConfig, key: str) -> Score:
    """Jitter onsets (std ``config.humanize_s``, durations kept) and velocities (std
    ``config.humanize_velocity``); seeded by ``config.seed`` and ``key`` (the item's hash).
    Returns ``score`` itself when humanisation is off."""
    if config.humanize_s <= 0:
        return score
    rng = np.random.default_rng([config.seed, int(key[:15], 16)])
    tracks = []
    for track in score.tracks:
        notes = track.notes.copy()
        shift = rng.normal(0.0, config.humanize_s, len(notes))
        shift = np.maximum(shift, -notes["start_s"])  # nothing before 0 s
        notes["start_s"] += shift
        notes["end_s"] += shift
        jitter = rng.normal(0.0, config.humanize_velocity, len(notes))
        notes["velocity"] = np.clip(np.rint(notes["velocity"] + jitter), 1, 127)
        notes = notes[np.lexsort((notes["pitch"], notes["start_s"]))]
        tracks.append(Track(notes=notes, program=track.program, is_drum=track.is_drum,
                            name=track.name, pedal=track.pedal))
    return Score(tracks=tracks, tempos=score.tempos, time_signatures=score.time_signatures)


__all__ = ["ACCENT_THEN", "ACCENT_VELOCITY", "DEFAULT_QPM", "DEFAULT_VELOCITY",
           "DYNAMIC_VELOCITY", "EXPAND_LIMIT_S", "EXPAND_MAX_RATIO", "ScoreConfig", "convert",
           "convert_item", "humanize", "parse_item", "read_score"]
