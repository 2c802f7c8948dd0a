"""A writer process for tests/io/test_interrupted_writes.py, stopped at a chosen point.

Run as ``python _writer_child.py '<json>'``. Nothing in xrfdask is patched. The stop points:

- ``cut="task"``: a dask callback; the ``after``-th task that finishes while a ``.tmp-*`` entry
  exists beside the target writes ``signal`` and blocks, and the parent SIGKILLs this process.
- ``cut="h5-move"``: this process SIGKILLs itself right after h5py's ``after``-th
  ``Group.move`` (the swap of a finished group into an existing HDF5 file).
- ``cut="zarr-swap"``: it SIGKILLs itself right after the ``os.replace`` that moves a finished
  group into an existing zarr store.

Without a stop point it writes ``signal`` ("done") when the write returns.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def main(args: dict) -> None:
    import h5py
    from dask.callbacks import Callback

    import xrfdask as xd

    ds = xd.open_geopixe(args["src"])
    obj = ds
    if args["what"] == "fit":
        obj = xd.fit(ds, xd.make_fit_config(ds, args["lines"]))
    target = os.path.abspath(args["target"])
    folder = os.path.dirname(target)
    cut, after = args.get("cut"), int(args.get("after", 1))

    class StopMidWrite(Callback):
        seen = 0

        def _posttask(self, *_):
            if not any(n.startswith(".tmp-") for n in os.listdir(folder)):
                return
            StopMidWrite.seen += 1
            if StopMidWrite.seen == after:
                with open(args["signal"], "w") as f:
                    f.write("writing")
                time.sleep(600)  # the parent kills us here

    def die_after(owner, name, predicate):
        real = getattr(owner, name)
        calls = []

        def wrapper(*a, **k):
            out = real(*a, **k)
            if predicate(*a):
                calls.append(a)
                if len(calls) == after:
                    os.kill(os.getpid(), signal.SIGKILL)
            return out

        setattr(owner, name, wrapper)

    if cut == "task":
        StopMidWrite().register()
    elif cut == "h5-move":
        die_after(h5py.Group, "move", lambda *a: True)
    elif cut == "zarr-swap":
        group = os.path.join(target, args["what"])
        die_after(os, "replace", lambda src, dst: os.fspath(dst) == group)
    elif cut is not None:
        raise ValueError(cut)
    write = xd.to_h5 if args["kind"] == "h5" else xd.to_zarr
    write(obj, target, overwrite=args.get("overwrite", False))
    with open(args["signal"], "w") as f:
        f.write("done")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
