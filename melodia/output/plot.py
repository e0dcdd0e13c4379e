"""Piano-roll pictures of a score: time in seconds across, pitch up, one colour per track.

Velocity sets each note's opacity and the sustain pedal (CC64 >= 64) is drawn as bands in a strip
under the roll. matplotlib is optional (``pip install 'melodia[plot]'``) and is used through its
object API with the Agg renderer, so no display is ever needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from melodia.errors import MelodiaError
from melodia.midi import Score, Track, load_score
from melodia.util.atomic import atomic_write
from melodia.util.knobs import check

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_BLACK_KEYS = {1, 3, 6, 8, 10}
_MIN_NOTE_PX = 1.5  # the narrowest a note is drawn, in pixels, so drum hits stay visible
_MIN_SPAN = 24  # semitones shown at least, so a single note is not stretched to fill the plot


class PlotError(MelodiaError):
    """A piano roll cannot be drawn (matplotlib missing, unsupported output format)."""


def pitch_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI note number: 60 -> ``"C4"``, 69 -> ``"A4"``."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def track_label(track: Track) -> str:
    """``"Drums"`` or the General MIDI program name, plus the track's own name when it has one."""
    if track.is_drum:
        base = "Drums"
    else:
        import pretty_midi

        base = pretty_midi.program_to_instrument_name(track.program)
    name = track.name.strip()
    return f"{base} ({name})" if name and name.lower() != base.lower() else base


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("drawing piano rolls needs matplotlib: "
                        "pip install 'melodia[plot]'") from None
    return matplotlib, Figure


def track_colors(matplotlib, n: int) -> list:
    """``n`` distinct saturated colours: tab10 without its grey, then tab20's lighter shades."""
    tab10, tab20 = matplotlib.colormaps["tab10"].colors, matplotlib.colormaps["tab20"].colors
    palette = [c for i, c in enumerate(tab10) if i != 7]
    palette += [c for i, c in enumerate(tab20) if i % 2 and i != 15]
    return [palette[i % len(palette)] for i in range(n)]


def _pitch_range(score: Score) -> tuple[int, int]:
    pitches = np.concatenate([t.notes["pitch"] for t in score.tracks] + [np.empty(0, np.int16)])
    lo, hi = (int(pitches.min()), int(pitches.max())) if len(pitches) else (60, 60)
    pad = max(0, _MIN_SPAN - (hi - lo)) // 2
    return max(0, lo - 1 - pad), min(127, hi + 1 + pad)


def _draw_keyboard(ax, lo: int, hi: int) -> None:
    """Shade black-key rows, rule each octave at C and label the pitch axis."""
    for p in range(lo, hi + 1):
        if p % 12 in _BLACK_KEYS:
            ax.axhspan(p - 0.5, p + 0.5, color="#f0f0f0", linewidth=0, zorder=0)
    for c in (p for p in range(lo, hi + 1) if p % 12 == 0):
        ax.axhline(c - 0.5, color="#c8c8c8", linewidth=0.6, zorder=0)
    span = hi - lo
    step = [0, 2, 4, 5, 7, 9, 11] if span <= 36 else [0, 4, 7] if span <= 60 else [0]
    ticks = [p for p in range(lo, hi + 1) if p % 12 in step]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks])
    ax.set_ylim(lo - 0.5, hi + 0.5)
    ax.set_ylabel("pitch")


def _draw_notes(ax, track: Track, color, min_width_s: float) -> None:
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    n = track.notes
    x0 = n["start_s"]
    x1 = np.maximum(n["end_s"], x0 + min_width_s)
    y0, y1 = n["pitch"] - 0.42, n["pitch"] + 0.42
    verts = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1),
                      np.stack([x1, y1], 1), np.stack([x0, y1], 1)], axis=1)
    colors = np.tile(to_rgba(color), (len(n), 1))
    colors[:, 3] = 0.25 + 0.75 * n["velocity"] / 127.0  # velocity as opacity
    ax.add_collection(PolyCollection(verts, facecolors=colors, linewidths=0, zorder=2))


def pedal_spans(track: Track, end_s: float) -> list[tuple[float, float]]:
    """Intervals ``(start_s, end_s)`` during which the sustain pedal is down (value >= 64)."""
    spans, down_at = [], None
    for time_s, value in track.pedal:
        if value >= 64 and down_at is None:
            down_at = float(time_s)
        elif value < 64 and down_at is not None:
            spans.append((down_at, float(time_s)))
            down_at = None
    if down_at is not None:
        spans.append((down_at, end_s))
    return spans


def _draw_pedal(ax, score: Score, colors: list, end_s: float) -> None:
    pedalled = [i for i, t in enumerate(score.tracks) if len(t.pedal)]
    for row, i in enumerate(pedalled):
        spans = pedal_spans(score.tracks[i], end_s)
        ax.broken_barh([(a, b - a) for a, b in spans], (row + 0.1, 0.8), color=colors[i],
                       alpha=0.45, linewidth=0)
    ax.set_ylim(0, max(1, len(pedalled)))
    ax.set_yticks([])
    ax.set_ylabel("pedal", rotation=0, ha="right", va="center")


