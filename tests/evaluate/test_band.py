"""Band music by instrument group, on band MIDI files written to tmp_path and read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melodia import cli
from melodia.evaluate.band import (BAND_STAT_NAMES, DRUM_STAT_NAMES, BandEvalConfig,
                                   compare_by_group, measure_band_file, split_groups)
from melodia.midi import read_midi, write_midi
from tests.evaluate.band_music import band_score, write_band_folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("band")
    return {"tight": write_band_folder(root / "tight", 6, 0),
            "tight2": write_band_folder(root / "tight2", 6, 1, keys=True),
            "loose": write_band_folder(root / "loose", 6, 2, drum_offset_s=0.05)}


def test_split_groups_of_a_file_read_back(tmp_path):
    path = write_midi(band_score(np.random.default_rng(0), keys=True), tmp_path / "b.mid")
    groups = split_groups(read_midi(path))
    assert list(groups) == ["all", "drums", "bass", "guitar", "keys"]
    assert len(groups["all"]) == sum(len(groups[g]) for g in ("bass", "guitar", "keys"))
    assert set(np.unique(groups["drums"]["pitch"])) == {36, 38, 42}
    assert set(np.unique(groups["bass"]["pitch"])) <= {40, 43, 45, 47}


def test_measure_band_file_shares_excerpts_and_names_drum_statistics(tmp_path):
    path = write_midi(band_score(np.random.default_rng(0), seconds=30.0), tmp_path / "b.mid")
    m = measure_band_file(path, BandEvalConfig(excerpt_s=10.0))
    assert m.error is None and m.windows == 3
    assert m.groups["drums"].values.shape == (3, len(DRUM_STAT_NAMES))
    assert m.groups["bass"].values.shape == (3, len(BAND_STAT_NAMES))
    assert "key_correlation" not in DRUM_STAT_NAMES and "grid16" in DRUM_STAT_NAMES
    assert m.groups["drums"].starts_s == m.groups["guitar"].starts_s == [0.0, 10.0, 20.0]
    density = m.groups["drums"].values[:, DRUM_STAT_NAMES.index("note_density")]
    assert density == pytest.approx([6.0, 6.0, 6.0], abs=0.1)  # 2 beats/s: 4 hats, 2 kick/snare


@pytest.mark.parametrize("offset_s, qpm, expected", [(0.0, 120.0, 1.0), (0.05, 120.0, 0.0),
                                                     (0.0, 93.0, 1.0), (0.01, 170.0, 1.0)])
def test_grid16_of_drums_written_and_read_back(tmp_path, offset_s, qpm, expected):
    score = band_score(np.random.default_rng(0), qpm=qpm, drum_offset_s=offset_s)
    m = measure_band_file(write_midi(score, tmp_path / "d.mid"), BandEvalConfig(excerpt_s=10.0))
    grid = m.groups["drums"].values[:, DRUM_STAT_NAMES.index("grid16")]
    assert grid == pytest.approx(np.full(len(grid), expected))


def test_band_config_needs_the_band_encoding():
    with pytest.raises(ValueError, match="band encoding"):
        BandEvalConfig(encoding="piano")


def test_compare_by_group_tells_loose_drums_from_tight_ones(folders):
    report = compare_by_group(folders["loose"], folders["tight"], excerpt_s=10.0)
    drums = report["drums"]
    by_name = {s.name: s for s in drums.stats}
    assert by_name["grid16"].generated_mean == 0.0 and by_name["grid16"].reference_mean == 1.0
    assert drums.classifier_accuracy >= 0.9
    assert report["bass"].classifier_accuracy <= 0.75  # the same bass lines on both sides
    assert set(report.reports) == {"all", "drums", "bass", "guitar"}


def test_evaluate_by_instrument_through_the_cli(folders, capsys):
    argv = ["evaluate", "--generated", str(folders["tight2"]), "--reference",
            str(folders["tight"]), "--by-instrument", "--excerpt-seconds", "10", "--workers",
            "1", "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for group in ("all", "drums", "bass", "guitar"):
        assert f"\n{group} " in out and f"[{group}]" in out
    assert "skipped keys: 12 generated and 0 reference excerpts" in out
    assert "grid16" in out
    assert cli.main(argv + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["groups"]) == {"all", "drums", "bass", "guitar"}
    assert "keys" in data["skipped_groups"]
    drum_stats = [s["name"] for s in data["groups"]["drums"]["stats"]]
    assert drum_stats == list(DRUM_STAT_NAMES)


def test_evaluate_by_instrument_refuses_the_piano_encoding(folders, capsys):
    assert cli.main(["evaluate", "--generated", str(folders["tight"]), "--reference",
                     str(folders["tight"]), "--by-instrument", "--encoding", "piano"]) == 2
    assert "band encoding" in capsys.readouterr().err
