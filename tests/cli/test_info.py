import struct

from xrfdask import index_geopixe


def test_info_summarises_from_the_index(run, sample_path):
    code, out, err = run("info", str(sample_path))
    assert code == 0, err
    assert "1,407,157 bytes" in out
    assert "20 x 10 pixels" in out
    assert "detectors       2" in out
    assert "400 of 400 (complete)" in out
    assert "missing pixels  0" in out
    assert "4096 x 10 eV" in out
    assert "deadtime det 0  7.17 - 84.25 % (mean 23.74 %)" in out
    assert "deadtime det 1  11.26 - 87.93 % (mean 26.85 %)" in out
    # Sizes as dask writes them: 20 x 10 pixels x 2 detectors x 4096 channels x 2 bytes.
    assert "dense size      3.12 MiB as uint16 (file 1.34 MiB)" in out


def test_info_on_a_truncated_file(run, tmp_path, sample_path):
    cut = tmp_path / "cut.GeoPIXE"
    idx = index_geopixe(sample_path)
    cut.write_bytes(sample_path.read_bytes()[: int(idx.offset[300]) + 20])
    code, out, err = run("info", str(cut))
    assert code == 0
    assert "300 of 400 (incomplete" in out and "missing pixels  50" in out
    assert f"offset {int(idx.offset[300]):,}" in out
    assert err.startswith("warning: ") and len(err.strip().splitlines()) == 1


def test_missing_file_is_one_line(run, tmp_path):
    code, out, err = run("info", str(tmp_path / "nope.GeoPIXE"))
    assert code == 1 and "nope.GeoPIXE: cannot open" in err and len(err.strip().splitlines()) == 1


def test_corrupt_header_is_one_line(run, tmp_path):
    bad = tmp_path / "bad.GeoPIXE"
    bad.write_bytes(struct.pack("<H", 10) + b"{not json}DP")
    code, out, err = run("info", str(bad))
    assert code == 1
    assert (
        err.strip() == f"xrfdask info: error: {bad}: header JSON is broken at offset 3: "
        "Expecting property name enclosed in double quotes"
    )
