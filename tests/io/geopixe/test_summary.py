from xrfdask import index_geopixe
from xrfdask.io.geopixe import build_index
from xrfdask.io.geopixe.summary import format_summary


def _summary(**changes):
    s = {
        "path": "m.GeoPIXE",
        "file_size": 2_500_000,
        "header_length": 900,
        "timestamp": "2023-02-16 10:00",
        "dwell_ms": 1.5,
        "xres": 200,
        "yres": 100,
        "rows_present": 100,
        "width_mm": 5.0,
        "height_mm": 2.5,
        "ndet": 2,
        "header_dets": 2,
        "detector_blocks": 2,
        "nchan": 4096,
        "gain_ev": 10.0,
        "tube": {"Elt": "Mo", "KV": 40, "UA (µA)": 500},
        "n_records": 40_000,
        "n_expected": 40_000,
        "missing_pixels": 0,
        "dropped_offset": None,
        "dense_bytes": 200 * 100 * 2 * 4096 * 2,
        "deadtime": {0: (1.0, 9.5, 4.25), 1: (2.0, 8.0, 5.0)},
    }
    return {**s, **changes}


def test_every_fact_a_line():
    assert format_summary(_summary()).splitlines() == [
        "file            m.GeoPIXE  (2,500,000 bytes)",
        "header          900 bytes of JSON, recorded 2023-02-16 10:00",
        "map             200 x 100 pixels (x by y), 5 x 2.5 mm, pixel 25 µm",
        "dwell           1.5 ms per pixel",
        "detectors       2; 2 Detector block(s) in the header",
        "channels        4096 x 10 eV (0 - 40.95 keV)",
        "source          Mo tube 40 kV 500 µA",
        "records         40,000 of 40,000 (complete)",
        "missing pixels  0",
        "dense size      312.50 MiB as uint16 (file 2.38 MiB)",
        "deadtime det 0  1.00 - 9.50 % (mean 4.25 %)",
        "deadtime det 1  2.00 - 8.00 % (mean 5.00 %)",
    ]


def test_missing_facts_are_left_out_and_odd_ones_said():
    lines = format_summary(
        _summary(
            timestamp=None,
            dwell_ms=None,
            width_mm=None,
            header_dets=3,
            tube={"KV": 40},
            n_records=39_990,
            missing_pixels=5,
            dropped_offset=123_456,
            deadtime={},
        )
    ).splitlines()
    assert lines[1] == "header          900 bytes of JSON"
    assert lines[2] == "map             200 x 100 pixels (x by y)"
    assert not any(line.startswith(("dwell", "deadtime")) for line in lines)
    assert "detectors       2 (header Dets 3); 2 Detector block(s) in the header" in lines
    assert "source          40 kV" in lines
    assert "records         39,990 of 40,000 (incomplete: scan stopped early)" in lines
    assert "missing pixels  5" in lines
    assert "dropped         incomplete record at offset 123,456" in lines
    assert "source" not in format_summary(_summary(tube={}))


def test_summary_of_the_sample(sample_path):
    text = format_summary(build_index(sample_path).summary())
    idx = index_geopixe(sample_path)
    assert f"records         {idx.sizes['record']} of 400 (complete)" in text
    assert "dense size      3.12 MiB as uint16 (file 1.34 MiB)" in text


def test_a_detector_without_measured_deadtime_is_said():
    lines = format_summary(_summary(deadtime={0: (1.0, 9.5, 4.25), 1: (0.0, 0.0, 0.0)}))
    assert lines.splitlines()[-1] == (
        "deadtime det 1  0.00 - 0.00 % (mean 0.00 %)  not measured: every record 0.0 "
        "(xd.predict_deadtime fills it)"
    )
    assert "not measured" not in lines.splitlines()[-2]
