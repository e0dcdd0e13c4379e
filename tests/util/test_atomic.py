import pytest

from melodia.util.atomic import atomic_write


def test_atomic_write_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write(path, lambda f: f.write(b"old"))
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def torn(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, torn)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
