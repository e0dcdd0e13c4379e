"""The style classifier on two clearly different synthetic styles, written as MIDI and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from melodia import cli
from melodia.errors import MelodiaError
from melodia.evaluate.styles import style_accuracy, style_folders
from tests.evaluate.band_music import STYLES, write_band_folder


@pytest.fixture(scope="module")
def styled(tmp_path_factory) -> dict[str, Path]:
    """real/<style>: 6 pieces each; generated/<style>: 3 new pieces each; mislabelled/slow:
    fast pieces filed under slow."""
    root = tmp_path_factory.mktemp("styles")
    for seed, style in enumerate(STYLES):
        write_band_folder(root / "real" / style, 6, seed, **STYLES[style])
        write_band_folder(root / "generated" / style, 3, 10 + seed, **STYLES[style])
    write_band_folder(root / "mislabelled" / "slow", 3, 20, **STYLES["fast"])
    return {"real": root / "real", "generated": root / "generated",
            "mislabelled": root / "mislabelled"}


def test_style_folders_reads_the_layout(styled):
    folders = style_folders(styled["real"])
    assert list(folders) == ["fast", "slow"] and all(len(f) == 6 for f in folders.values())


def test_style_accuracy_separates_slow_sparse_from_fast_dense(styled):
    result = style_accuracy(styled["real"], styled["generated"], excerpt_seconds=10.0)
    assert result["styles"] == ["fast", "slow"] and result["real_files"] == {"fast": 6, "slow": 6}
    assert result["real_accuracy"] >= 0.9 and result["chance"] == 0.5
    assert result["generated_accuracy"] == 1.0
    assert result["per_style"]["slow"] == {"files": 3, "accuracy": 1.0,
                                           "assigned": {"fast": 0, "slow": 3}}
    assert "drums.grid16" in result["features"]


def test_pieces_of_the_wrong_style_are_not_assigned_the_asked_one(styled):
    real = style_folders(styled["real"])
    result = style_accuracy(real, {"slow": [styled["mislabelled"] / "slow"]},
                            excerpt_seconds=10.0)
    assert result["per_style"]["slow"]["accuracy"] == 0.0
    assert result["per_style"]["slow"]["assigned"] == {"fast": 3, "slow": 0}
    assert result["generated_accuracy"] == 0.0


def test_unknown_generated_style_is_an_error(styled):
    with pytest.raises(MelodiaError, match="not among the real ones"):
        style_accuracy(styled["real"], {"jazz": [styled["generated"] / "slow"]})


def test_evaluate_styles_through_the_cli(styled, capsys):
    assert cli.main(["evaluate", "--styles", str(styled["real"]), "--generated",
                     str(styled["generated"]), "--excerpt-seconds", "10", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "cross-validated by file: 100.0% of files" in out
    assert "overall" in out and "100.0%" in out.split("overall")[1]
