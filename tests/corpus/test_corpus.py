import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from melodia.corpus.preparation import PrepareConfig, prepare
from melodia.corpus.scores import ScoreConfig
from melodia.corpus.shards import MANIFEST, TokenDataset
from melodia.corpus.sources import find_midi_files, hash_split
from melodia.encoding import get_encoding
from melodia.errors import DatasetError
from melodia.midi import read_midi
from tests.conftest import DATA, MALFORMED


@pytest.fixture
def corpus(tmp_path):
    """A small real corpus: 12 chorales and 4 Freedoom tracks plus every malformed file."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for path in sorted((DATA / "chorales").glob("*.mid"))[:12]:
        shutil.copy(path, src / path.name)
    for path in sorted((DATA / "freedoom").glob("*.mid"))[:4]:
        shutil.copy(path, src / "sub" / path.name)
    for path in MALFORMED.glob("*.mid"):
        shutil.copy(path, src / "sub" / f"bad_{path.name}")
    return src


def test_prepare_encodes_in_parallel_and_reports_corrupt_files(corpus, tmp_path):
    out = tmp_path / "ds"
    enc = get_encoding("piano")
    report = prepare([corpus], out, enc, PrepareConfig(workers=2), progress=False)
    assert report.encoded == 17  # bad_control_byte.mid is read with its data bytes clipped
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in report.skipped}
    assert set(reasons) == {f"bad_{p.name}" for p in MALFORMED.glob("*.mid")
                            if p.name != "bad_control_byte.mid"}
    assert "truncated" in reasons["bad_truncated.mid"]
    assert reasons["bad_empty.mid"] == "no notes to encode"

    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["encoding"] == enc.to_dict()
    assert len(manifest["skipped"]) == 4
    dataset = TokenDataset(out)
    for record in dataset.files():
        ids = dataset.ids(record)
        assert isinstance(ids, np.memmap) and ids.dtype == np.uint16
        np.testing.assert_array_equal(ids, enc.encode_file(record["path"]))
        assert record["duration_s"] > 0 and record["notes"] > 0
        assert record["split"] in ("train", "validation", "test")


def test_rerun_encodes_only_new_files(corpus, tmp_path):
    out = tmp_path / "ds"
    prepare([corpus], out, config=PrepareConfig(workers=1), progress=False)
    first = (out / MANIFEST).read_text()
    again = prepare([corpus], out, config=PrepareConfig(workers=1), progress=False)
    assert again.encoded == 0 and again.already == 17
    assert json.loads((out / MANIFEST).read_text())["files"] == json.loads(first)["files"]
    extra = sorted((DATA / "chorales").glob("*.mid"))[20]
    shutil.copy(extra, corpus / extra.name)
    more = prepare([corpus], out, config=PrepareConfig(workers=1), progress=False)
    assert more.encoded == 1 and more.already == 17
    assert len(TokenDataset(out).files()) == 18


def test_small_shards_split_files_across_several(corpus, tmp_path):
    out = tmp_path / "ds"
    prepare([corpus], out, config=PrepareConfig(workers=1, shard_events=5000), progress=False)
    dataset = TokenDataset(out)
    assert len(dataset.manifest["shards"]) > 2
    record = dataset.files()[-1]
    np.testing.assert_array_equal(dataset.ids(record),
                                  dataset.encoding.encode(read_midi(record["path"])))


def test_other_encoding_in_same_folder_is_refused(corpus, tmp_path):
    out = tmp_path / "ds"
    prepare([corpus], out, get_encoding("piano"), PrepareConfig(workers=1), progress=False)
    with pytest.raises(DatasetError, match="encoding"):
        prepare([corpus], out, get_encoding("band"), PrepareConfig(workers=1), progress=False)


def test_maestro_metadata_split(tmp_path):
    src = tmp_path / "maestro-v3.0.0"
    (src / "2004").mkdir(parents=True)
    names = sorted((DATA / "chorales").glob("*.mid"))[:3]
    rows = []
    for path, split in zip(names, ["train", "validation", "test"]):
        shutil.copy(path, src / "2004" / path.name)
        rows.append({"canonical_composer": "Bach", "split": split,
                     "midi_filename": f"2004/{path.name}"})
    with open(src / "maestro-v3.0.0.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    prepare([src], tmp_path / "ds", config=PrepareConfig(workers=1), progress=False)
    dataset = TokenDataset(tmp_path / "ds")
    assert {f["path"].rsplit("/", 1)[-1]: f["split"] for f in dataset.files()} == \
        {p.name: s for p, s in zip(names, ["train", "validation", "test"])}
    assert len(dataset.sequences("validation")) == 1


def test_maestro_v3_layout_keeps_its_split(tmp_path):
    """The MAESTRO v3 zip's layout: year folders of .midi files beside maestro-v3.0.0.csv (its
    real columns) and the same table as .json; `prepare` on the folder keeps that split."""
    src = tmp_path / "maestro-v3.0.0"
    files = sorted((DATA / "chorales").glob("*.mid"))[:5]
    splits = ["train", "train", "validation", "test", "train"]
    rows = []
    for i, (path, split) in enumerate(zip(files, splits)):
        year = str(2004 + i % 2)
        name = f"MIDI-Unprocessed_{i:02d}_R1_{year}_01-03_ORIG_MID--AUDIO_{i:02d}_R1_{year}_wav.midi"
        (src / year).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, src / year / name)
        rows.append({"canonical_composer": "Johann Sebastian Bach",
                     "canonical_title": f"Chorale {i}", "split": split, "year": year,
                     "midi_filename": f"{year}/{name}",
                     "audio_filename": f"{year}/{name[:-5]}.wav", "duration": "61.2"})
    with open(src / "maestro-v3.0.0.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (src / "maestro-v3.0.0.json").write_text(json.dumps(
        {key: {str(i): row[key] for i, row in enumerate(rows)} for key in rows[0]}))
    (src / "LICENSE").write_text("CC BY-NC-SA 4.0\n")
    report = prepare([src], tmp_path / "ds", config=PrepareConfig(workers=1), progress=False)
    assert report.encoded == 5
    dataset = TokenDataset(tmp_path / "ds")
    got = {f["path"].rsplit("/", 1)[-1]: f["split"] for f in dataset.files()}
    assert got == {r["midi_filename"].split("/")[1]: r["split"] for r in rows}
    assert [len(dataset.files(s)) for s in ("train", "validation", "test")] == [3, 1, 1]


def test_maestro_json_metadata(tmp_path):
    (tmp_path / "a.mid").write_bytes((DATA / "chorales" / "bach__bwv1.6.mxl.mid").read_bytes())
    (tmp_path / "maestro-v3.0.0.json").write_text(json.dumps(
        {"midi_filename": {"0": "a.mid"}, "split": {"0": "test"}}))
    assert find_midi_files([tmp_path]) == [(tmp_path / "a.mid", "test")]


def test_hash_split_is_deterministic_and_proportional():
    import hashlib
    hashes = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(4000)]
    splits = [hash_split(h, 0.1, 0.2) for h in hashes]
    assert splits == [hash_split(h, 0.1, 0.2) for h in hashes]
    assert abs(splits.count("test") / 4000 - 0.2) < 0.03
    assert abs(splits.count("validation") / 4000 - 0.1) < 0.03


def test_missing_dataset_and_source_errors(tmp_path):
    with pytest.raises(DatasetError, match="melodia prepare"):
        TokenDataset(tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        prepare([tmp_path / "nope"], tmp_path / "ds", progress=False)
    with pytest.raises(ValueError):
        PrepareConfig(valid_fraction=0.6, test_fraction=0.5)


def test_plain_splits_csv_assigns_splits_in_a_tiny_corpus(tmp_path):
    names = sorted((DATA / "chorales").glob("*.mid"))[:4]
    for path in names:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "splits.csv").write_text(
        "midi_filename,split\n" + "".join(f"{p.name},{s}\n" for p, s in
                                          zip(names, ["train", "train", "validation", "test"])))
    prepare([tmp_path], tmp_path / "ds", config=PrepareConfig(workers=1), progress=False)
    dataset = TokenDataset(tmp_path / "ds")
    assert [len(dataset.files(s)) for s in ("train", "validation", "test")] == [2, 1, 1]


# ------------------------------------------------------------------------------------ scores


@pytest.fixture
def mixed(tmp_path):
    """MIDI files beside a MusicXML scale, a two-tune ABC file and two unreadable scores."""
    from tests.corpus.test_scores import TWO_TUNES, write_scale

    src = tmp_path / "mixed"
    src.mkdir()
    for path in sorted((DATA / "chorales").glob("*.mid"))[:2]:
        shutil.copy(path, src / path.name)
    write_scale(src / "scale.musicxml")
    (src / "two.abc").write_text(TWO_TUNES)
    (src / "bad.xml").write_text("this is <not> xml")
    (src / "empty.abc").write_text("")
    return src


def test_prepare_reads_scores_beside_midi(mixed, tmp_path):
    scores = ScoreConfig(cache_dir=str(tmp_path / "cache"))
    out = tmp_path / "ds"
    report = prepare([mixed], out, config=PrepareConfig(workers=2, scores=scores), progress=False)
    assert report.encoded == 5 and report.scores == 3 and report.scores_cached == 0
    reasons = {Path(s["path"]).name: s["reason"] for s in report.skipped}
    assert set(reasons) == {"bad.xml", "empty.abc"}
    assert "music21 could not parse it" in reasons["bad.xml"]
    records = {Path(f["path"]).name: f for f in TokenDataset(out).files()}
    assert set(records) >= {"scale.musicxml", "two.abc#0", "two.abc#1"}
    assert records["scale.musicxml"]["notes"] == 16 and records["scale.musicxml"]["format"] \
        == "musicxml"
    assert records["two.abc#1"]["expressive"] is False and records["two.abc#1"]["licence"] is None
    midi = [f for f in records.values() if f["format"] == "midi"]
    assert len(midi) == 2 and all(f["expressive"] is None for f in midi)

    again = prepare([mixed], out, config=PrepareConfig(workers=1, scores=scores), progress=False)
    assert again.encoded == 0 and again.already == 5 and again.scores_cached == 3


def test_prepare_music21_corpus_records_licence_and_uses_cache(tmp_path):
    scores = ScoreConfig(cache_dir=str(tmp_path / "cache"))
    config = PrepareConfig(workers=1, max_files=3, scores=scores)
    report = prepare(["music21:bach"], tmp_path / "a", config=config, progress=False)
    assert report.encoded == 3 and report.scores_cached == 0
    files = TokenDataset(tmp_path / "a").files()
    assert all(f["source"] == "music21:bach" and f["expressive"] is False for f in files)
    assert all("BSD-3-Clause" in f["licence"] and "license.txt" in f["licence"] for f in files)
    cached = prepare(["music21:bach"], tmp_path / "b", config=config, progress=False)
    assert cached.encoded == 3 and cached.scores_cached == 3
    assert TokenDataset(tmp_path / "b").manifest["files"] == TokenDataset(tmp_path / "a").manifest[
        "files"]
    with pytest.raises(DatasetError, match="music21 corpus"):
        prepare(["music21:no_such_composer_here"], tmp_path / "c", progress=False)


# ----------------------------------------------------------------------------- style labels


def _band_file(path, program: int, seed: int) -> None:
    """A real two-track MIDI file (drums + one instrument), written to ``path``."""
    from melodia.midi import Score, Track, make_notes, write_midi

    rng = np.random.default_rng(seed)
    starts = np.arange(32) * 0.25
    notes = make_notes(starts, starts + 0.2, rng.integers(40, 70, 32), rng.integers(40, 110, 32))
    drums = make_notes(starts, starts + 0.1, np.full(32, 36), np.full(32, 100))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_midi(Score(tracks=[Track(notes=notes, program=program),
                             Track(notes=drums, is_drum=True)]), path)


@pytest.fixture
def styled(tmp_path):
    """``src/metal``: 2 Freedoom tracks; ``src/bossa/live``: a written file; one unlabelled."""
    src = tmp_path / "src"
    (src / "metal").mkdir(parents=True)
    for path in sorted((DATA / "freedoom").glob("*.mid"))[:2]:
        shutil.copy(path, src / "metal" / path.name)
    _band_file(src / "bossa" / "live" / "b.mid", program=24, seed=1)
    _band_file(src / "loose.mid", program=33, seed=2)
    return src


def _styles_by_name(out):
    return {Path(f["path"]).name: f["style"] for f in TokenDataset(out).files()}


def test_labels_from_folders_store_each_files_style(styled, tmp_path, caplog):
    out = tmp_path / "ds"
    config = PrepareConfig(workers=1, labels_from_folders=True)
    assert prepare([styled], out, get_encoding("band"), config, progress=False).encoded == 4
    assert "outside a style folder" in caplog.text
    metal = sorted(p.name for p in (styled / "metal").iterdir())
    assert _styles_by_name(out) == {**dict.fromkeys(metal, "metal"), "b.mid": "bossa",
                                    "loose.mid": None}
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["styles"] == ["bossa", "metal"]
    dataset = TokenDataset(out)
    assert dataset.styles() == ["bossa", "metal"]
    pairs = dataset.sequences_with_styles()
    assert [style for _, style in pairs] == [f["style"] for f in dataset.files()]
    for (ids, _), record in zip(pairs, dataset.files()):
        np.testing.assert_array_equal(ids, dataset.encoding.encode_file(record["path"]))
    split = dataset.files()[0]["split"]
    assert len(dataset.sequences_with_styles(split)) == len(dataset.files(split))


def test_rerun_keeps_labels_and_follows_moved_files(styled, tmp_path):
    out = tmp_path / "ds"
    labelled = PrepareConfig(workers=1, labels_from_folders=True)
    prepare([styled], out, get_encoding("band"), labelled, progress=False)
    first = _styles_by_name(out)
    again = prepare([styled], out, get_encoding("band"), labelled, progress=False)
    assert again.encoded == 0 and _styles_by_name(out) == first
    # Without the option nothing is relabelled; a new file gets no label.
    _band_file(styled / "funk" / "f.mid", program=36, seed=3)
    plain = PrepareConfig(workers=1)
    assert prepare([styled], out, get_encoding("band"), plain, progress=False).encoded == 1
    assert _styles_by_name(out) == {**first, "f.mid": None}
    # With it again, the new file and a file moved to another style folder follow their folders.
    (styled / "bossa" / "live" / "b.mid").rename(styled / "funk" / "b.mid")
    prepare([styled], out, get_encoding("band"), labelled, progress=False)
    assert _styles_by_name(out) == {**first, "f.mid": "funk", "b.mid": "funk"}
    assert TokenDataset(out).styles() == ["funk", "metal"]
    assert json.loads((out / MANIFEST).read_text())["styles"] == ["funk", "metal"]


def test_unlabelled_dataset_has_no_styles(styled, tmp_path):
    prepare([styled / "metal"], tmp_path / "ds", config=PrepareConfig(workers=1), progress=False)
    dataset = TokenDataset(tmp_path / "ds")
    assert dataset.styles() == [] and dataset.manifest["styles"] == []
    assert {style for _, style in dataset.sequences_with_styles()} == {None}


def test_folder_label():
    from melodia.corpus.sources import folder_label

    roots = [Path("c"), Path("d")]
    assert folder_label("c/metal/x/a.mid", roots) == "metal"
    assert folder_label(Path("d/bossa/a.mid"), roots) == "bossa"
    assert folder_label("c/a.mid", roots) is None
    assert folder_label("elsewhere/rock/a.mid", roots) is None


# ------------------------------------------------------------------------- hostile input


def _absurd_midi(tempo: bytes = b"\xff\xff\xff", delta: bytes = b"\xff\xff\xff\x7f") -> bytes:
    """44 bytes: tempo 0xFFFFFF, 1 tick per quarter, one note 2^28 ticks (142 years) in."""
    track = (b"\x00\xff\x51\x03" + tempo + delta + b"\x90\x3c\x64"
             b"\x01\x80\x3c\x40" b"\x00\xff\x2f\x00")
    return b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01\x00\x01" + \
        b"MTrk" + len(track).to_bytes(4, "big") + track


def test_prepare_skips_over_long_files_and_lists_duplicates(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    assert len(_absurd_midi()) == 44
    (src / "long.mid").write_bytes(_absurd_midi())
    good = sorted((DATA / "chorales").glob("*.mid"))[0]
    shutil.copy(good, src / "a.mid")
    shutil.copy(good, src / "b.mid")
    out = tmp_path / "ds"
    report = prepare([src], out, config=PrepareConfig(workers=1), progress=False)
    assert report.encoded == 1 and report.failed is None
    (skip,) = report.skipped
    assert skip["path"].endswith("long.mid") and skip["reason"].startswith("longer than 2 h (")
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["duplicates"] == [{"path": str(src / "b.mid"), "same_as": str(src / "a.mid")}]
    assert [s["path"] for s in manifest["skipped"]] == [str(src / "long.mid")]
    again = prepare([src], out, config=PrepareConfig(workers=1), progress=False)
    assert again.already == 2 and again.duplicates == [str(src / "b.mid")]
    assert json.loads((out / MANIFEST).read_text())["duplicates"] == manifest["duplicates"]
    # 120 qpm, 1 tick per quarter, the note 21600 ticks (3 h) in
    (src / "long.mid").write_bytes(_absurd_midi(b"\x07\xa1\x20", b"\x81\xa8\x60"))
    report = prepare([src / "long.mid"], tmp_path / "ds2", config=PrepareConfig(workers=1),
                     progress=False)
    assert report.skipped[0]["reason"].startswith("longer than 2 h (3 h): ")
    allowed = prepare([src / "long.mid"], tmp_path / "ds2",
                      config=PrepareConfig(workers=1, max_seconds=4 * 3600), progress=False)
    assert allowed.encoded == 1 and allowed.duration_s == pytest.approx(10800.5)


def test_skipped_files_are_saved_as_the_run_goes(tmp_path, monkeypatch):
    import melodia.corpus.preparation as corpus_module

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"bad{i}.mid").write_bytes(b"not midi %d" % i)
    out = tmp_path / "ds"
    real = corpus_module._results

    def interrupted(jobs, workers):
        for i, result in enumerate(real(jobs, workers)):
            if i == 2:  # the run dies (killed, power cut) before the third file
                listed = json.loads((out / MANIFEST).read_text())["skipped"]
                assert [s["path"] for s in listed] == [str(src / "bad0.mid")]
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(corpus_module, "_results", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare([src], out, config=PrepareConfig(workers=1), progress=False)
    listed = json.loads((out / MANIFEST).read_text())["skipped"]
    assert [s["path"] for s in listed] == [str(src / "bad0.mid"), str(src / "bad1.mid")]


def test_prepare_that_encodes_nothing_fails_and_leaves_no_folder(tmp_path, capsys):
    from melodia import cli

    empty, bad = tmp_path / "empty", tmp_path / "bad"
    empty.mkdir()
    bad.mkdir()
    (bad / "long.mid").write_bytes(_absurd_midi())
    (bad / "junk.mid").write_bytes(b"junk")
    for src, why in ((empty, "no MIDI or score files found"),
                     (bad, "none of the 2 piece(s) could be encoded")):
        out = tmp_path / f"out_{src.name}"
        report = prepare([src], out, config=PrepareConfig(workers=1), progress=False)
        assert why in report.failed and not out.exists()
        capsys.readouterr()
        assert cli.main(["prepare", str(src), "-o", str(out), "--quiet", "--workers", "1"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == f"melodia prepare: error: nothing encoded into {out}: {why}"
        assert not out.exists()
    with pytest.raises(DatasetError):
        prepare([tmp_path / "nope"], tmp_path / "out_nope", progress=False)
    assert not (tmp_path / "out_nope").exists()


@pytest.mark.parametrize("damage, words", [
    ("torn shard header", r"shard-00000.npy is damaged \(TokenError"),
    ("short shard", "is shorter than manifest.json says"),
    ("pickled shard", "shard-00000.npy is damaged"),
    ("nameless encoding", "manifest.json: an encoding record needs a name"),
    ("no files", "manifest.json is damaged: no files"),
    ("record without offset", "a file record lacks its shard, offset or events"),
])
def test_a_damaged_dataset_names_its_file(damage, words, corpus, tmp_path):
    out = tmp_path / "ds"
    prepare([corpus], out, config=PrepareConfig(workers=1), progress=False)
    shard, manifest = out / "shard-00000.npy", out / MANIFEST
    data = json.loads(manifest.read_text())
    if damage == "torn shard header":
        raw = bytearray(shard.read_bytes())
        raw[10:40] = b"(" * 30  # numpy parses the header dict with Python's tokenizer
        shard.write_bytes(bytes(raw))
    elif damage == "short shard":
        np.save(shard, np.load(shard)[:10])
    elif damage == "pickled shard":
        np.save(shard, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    elif damage == "nameless encoding":
        data["encoding"] = {"nam": "piano"}
    elif damage == "no files":
        del data["files"]
    else:
        del data["files"][0]["offset"]
    manifest.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=words) as err:
        TokenDataset(out).sequences()
    assert "\n" not in str(err.value)
