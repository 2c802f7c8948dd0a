"""Make ``xrf_proc_groups.h5``: every result group written by xrf_proc itself.

Run with a checkout of xrf_proc (PieterTack/xrf_proc, and PieterTack/Xims beside XProc.py, which
its quant_with_ref imports) named by ``XRF_PROC_DIR``::

    XRF_PROC_DIR=/path/to/xrf_proc python tests/data/make_xrf_proc_groups.py

The raw map is xrfdask's example (8 x 6 pixels, 2 detectors) written to the layout, plus the
``raw/I1`` that xrf_proc's norm needs (spec 12.7); then xrf_proc's ``fit_xrf_batch``,
``norm_xrf_batch``, ``calc_detlim`` (nist613.cnc), ``quant_with_ref`` (a copy of the file as
its reference) and ``div_by_cnc``, so ``tests/io/h5layout/test_xrf_proc_groups.py`` reads groups
exactly as xrf_proc writes them. Made with xrf_proc 1c69e8e and Xims bdefce4.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("XRFDASK_SHARED", HERE.parents[2] / "shared"))


def main() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, os.environ["XRF_PROC_DIR"])
    import XProc

    import xrfdask as xd
    from xrfdask.fit.config import config_to_text

    work = Path(tempfile.mkdtemp())
    h5 = work / "xrf_proc_groups.h5"
    ds = xd.datasets.example_dataset(shape=(8, 6))
    xd.to_h5(ds, h5)
    with h5py.File(h5, "r+") as f:
        f["raw/I1"] = np.ones(f["raw/I0"].shape)
    cfg = work / "example.cfg"
    # One excitation energy: xrf_proc's quant_with_ref fails on the "Rayl001" lines of a second
    # one (a family of one reference line indexed with a list: a numpy error today).
    config = xd.make_fit_config(ds, list(xd.datasets.ELEMENTS), excitation_energy=17.44)
    cfg.write_text(config_to_text(config))
    cnc = work / "nist613.cnc"
    shutil.copy(SHARED / "data" / "cnc" / "nist613.cnc", cnc)
    cwd = os.getcwd()
    os.chdir(work)  # xrf_proc writes its plots beside the file
    try:
        XProc.fit_xrf_batch(str(h5), str(cfg))
        XProc.norm_xrf_batch(str(h5))
        XProc.calc_detlim(str(h5), str(cnc))
        ref = work / "reference.h5"  # the map as its own reference material
        shutil.copy(h5, ref)
        XProc.quant_with_ref(str(h5), str(ref), "channel00")
        XProc.div_by_cnc(str(h5), str(cnc), "channel00")
    finally:
        os.chdir(cwd)
    out = HERE / "xrf_proc_groups.h5"
    # Copied into a new file: the space of the datasets xrf_proc replaced is not carried along.
    with h5py.File(h5, "r") as src, h5py.File(out, "w") as dst:
        for key in src:
            src.copy(src[key], dst, name=key)
        dst.attrs.update(src.attrs)
    print(out, out.stat().st_size)


if __name__ == "__main__":
    main()
