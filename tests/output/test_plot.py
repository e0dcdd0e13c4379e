"""Piano-roll pictures: real PNGs drawn from MIDI written here, checked pixel by pixel."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread  # noqa: E402

from melodia.cli import main
from melodia.midi import PEDAL_DTYPE, Score, Track, make_notes, write_midi
from melodia.output.plot import (PlotError, pedal_spans, piano_roll_figure, pitch_name,
                                 plot_piano_roll, track_label)

DATA = Path(__file__).resolve().parents[2] / "data"


def _score() -> Score:
    """A piano melody with pedal, a violin line and a drum track over 10 s."""
    piano = Track(make_notes([0.0, 2.0, 4.0], [1.5, 3.5, 9.0], [48, 60, 72], [127, 30, 90]),
                  pedal=np.array([(0.0, 127), (3.0, 0), (5.0, 100)], dtype=PEDAL_DTYPE))
    violin = Track(make_notes([1.0, 6.0], [5.0, 9.5], [76, 79], [100, 100]), program=40)
    drums = Track(make_notes(np.arange(0, 10, 0.5), np.arange(0, 10, 0.5) + 0.05,
                             [36, 42] * 10, [100] * 20), is_drum=True)
    return Score(tracks=[piano, violin, drums])


def _saturation(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].max(axis=-1) - rgb[..., :3].min(axis=-1)


def _pixel(image: np.ndarray, ax, time_s: float, pitch: float) -> np.ndarray:
    """The RGB of the image at data point (time_s, pitch) of axes ``ax``."""
    x, y = ax.transData.transform((time_s, pitch))
    return image[image.shape[0] - 1 - int(round(y)), int(round(x)), :3]


def test_png_has_size_and_colours_where_notes_are(tmp_path):
    score = _score()
    fig = piano_roll_figure(score, width_px=1200, height_px=700)
    out = tmp_path / "roll.png"
    fig.savefig(out, dpi=fig.dpi)
    image = imread(out)
    assert image.shape[:2] == (700, 1200)
    ax = fig.axes[0]
    loud, soft = _pixel(image, ax, 0.75, 48), _pixel(image, ax, 2.75, 60)
    violin = _pixel(image, ax, 3.0, 76)
    assert _saturation(loud) > 0.3 and _saturation(violin) > 0.3  # coloured, not grey
    assert not np.allclose(loud, violin, atol=0.1)  # one colour per track
    assert loud.sum() < soft.sum()  # velocity 127 drawn more opaque (darker) than 30
    assert _saturation(_pixel(image, ax, 8.0, 55)) < 0.05  # no note there: grey/white


def test_plot_piano_roll_writes_exact_size(tmp_path):
    path = write_midi(_score(), tmp_path / "song.mid")
    out = plot_piano_roll(path, tmp_path / "roll.png", width_px=900, height_px=500)
    assert out == tmp_path / "roll.png"
    assert imread(out).shape[:2] == (500, 900)


def test_pedal_strip_only_when_pedal(tmp_path):
    assert len(piano_roll_figure(_score()).axes) == 2
    no_pedal = Score(tracks=[Track(make_notes([0.0], [1.0], [60], [90]))])
    assert len(piano_roll_figure(no_pedal).axes) == 1


def test_five_minutes_stay_readable(tmp_path):
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 300, 3000))
    notes = make_notes(starts, starts + 0.1, rng.integers(21, 109, 3000),
                       rng.integers(20, 128, 3000))
    out = plot_piano_roll(Score(tracks=[Track(notes)]), tmp_path / "long.png")
    image = imread(out)
    assert image.shape[:2] == (900, 1600)
    assert (_saturation(image) > 0.3).sum() > 3000  # short notes still cover pixels


def test_real_file_from_data(tmp_path):
    files = sorted(DATA.rglob("*.mid"), key=lambda p: ("freedoom" not in str(p), str(p)))
    assert files, "data/ holds no MIDI files"
    image = imread(plot_piano_roll(files[0], tmp_path / "real.png"))
    assert (_saturation(image) > 0.3).sum() > 1000


def test_labels_and_pedal_spans():
    assert [pitch_name(p) for p in (21, 60, 61, 69, 108)] == ["A0", "C4", "C#4", "A4", "C8"]
    assert track_label(Track(is_drum=True)) == "Drums"
    assert track_label(Track(program=40)) == "Violin"
    assert track_label(Track(program=0, name="Left hand")) == "Acoustic Grand Piano (Left hand)"
    assert pedal_spans(_score().tracks[0], 10.0) == [(0.0, 3.0), (5.0, 10.0)]


def test_bad_requests_are_plot_errors(tmp_path):
    with pytest.raises(PlotError, match="width_px must be a whole number from 200 to 20000"):
        plot_piano_roll(_score(), tmp_path / "tiny.png", width_px=10, height_px=10)
    with pytest.raises(PlotError, match="width_px must be .* not 1000000"):  # 3.6 GB, refused
        plot_piano_roll(_score(), tmp_path / "wide.png", width_px=1_000_000)
    with pytest.raises(PlotError, match="dpi must be a whole number from 10"):
        plot_piano_roll(_score(), tmp_path / "roll.png", dpi=0)
    with pytest.raises(PlotError, match="cannot write"):
        plot_piano_roll(_score(), tmp_path / "roll.xyz")


def test_cli_plot(tmp_path):
    path = write_midi(_score(), tmp_path / "song.mid")
    assert main(["plot", str(path), "-o", str(tmp_path / "r.png"), "--width", "800"]) == 0
    assert imread(tmp_path / "r.png").shape[:2] == (900, 800)
    assert main(["plot", str(path)]) == 0  # default: song.png next to the input
    assert (tmp_path / "song.png").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", "--help"])
    assert exit_info.value.code == 0