def piano_roll_figure(midi, *, width_px: int = 1600, height_px: int = 900, dpi: int = 100,
                      title: str | None = None):
    """Draw a piano roll and return the ``matplotlib.figure.Figure`` (not attached to pyplot).

    Parameters are those of :func:`plot_piano_roll`, without ``out``.
    """
    width_px = check("width", width_px, "width_px", PlotError)  # before matplotlib spends memory
    height_px, dpi = check("height", height_px, "height_px", PlotError), check("dpi", dpi, None,
                                                                                 PlotError)
    matplotlib, Figure = _matplotlib()
    score = load_score(midi)
    if title is None and isinstance(midi, (str, Path)):
        title = Path(midi).name
    end_s = max(score.end_s, max((float(t.pedal["time_s"].max(initial=0)) for t in score.tracks),
                                 default=0.0), 1.0)
    has_pedal = any(len(t.pedal) for t in score.tracks)
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    if has_pedal:
        ax, pedal_ax = fig.subplots(2, 1, sharex=True, height_ratios=[14, 1])
    else:
        ax, pedal_ax = fig.subplots(1, 1), None
    lo, hi = _pitch_range(score)
    _draw_keyboard(ax, lo, hi)
    colors = track_colors(matplotlib, len(score.tracks))
    min_width_s = _MIN_NOTE_PX * end_s / width_px
    from matplotlib.patches import Patch

    handles = []
    for track, color in zip(score.tracks, colors):
        if len(track.notes):
            _draw_notes(ax, track, color, min_width_s)
            handles.append(Patch(color=color, label=f"{track_label(track)}: {len(track.notes)}"))
    if pedal_ax is not None:
        _draw_pedal(pedal_ax, score, colors, end_s)
    (pedal_ax or ax).set_xlabel("time (s)")
    ax.set_xlim(0, end_s * 1.005)
    ax.grid(axis="x", color="#d8d8d8", linewidth=0.6)
    ax.set_axisbelow(True)
    if handles:
        fig.legend(handles=handles, loc="outside right upper", title="track: notes",
                   fontsize="small", title_fontsize="small", frameon=False)
    else:
        ax.text(0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", color="grey")
    if title:
        ax.set_title(title)
    return fig


def plot_piano_roll(midi, out: str | Path, *, width_px: int = 1600, height_px: int = 900,
                    dpi: int = 100, title: str | None = None) -> Path:
    """Save a piano roll of ``midi`` as an image of exactly ``width_px`` x ``height_px`` pixels.

    Parameters
    ----------
    midi : Score, path, bytes or PrettyMIDI
        Anything :func:`melodia.midi.load_score` accepts.
    out : path
        Image to write; the suffix picks the format (``.png``, ``.svg``, ``.pdf``, ``.jpg``...).
    width_px, height_px : int
        Size of the image in pixels (default 1600 x 900; for vector formats, at ``dpi``).
    dpi : int
        Dots per inch: font sizes are in points, so a higher dpi makes the text larger.
    title : str, optional
        Title above the roll; default the file name when ``midi`` is a path, else none.

    Returns
    -------
    pathlib.Path
        ``out``.

    Notes
    -----
    Time runs along x in seconds, pitch along y with C of each octave named (also E and G when
    the range fits five octaves, every white key when it fits three). Each track has its own colour, listed in the legend with its
    General MIDI program name (or "Drums") and note count; a note's opacity follows its velocity.
    A strip under the roll shades where each track holds the sustain pedal down.
    """
    out = Path(out)
    fig = piano_roll_figure(midi, width_px=width_px, height_px=height_px, dpi=dpi, title=title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise PlotError(f"cannot write {out}: a file is in the way of its folder") from None
    try:
        fig.savefig(out, dpi=dpi)
    except ValueError as err:  # matplotlib's message for an unknown suffix
        raise PlotError(f"cannot write {out}: {err}") from None
    return out


# ------------------------------------------------------------------- statistic distributions


def _overlaid_histograms(ax, a: np.ndarray, b: np.ndarray, labels: tuple[str, str]) -> None:
    """Density histograms of two samples on shared bins (nan dropped)."""
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    pooled = np.concatenate([a, b])
    if not len(pooled):
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        return
    lo, hi = float(pooled.min()), float(pooled.max())
    bins = np.linspace(lo, hi, 26) if hi > lo else np.array([lo - 0.5, lo + 0.5])
    for values, label, color in ((a, labels[0], "tab:orange"), (b, labels[1], "tab:blue")):
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.45, color=color, label=label)


def plot_distributions(generated: dict[str, Sequence[float]],
                       reference: dict[str, Sequence[float]], out: str | Path, *,
                       overlaps: dict[str, float] | None = None,
                       labels: tuple[str, str] = ("generated", "reference"),
                       columns: int = 4, dpi: int = 100) -> Path:
    """Save a grid of overlaid histograms, one panel per statistic, written atomically.

    Parameters
    ----------
    generated, reference : dict
        Statistic name -> per-excerpt values (nan values are left out); panels follow the order
        of ``generated``.
    out : path
        Image to write; the suffix picks the format (``.png``, ``.svg``, ``.pdf``).
    overlaps : dict, optional
        Statistic name -> KDE overlap, shown in each panel's title.
    labels : (str, str)
        Legend names of the two sets.
    columns : int
        Panels per row (default 4).

    Returns
    -------
    pathlib.Path
        ``out``.
    """

    _, Figure = _matplotlib()
    names = list(generated)
    rows = max(1, -(-len(names) // columns))
    dpi = check("dpi", dpi, None, PlotError)
    fig = Figure(figsize=(3.2 * columns, 2.4 * rows), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        _overlaid_histograms(ax, np.asarray(generated[name], float),
                             np.asarray(reference.get(name, []), float), labels)
        title = name if overlaps is None else f"{name} (overlap {overlaps.get(name, np.nan):.2f})"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in axes[len(names):]:
        ax.set_visible(False)
    if names:
        axes[0].legend(fontsize=7)
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    try:
        atomic_write(out, lambda f: fig.savefig(f, format=fmt, dpi=dpi))
    except ValueError as err:  # matplotlib's message for an unknown format
        raise PlotError(f"cannot write {out}: {err}") from None
    return out
