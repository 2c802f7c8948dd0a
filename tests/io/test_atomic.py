import os

import pytest

from xrfdask.io.atomic import atomic_output


def test_file_appears_only_when_complete(tmp_path):
    out = tmp_path / "map.bin"
    with atomic_output(out) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"abc")
        assert not out.exists()
    assert out.read_bytes() == b"abc"
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(os.listdir(tmp_path)) == ["map.bin"]


def test_existing_file_needs_overwrite(tmp_path):
    out = tmp_path / "map.bin"
    out.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="map.bin: exists"):
        with atomic_output(out):
            pass
    assert out.read_bytes() == b"old"


def test_failure_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "map.bin"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(out, overwrite=True) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("boom")
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["map.bin"]


def _tree(folder):
    return {
        os.path.relpath(os.path.join(r, f), folder): open(os.path.join(r, f), "rb").read()
        for r, _, files in os.walk(folder)
        for f in files
    }


def test_directory_replaced_whole(tmp_path):
    store = tmp_path / "map.zarr"
    (store / "raw").mkdir(parents=True)
    (store / "raw" / "old").write_bytes(b"1")
    with atomic_output(store, overwrite=True, directory=True) as tmp:
        os.mkdir(os.path.join(tmp, "raw"))
        with open(os.path.join(tmp, "raw", "new"), "wb") as f:
            f.write(b"2")
    assert _tree(store) == {os.path.join("raw", "new"): b"2"}
    assert sorted(os.listdir(tmp_path)) == ["map.zarr"]  # the old tree, moved aside, is gone


def test_directory_kept_when_the_swap_fails(tmp_path, monkeypatch):
    store = tmp_path / "map.zarr"
    store.mkdir()
    (store / "old").write_bytes(b"1")
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(src).startswith(".tmp-"):
            raise OSError("disk gone")  # the new tree cannot be moved in
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk gone"):
        with atomic_output(store, overwrite=True, directory=True) as tmp:
            with open(os.path.join(tmp, "new"), "wb") as f:
                f.write(b"2")
    assert _tree(store) == {"old": b"1"}
    assert sorted(os.listdir(tmp_path)) == ["map.zarr"]
