"""Excerpts, overlaps, the classifier test and compare(), on real MIDI files written to tmp_path."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from melodia import cli
from melodia.errors import MelodiaError
from melodia.evaluate import STAT_NAMES, compare
from melodia.evaluate import distributions as dist
from melodia.evaluate import excerpt_stats, file_excerpts
from melodia.evaluate.music import MusicEvalConfig, cut_excerpts
from melodia.midi import Score, Track, make_notes, read_midi, write_midi

SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def scale_notes(seconds: float, step_s: float = 0.25, start_s: float = 0.0) -> np.ndarray:
    n = int(round(seconds / step_s))
    t = start_s + step_s * np.arange(n)
    return make_notes(t, t + step_s, [SCALE[i % 8] for i in range(n)], [80] * n)


def piece(rng: np.random.Generator, style: str, seconds: float = 30.0) -> Score:
    """Random music of one of two styles: 'calm' (diatonic, mid register, soft, slow) or
    'wild' (chromatic, wide register, loud, fast, long notes)."""
    if style == "calm":
        gaps, pitches = rng.uniform(0.3, 0.6, 200), rng.choice([60, 62, 64, 65, 67, 69, 71], 200)
        lengths, velocity = rng.uniform(0.2, 0.5, 200), rng.integers(40, 60, 200)
    else:
        gaps, pitches = rng.uniform(0.02, 0.1, 600), rng.integers(30, 100, 600)
        lengths, velocity = rng.uniform(0.5, 3.0, 600), rng.integers(90, 127, 600)
    start = np.cumsum(gaps) - gaps[0]
    keep = start < seconds - 0.5
    end = np.minimum(start + lengths, seconds)
    return Score(tracks=[Track(notes=make_notes(start[keep], end[keep], pitches[keep],
                                                velocity[keep]))])


def write_folder(folder: Path, style: str, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(count):
        write_midi(piece(rng, style), folder / f"{style}_{i}.mid")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("music")
    return {"calm": write_folder(root / "calm", "calm", 16, 0),
            "calm2": write_folder(root / "calm2", "calm", 16, 1),
            "wild": write_folder(root / "wild", "wild", 16, 2)}


# ------------------------------------------------------------------------------- excerpts


@pytest.mark.parametrize("seconds, count", [(30.0, 1), (29.0, 1), (14.0, 0), (70.0, 2),
                                            (80.0, 3)])
def test_excerpts_drop_a_final_piece_under_half(seconds, count):
    assert len(cut_excerpts(scale_notes(seconds), 30.0)) == count


def test_excerpts_start_at_the_first_onset_and_keep_times_relative():
    parts = cut_excerpts(scale_notes(80.0, start_s=2.0), 30.0, max_excerpts=2, source="x")
    assert [p.start_s for p in parts] == [2.0, 32.0]
    assert [p.duration_s for p in parts] == [30.0, 30.0]
    assert parts[1].notes["start_s"].min() == 0.0 and parts[1].notes["start_s"].max() < 30.0
    assert len(parts[0].notes) == 120 and parts[0].source == "x"


def test_file_excerpts_round_trip_a_written_file(tmp_path):
    path = write_midi(Score(tracks=[Track(notes=scale_notes(65.0))]), tmp_path / "scale.mid")
    parts = file_excerpts(path)
    assert len(parts) == 2 and all(len(p.notes) == 120 for p in parts)
    assert len(file_excerpts(path, excerpt_s=10.0, max_excerpts=3)) == 3


# ----------------------------------------------------------------------------- statistics


def test_excerpt_stats_of_a_repeated_c_major_scale(tmp_path):
    path = write_midi(Score(tracks=[Track(notes=scale_notes(30.0))]), tmp_path / "s.mid")
    (excerpt,) = file_excerpts(path)
    s = excerpt_stats(excerpt)
    assert list(s) == list(STAT_NAMES)
    assert s["note_density"] == pytest.approx(4.0)
    assert s["polyphony"] == pytest.approx(1.0) and s["semitone_clash"] == 0.0
    assert s["pitch_range"] == 12 and s["ioi_median"] == pytest.approx(0.25)
    assert s["length_median"] == pytest.approx(0.25)
    assert s["key_correlation"] > 0.8 and s["key_stability"] == 1.0
    assert s["key_changes_per_min"] == 0.0
    assert s["melodic_repetition"] > 0.95 and s["chord_repetition"] > 0.95
    assert s["velocity_std"] == 0.0


def test_excerpt_stats_of_a_chromatic_cluster():
    t = np.repeat(np.arange(0.0, 10.0, 1.0), 12)
    notes = make_notes(t, t + 1.0, np.tile(np.arange(60, 72), 10), [64] * 120)
    s = excerpt_stats(Score(tracks=[Track(notes=notes)]))
    assert s["pitch_class_entropy"] == pytest.approx(math.log2(12))
    assert s["semitone_clash"] == 1.0 and s["polyphony"] == pytest.approx(12.0)
    assert s["note_density"] == pytest.approx(12.0)


def test_drum_tracks_are_left_out():
    drums = Track(notes=make_notes([0.0, 0.5], [0.1, 0.6], [36, 38], [100, 100]), is_drum=True)
    score = Score(tracks=[Track(notes=scale_notes(8.0)), drums])
    assert excerpt_stats(score)["pitch_range"] == 12


# ---------------------------------------------------------------------------- comparisons


def test_kde_overlap_identical_disjoint_and_constant():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 200)
    assert dist.kde_overlap(a, a) == pytest.approx(1.0, abs=1e-6)
    assert dist.kde_overlap(a, a + 100) < 0.01
    assert 0.5 < dist.kde_overlap(a, rng.normal(0.5, 1, 200)) < 0.95
    assert dist.kde_overlap(np.zeros(10), np.zeros(12)) == pytest.approx(1.0, abs=1e-3)
    assert dist.kde_overlap(np.zeros(10), np.ones(12)) < 1e-3
    assert 0.0 <= dist.kde_overlap(np.zeros(10), a) < 0.2  # a spike against a spread
    assert math.isnan(dist.kde_overlap(np.full(3, np.nan), a))


def test_histogram_intersection():
    assert dist.histogram_intersection([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert dist.histogram_intersection([1, 0], [0, 5]) == 0.0
    assert dist.histogram_intersection([1, 1], [1, 0]) == pytest.approx(0.5)


def test_classifier_chance_for_one_set_and_certainty_for_two():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (60, 5))
    acc, _ = dist.classifier_accuracy(a, a.copy(), seed=0)
    assert 0.3 <= acc <= 0.7
    acc, _ = dist.classifier_accuracy(a, rng.normal(5, 1, (90, 5)), seed=0)  # unbalanced sizes
    assert acc == 1.0
    b = a.copy()
    b[:, 2] = np.nan  # a column with no value at all, and a constant one
    b[:, 3] = 1.0
    assert dist.classifier_accuracy(b, b + 0.0)[0] <= 0.7


def test_missing_extra_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MelodiaError, match=r"pip install 'melodia\[eval\]'"):
        dist.require_eval_extra()


def test_compare_identical_folders(folders):
    report = compare(folders["calm"], folders["calm"])
    assert report.generated_excerpts == report.reference_excerpts == 16
    assert all(s.overlap > 0.99 for s in report.stats if math.isfinite(s.overlap))
    assert all(v == pytest.approx(1.0) for v in report.histograms.values())
    assert 0.25 <= report.classifier_accuracy <= 0.75


def test_compare_similar_and_different_folders(folders):
    same_style = compare(folders["calm"], folders["calm2"], workers=2)
    different = compare(folders["calm"], folders["wild"])
    assert different.classifier_accuracy == 1.0
    assert different.mean_overlap < 0.3 < same_style.mean_overlap
    text = different.table()
    assert "classifier accuracy" in text and "velocity_mean" in text
    json.dumps(different.to_dict(), allow_nan=False)


def test_compare_lists_of_files_and_config(folders):
    files = sorted(folders["calm"].glob("*.mid"))
    config = MusicEvalConfig(excerpt_s=10.0, max_excerpts=2, seed=3)
    report = compare(files[:4], files[4:8], config=config)
    assert report.generated_excerpts == report.reference_excerpts == 8
    assert report.to_dict()["config"]["excerpt_s"] == 10.0


def test_unreadable_files_are_skipped(folders, tmp_path):
    (tmp_path / "broken.mid").write_bytes(b"not midi")
    write_midi(piece(np.random.default_rng(5), "calm"), tmp_path / "ok.mid")
    report = compare(tmp_path, folders["calm"])
    assert report.generated_excerpts == 1 and len(report.skipped) == 1


def test_empty_folder_is_an_error(tmp_path, folders):
    with pytest.raises(MelodiaError, match="no MIDI files"):
        compare(tmp_path, folders["calm"])


# -------------------------------------------------------------------------------------- CLI


def test_cli_json(folders, capsys):
    argv = ["evaluate", "--generated", str(folders["calm"]), "--reference", str(folders["wild"]),
            "--json", "--quiet", "--workers", "1"]
    assert cli.main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["classifier_accuracy"] == 1.0
    assert [s["name"] for s in payload["stats"]] == list(STAT_NAMES)
    assert len(payload["values"]["generated"]["note_density"]) == 16


def test_cli_plot(folders, tmp_path, capsys):
    out = tmp_path / "stats.png"
    argv = ["evaluate", "--generated", str(folders["calm"]), "--reference", str(folders["calm2"]),
            "--plot", str(out), "--excerpt-seconds", "15", "--quiet"]
    assert cli.main(argv) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mean KDE overlap" in capsys.readouterr().out


def test_cli_needs_one_form(folders, capsys):
    assert cli.main(["evaluate"]) == 2
    assert "--generated DIR --reference DIR" in capsys.readouterr().err
    assert cli.main(["evaluate", "--generated", str(folders["calm"])]) == 2
    assert cli.main(["evaluate", "m.pt", "data", "--generated", "x", "--reference", "y"]) == 2
    assert "not both" in capsys.readouterr().err


def test_written_pieces_read_back(folders):
    assert read_midi(next(folders["wild"].glob("*.mid"))).note_count > 200
