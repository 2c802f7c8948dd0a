"""Datasets <-> the layout tree, independent of the storage (HDF5 file or zarr store).

Writing turns a raw map or a result Dataset into a :class:`Layout`: a list of :class:`Node` (one
per stored dataset, with its path, file dimensions and data, lazy or not) and group attributes.
Reading does the reverse from a store reader (:mod:`~xrfdask.io.h5layout.stores`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xrfdask.chunks import bands
from xrfdask.errors import ConfigError, FormatError
from xrfdask.instrument import pixel_charge_uc
from xrfdask.io.beamlines.grid import axis_positions
from xrfdask.io.h5layout import schema
from xrfdask.io.h5layout.stores import attrs_json, first_line
from xrfdask.model import MAP_DIMS, PIXEL_DIMS, RAW_DIMS, line_union, with_attrs

__all__ = ["Node", "Layout", "raw_layout", "result_layout", "read_raw", "read_result", "group_of"]

_ATTRS_KEY = "xrfdask_attrs"  # the Dataset's attributes, as JSON
_LABELS_KEY = "xrfdask_detectors"  # detector labels when they are not the channel names


@dataclass
class Node:
    """One dataset to store.

    ``value`` is a numpy or dask array, a string, a list of strings or a number; ``dims`` its
    dimensions in the file (for zarr's ``_ARRAY_DIMENSIONS``); ``reduce`` = ("sum" | "max",
    source path) marks a per-channel spectrum computed from the bands of another node, so writers
    that stream bands compute it in the same pass.
    """

    path: str
    value: Any
    dims: tuple[str, ...]
    kind: str = "array"
    compress: bool = True
    attrs: dict[str, Any] = field(default_factory=dict)
    names_fixed: bool = False
    reduce: tuple[str, str] | None = None


@dataclass
class Layout:
    """What to write: the group (``"raw"``, ``"fit"``...), its nodes and group attributes."""

    group: str
    nodes: list[Node]
    group_attrs: dict[str, dict[str, Any]]


def group_of(ds: xr.Dataset) -> str:
    """The layout group a Dataset belongs to, from its variables."""
    if "spectra" in ds:
        return "raw"
    for name, group in schema.RESULT_GROUPS.items():
        if group.key_var in ds:
            return name
    raise ValueError(
        "cannot tell which layout group this Dataset belongs to (no 'spectra', 'peak_area', "
        "'normalised', 'concentration'...); pass group="
    )


def _now() -> str:
    return time.strftime("%d/%m/%Y %H:%M:%S")


def _json_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """A dataset's attributes as one JSON string (types, lists and nested values survive)."""
    return {_ATTRS_KEY: attrs_json(attrs)}


def _channels(ds: xr.Dataset) -> list[tuple[Any, str]]:
    labels = (
        np.atleast_1d(ds["detector"].values).tolist()
        if "detector" in ds.coords
        else list(range(ds.sizes.get("detector", 1)))
    )  # eager-ok: labels
    names = [schema.channel_name(label) for label in labels]
    if len(set(names)) != len(names):
        raise ValueError(f"detector labels {labels} give duplicate channel group names")
    return list(zip(labels, names, strict=True))


def _as_dask(data: Any) -> da.Array:
    return data if isinstance(data, da.Array) else da.from_array(np.asarray(data))


def _labels_attr(channels: list[tuple[Any, str]]) -> dict[str, Any]:
    labels = [label for label, _ in channels]
    if labels == [name for _, name in channels]:
        return {}
    return {
        _LABELS_KEY: json.dumps(
            [label.item() if hasattr(label, "item") else label for label in labels]
        )
    }


# --- raw maps -------------------------------------------------------------------------------


def raw_layout(ds: xr.Dataset) -> Layout:
    """The raw group (and root ``cmd``, ``mot1``, ``mot2``) of a raw map."""
    missing = [d for d in RAW_DIMS if d not in ds["spectra"].dims]
    if missing:
        raise FormatError(f"to_h5: spectra lack dimension(s) {missing}; expected {RAW_DIMS}")
    ds = _with_layout_counters(ds)
    spectra = ds["spectra"].transpose(*RAW_DIMS)
    ny, nx = spectra.shape[:2]
    channels = _channels(ds)
    nodes: list[Node] = []
    attrs = {k: v for k, v in ds.attrs.items() if k != "cmd"}
    cmd = str(ds.attrs.get("cmd") or f"xrfdask {ds.attrs.get('source_format', 'map')} {ny} x {nx}")
    nodes.append(Node("cmd", cmd, (), "text", compress=False))
    for name, coord_dim in (("mot1", "x"), ("mot2", "y")):
        if name in ds:
            motor = ds[name].transpose(*MAP_DIMS)
            nodes.append(Node(name, motor.data, MAP_DIMS, attrs=dict(motor.attrs)))
        elif coord_dim in ds.coords:
            coord = ds[coord_dim]
            values = np.asarray(coord.values, dtype=float)  # eager-ok: 1-D coordinate
            grid = np.broadcast_to(
                values[None, :] if coord_dim == "x" else values[:, None], (ny, nx)
            )
            motor_attrs = {
                "Name": coord_dim,
                **{k: v for k, v in coord.attrs.items() if isinstance(v, str | int | float)},
            }
            nodes.append(Node(name, np.ascontiguousarray(grid), MAP_DIMS, attrs=motor_attrs))
    nodes.extend(_map_node(f"raw/{name}", ds[name]) for name in schema.RAW_PER_PIXEL if name in ds)
    for label, channel in channels:
        one = ds.sel(detector=label) if "detector" in ds.coords else ds.isel(detector=0)
        base = f"raw/{channel}"
        data = _as_dask(one["spectra"].transpose("y", "x", "channel").data)
        nodes.append(
            Node(f"{base}/spectra", data, ("y", "x", "channel"), attrs=_var_attrs(one["spectra"]))
        )
        nodes.extend(
            _map_node(f"{base}/{name}", one[name])
            for name in schema.RAW_CHANNEL_PIXEL
            if name in one
        )
        sum_dtype = np.float64 if np.issubdtype(data.dtype, np.floating) else np.int64
        nodes.append(
            Node(
                f"{base}/sumspec",
                da.zeros(data.shape[-1], dtype=sum_dtype),
                ("channel",),
                reduce=("sum", f"{base}/spectra"),
            )
        )
        nodes.append(
            Node(
                f"{base}/maxspec",
                da.zeros(data.shape[-1], dtype=np.float64),
                ("channel",),
                reduce=("max", f"{base}/spectra"),
            )
        )
    raw_attrs = {**_json_attrs(attrs), **_labels_attr(channels), **_energy_attrs(ds)}
    return Layout("raw", nodes, {"raw": raw_attrs})


def _map_node(path: str, var: xr.DataArray) -> Node:
    """A (y, x) variable of the raw map as a layout node."""
    return Node(path, var.transpose(*MAP_DIMS).data, MAP_DIMS, attrs=_var_attrs(var))


def _var_attrs(var: xr.DataArray) -> dict[str, Any]:
    """Variable attributes worth storing (the standard ones are regenerated on reading)."""
    standard = with_attrs(str(var.name))
    return {
        k: v
        for k, v in var.attrs.items()
        if standard.get(k) != v and isinstance(v, str | int | float)
    }


def _energy_attrs(ds: xr.Dataset) -> dict[str, Any]:
    if "energy" not in ds.coords or ds.sizes.get("channel", 0) < 2:
        return {}
    energy = np.asarray(ds["energy"].values, dtype=float)  # eager-ok: 1-D coordinate
    channel = np.asarray(ds["channel"].values, dtype=float)  # eager-ok: 1-D coordinate
    gain = (energy[-1] - energy[0]) / (channel[-1] - channel[0])
    offset = energy[0] - gain * channel[0]
    if not np.allclose(offset + gain * channel, energy, rtol=0, atol=1e-9):
        return {}
    return {"energy_offset_keV": float(offset), "energy_gain_keV": float(gain)}


def _with_layout_counters(ds: xr.Dataset) -> xr.Dataset:
    """Add what the layout needs and a lab map lacks: icr/ocr from deadtime, acquisition time, I0.

    For a ``.GeoPIXE`` map the output count rate is the spectrum's total over the dwell time and
    the input rate follows from the deadtime (ocr / icr = 1 - deadtime / 100), so xrf_proc's
    deadtime correction (areas x icr / ocr) matches the records. I0 is the tube current from the
    header, constant (normalising by it changes nothing but keeps xrf_proc's ``norm`` working).
    """
    out = ds
    dwell_s = float(ds.attrs["dwell_ms"]) / 1000.0 if ds.attrs.get("dwell_ms") else None
    if "ocr" not in ds and "deadtime" in ds:
        # uint16 totals fit uint32 (65536 channels x 65535 < 2**32), which sums 3x faster.
        small = ds["spectra"].dtype.kind == "u" and ds["spectra"].dtype.itemsize <= 2
        counts = (
            ds["spectra"]
            .sum("channel", dtype=np.uint32 if small else np.float64)
            .astype(np.float64)
        )
        ocr = counts / dwell_s if dwell_s else counts
        live = 1.0 - ds["deadtime"].astype(np.float64) / 100.0
        icr = xr.where(live > 0, ocr / live, ocr)
        units = {"units": "counts/s"} if dwell_s else {"units": "counts"}
        out = out.assign(
            ocr=ocr.assign_attrs(with_attrs("ocr", units)),
            icr=icr.assign_attrs(with_attrs("icr", units)),
        )
    if "acquisition_time" not in ds and dwell_s:
        shape = (ds.sizes["y"], ds.sizes["x"])
        out = out.assign(
            acquisition_time=(MAP_DIMS, np.full(shape, dwell_s), with_attrs("acquisition_time"))
        )
    charge = pixel_charge_uc(ds.attrs)
    if "I0" not in ds and (charge is not None or ds.attrs.get("source_format") == "GeoPIXE"):
        # The tube charge per pixel, as xd.normalise takes it for a lab map: normalised maps of
        # the file and of the map agree, and yields are per µC.
        shape = (ds.sizes["y"], ds.sizes["x"])
        note = {"units": "µC", "source": "tube current x dwell time from the header, constant"}
        if charge is None:
            charge, note = 1.0, {"source": "no tube current or dwell in the header: 1"}
        out = out.assign(I0=(MAP_DIMS, np.full(shape, charge), with_attrs("I0", note)))
    return out


def read_raw(reader, *, chunks: Any = "auto") -> xr.Dataset:
    """Assemble the raw-map Dataset from the ``raw`` group of a layout (spectra stay lazy)."""
    path = reader.path
    if not reader.is_group("raw"):
        raise FormatError(f"{path}: group 'raw' is missing: not a uniform-layout raw map")
    channels = [
        k for k in reader.keys("raw") if schema.is_channel_group(k) and reader.is_group(f"raw/{k}")
    ]
    if not channels:
        raise FormatError(f"{path}: no 'raw/channelXX' group with spectra")
    budget = _budget(chunks)
    first = f"raw/{channels[0]}/spectra"
    shape0 = _map_shape(reader, first, 3)
    plan = _map_plan(reader, first, shape0, budget, len(channels))
    spectra, pixel_vars, spectrum_vars = [], {}, {}  # spectra: dataset paths, read together below
    for channel in channels:
        p = f"raw/{channel}/spectra"
        shape = _map_shape(reader, p, 3)
        if shape[:2] != shape0[:2]:
            raise FormatError(
                f"{path}: dataset '{p}' covers {shape[0]} x {shape[1]} pixels but '{first}' covers "
                f"{shape0[0]} x {shape0[1]}: detectors do not match"
            )
        if shape[2] != shape0[2]:
            raise FormatError(
                f"{path}: dataset '{p}' has {shape[2]} channels but '{first}' has {shape0[2]}"
            )
        spectra.append(p)
        for name in schema.RAW_CHANNEL_PIXEL:
            q = f"raw/{channel}/{name}"
            if reader.has(q):
                pixel_vars.setdefault(name, []).append(
                    _lazy_map(reader, q, _map_shape(reader, q, 2, shape0[:2]), plan)
                )
        for name in schema.RAW_CHANNEL_SPECTRUM:
            q = f"raw/{channel}/{name}"
            if reader.has(q):
                value = np.asarray(reader.read(q))
                if value.shape != (shape0[2],) or value.dtype.kind not in "biuf":
                    raise FormatError(
                        f"{path}: dataset '{q}' has shape {value.shape} ({value.dtype}), "
                        f"expected ({shape0[2]},) numbers"
                    )
                spectrum_vars.setdefault(name, []).append(value)
    # Detectors side by side in one chunk (the design's chunking: detector and channel whole),
    # one task per block reading every detector: the array the readers' fast paths recognise.
    stacked = reader.lazy_spectra(spectra, *plan)
    data_vars: dict[str, Any] = {
        "spectra": (RAW_DIMS, stacked, with_attrs("spectra", _stored_attrs(reader, first)))
    }
    for name, arrays in pixel_vars.items():
        if len(arrays) != len(channels):
            raise FormatError(
                f"{path}: '{name}' exists for some channels only ({len(arrays)} of {len(channels)})"
            )
        stacked = da.stack(arrays, axis=2).rechunk({2: -1})
        data_vars[name] = (
            PIXEL_DIMS,
            stacked,
            with_attrs(name, _stored_attrs(reader, f"raw/{channels[0]}/{name}")),
        )
    for name, arrays in spectrum_vars.items():
        if len(arrays) == len(channels):
            data_vars[name] = (("detector", "channel"), np.stack(arrays), with_attrs(name))
    for name in schema.RAW_PER_PIXEL:
        q = f"raw/{name}"
        if reader.has(q):
            data_vars[name] = (
                MAP_DIMS,
                _lazy_map(reader, q, _map_shape(reader, q, 2, shape0[:2]), plan),
                with_attrs(name, _stored_attrs(reader, q)),
            )
    motors = {}
    for name in schema.RAW_MOTORS:
        if reader.has(name):
            motors[name] = np.asarray(reader.read(name))
            if motors[name].ndim == 1:
                motors[name] = motors[name][None, :]
            if motors[name].shape != shape0[:2] or motors[name].dtype.kind not in "fiu":
                raise FormatError(
                    f"{path}: dataset '{name}' has shape {motors[name].shape}, "
                    f"expected {shape0[:2]}"
                )
            data_vars[name] = (MAP_DIMS, motors[name], reader.attrs(name))
    raw_attrs = reader.attrs("raw")
    attrs = _json_attr(reader, "raw", raw_attrs, _ATTRS_KEY, dict) or {}
    if reader.has("cmd"):
        attrs["cmd"] = str(reader.read("cmd"))
    coords = _coords(reader, channels, shape0, motors, raw_attrs)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _json_attr(reader, where: str, attrs: dict[str, Any], key: str, kind: type) -> Any:
    """Attribute ``key`` of ``where`` decoded from JSON (None when absent); it must be ``kind``."""
    if key not in attrs:
        return None
    try:
        value = json.loads(attrs[key])
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, kind):
        raise FormatError(
            f"{reader.path}: attribute '{key}' of '{where}' is {str(attrs[key])[:80]!r}, "
            f"expected a JSON {'object' if kind is dict else kind.__name__}"
        )
    return value


def _labels(attrs: dict[str, Any]) -> list[Any] | None:
    """The detector labels xrfdask stores (distinct numbers or strings), else None: absent or
    unusable labels give way to the channel group names."""
    try:
        value = json.loads(attrs[_LABELS_KEY])
    except (KeyError, TypeError, ValueError):
        return None
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value)
        or len(set(value)) != len(value)
    ):
        return None
    return value


def _number_attr(reader, where: str, attrs: dict[str, Any], key: str, default: float) -> float:
    value = attrs.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise FormatError(
            f"{reader.path}: attribute '{key}' of '{where}' is {value!r}, expected a finite number"
        )
    return float(value)


def _scalar(reader, p: str) -> Any:
    """A scalar dataset's value (a one-element array counts); a longer array is an error."""
    value = reader.read(p)
    if isinstance(value, list):  # text arrays come back as lists of str
        value = value[0] if len(value) == 1 else np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise FormatError(
                f"{reader.path}: dataset '{p}' has shape {value.shape}, expected a scalar"
            )
        value = value.item()
    return value


def _check_numeric(reader, p: str) -> None:
    dtype = reader.dtype(p)
    if dtype.kind not in "biuf":
        raise FormatError(f"{reader.path}: dataset '{p}' holds {dtype} values, expected numbers")


def _budget(chunks: Any) -> Any:
    if chunks in (None, "auto"):
        return None
    if isinstance(chunks, str | int):
        return chunks
    raise ValueError(f"chunks={chunks!r}: expected 'auto' or a chunk size like '64MiB'")


def _map_shape(reader, p: str, ndim: int, expect: tuple[int, int] | None = None) -> tuple[int, ...]:
    """Shape as (rows, columns[, channels]); a 1-D scan (columns[, channels]) becomes one row."""
    _check_numeric(reader, p)
    shape = reader.shape(p)
    if len(shape) == ndim - 1:
        shape = (1, *shape)
    if len(shape) != ndim or (expect is not None and shape[:2] != expect):
        want = "rows x columns x channels" if ndim == 3 else f"rows x columns = {expect}"
        raise FormatError(
            f"{reader.path}: dataset '{p}' has shape {reader.shape(p)}, expected {want}"
        )
    return shape


def _map_plan(
    reader, p: str, shape: tuple[int, ...], budget, ndet: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Row and column chunks for every per-pixel array of a raw map, from its spectra.

    Bands of rows follow the spectra's own chunking and the budget for all detectors together;
    a row alone over the budget is split along x (also a 1-D scan's single row).
    """
    stored = reader.stored_chunks(p)
    if stored is not None and len(stored) < len(shape):  # 1-D scan stored without its row axis
        stored = (1, *stored)
    chunks = bands(shape, reader.dtype(p).itemsize * ndet, 0, stored, budget)
    return chunks[0], chunks[1]


def _lazy_map(reader, p: str, shape: tuple[int, ...], plan) -> da.Array:
    """A (rows, columns, ...) dataset as dask, chunked by ``plan`` (a 1-D scan gets a row axis)."""
    y_chunks, x_chunks = plan
    trailing = tuple((n,) for n in shape[2:])
    if len(reader.shape(p)) < len(shape):  # stored without the row axis
        return reader.lazy(p, (x_chunks, *trailing))[None, ...]
    return reader.lazy(p, (y_chunks, x_chunks, *trailing))


def _stored_attrs(reader, p: str) -> dict[str, Any]:
    return {k: v for k, v in reader.attrs(p).items() if isinstance(v, str | int | float)}


def _coords(reader, channels, shape, motors, raw_attrs) -> dict[str, Any]:
    """y and x from the motors when they form a regular grid (else pixel indices), detector
    labels, channel numbers and, when the file records a calibration, energy."""
    ny, nx = shape[:2]
    coords: dict[str, Any] = {}
    for dim, n, axis in (("y", ny, 0), ("x", nx, 1)):
        coords[dim] = (dim, np.arange(n, dtype=float), {"units": "pixel"})
        for name, motor in motors.items():
            values = axis_positions(motor, axis)
            if values is not None:
                stored = reader.attrs(name)
                attrs = {k: v for k, v in stored.items() if k != "Name"} or {
                    "motor": str(stored.get("Name", name))
                }
                coords[dim] = (dim, values, attrs)
                break
    labels = _labels(raw_attrs)
    if labels is None or len(labels) != len(channels):
        labels = channels
    coords["detector"] = ("detector", labels)
    if len(shape) > 2 and shape[2]:
        coords["channel"] = ("channel", np.arange(shape[2]))
        if "energy_gain_keV" in raw_attrs:
            gain = _number_attr(reader, "raw", raw_attrs, "energy_gain_keV", 0.0)
            offset = _number_attr(reader, "raw", raw_attrs, "energy_offset_keV", 0.0)
            energy = offset + gain * np.arange(shape[2])
            coords["energy"] = ("channel", energy, {"units": "keV", "long_name": "photon energy"})
    return coords


# --- result groups --------------------------------------------------------------------------


def result_layout(ds: xr.Dataset, group: str) -> Layout:
    """A result group (fit, norm, quant, ...) of the layout."""
    sch = schema.result_schema(group)
    if sch.subgrouped and "/" not in group:
        cnc = ds.attrs.get("cnc") or ds.attrs.get("reference")
        if not cnc:
            raise ValueError(
                f"group {group!r} needs the reference name: pass group='{group}/<file>.cnc'"
            )
        group = f"{group}/{cnc}"
    ds = _small_computed(ds)
    channels = _channels(ds)
    nodes: list[Node] = []
    line_masks = _line_masks(ds, sch)
    for label, channel in channels:
        one = ds.sel(detector=label) if "detector" in ds.dims else ds
        base = f"{group}/{channel}"
        keep = line_masks.get(label)
        if keep is not None:
            one = one.isel(line=keep)
        for f in sch.fields:
            if f.kind == "names":
                if f.var in one.coords or f.var in one:
                    values = [
                        str(v) for v in np.asarray(one[f.var].values).reshape(-1)
                    ]  # eager-ok: labels
                    nodes.append(
                        Node(
                            f"{base}/{f.path}",
                            values,
                            f.dims,
                            "names",
                            compress=False,
                            names_fixed=f.names_fixed,
                        )
                    )
                continue
            if f.var not in one:
                continue
            var = one[f.var]
            if f.kind in ("text", "scalar"):
                value = var.values.item() if var.size == 1 else var.values  # eager-ok: scalar
                nodes.append(
                    Node(
                        f"{base}/{f.path}", value, (), f.kind, compress=False, attrs=_var_attrs(var)
                    )
                )
                continue
            missing = [d for d in f.dims if d not in var.dims]
            if missing:
                raise FormatError(
                    f"to_h5: '{f.var}' lacks dimension(s) {missing} for {base}/{f.path}"
                )
            nodes.append(
                Node(
                    f"{base}/{f.path}",
                    var.transpose(*f.dims).data,
                    f.dims,
                    compress=f.compress,
                    attrs=_var_attrs(var),
                )
            )
        if sch.name == "kmeans" and "class_sums" in one:
            # Classes of element maps (xrfdask's addition: xrf_proc keeps only the labels).
            nodes.append(Node(f"{base}/class_sums",
                              one["class_sums"].transpose("class", "line").data,
                              ("class", "line"), attrs={"long_name": "summed element values "
                                                        "per class"}))  # fmt: skip
            if "class_size" in one:
                nodes.append(Node(f"{base}/class_size", one["class_size"].data, ("class",)))
        if sch.name == "kmeans" and "class_spectra" in one:
            spectra = one["class_spectra"].transpose("class", "channel")
            sizes = one["class_size"].values if "class_size" in one else None  # eager-ok: per class
            for i in range(spectra.sizes["class"]):
                attrs = {"NPixels": int(sizes[i])} if sizes is not None else {}
                nodes.append(
                    Node(
                        f"{base}/sumspec_{i}",
                        spectra.isel({"class": i}).data,
                        ("channel",),
                        attrs=attrs,
                    )
                )
    if sch.name == "tomo" and "transmission" in ds:
        nodes.extend(_transmission_nodes(ds, group))
    for dim in ("y", "x"):  # the map's coordinates (motors may be absent or of another map)
        if dim in ds.coords and ds[dim].ndim == 1 and dim in ds.dims:
            coord = ds[dim]
            attrs = {k: v for k, v in coord.attrs.items() if isinstance(v, str | int | float)}
            nodes.append(
                Node(
                    f"{group}/coords/{dim}",
                    np.asarray(coord.values),
                    (dim,),
                    compress=False,
                    attrs=attrs,
                )
            )  # eager-ok: 1-D coordinate
    simple = {
        k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float | bool | np.bool_)
    }
    top = group.split("/")[0]
    group_attrs = {
        top: {
            "LastUpdated": _now(),
            **{
                k: v
                for k, v in simple.items()
                if k
                in (
                    "LastUpdated",
                    "ScatROI",
                    "TmNorm",
                    "Composition",
                    "density",
                    "thickness",
                    "deadtime_corrected",
                    "method",
                )
            },
        }
    }
    group_attrs[group] = {
        **group_attrs.get(group, {}),
        **_json_attrs(ds.attrs),
        **_labels_attr(channels),
    }
    for path_in_group, key in sch.group_scalars:
        if key in ds.attrs:
            kind = "text" if isinstance(ds.attrs[key], str) else "scalar"
            nodes.append(Node(f"{group}/{path_in_group}", ds.attrs[key], (), kind, compress=False))
    return Layout(group, nodes, group_attrs)


def _transmission_nodes(ds: xr.Dataset, group: str) -> list[Node]:
    """``tomo/I1/{rotation_center, ims (1 x P x P), names=["transmission"]}`` (spec 10.2)."""
    var = ds["transmission"].transpose("ty", "tx")
    nodes = [
        Node(f"{group}/I1/names", ["transmission"], ("line",), "names", compress=False),
        Node(f"{group}/I1/ims", var.data[None], ("line", "ty", "tx"), attrs=_var_attrs(var)),
    ]
    if "transmission_rotation_center" in ds:
        centre = float(ds["transmission_rotation_center"].values)  # eager-ok: scalar
        nodes.append(Node(f"{group}/I1/rotation_center", centre, (), "scalar", compress=False))
    return nodes


def _read_transmission(reader, group: str) -> dict[str, Any]:
    """``tomo/I1/`` as ``transmission`` (ty, tx) and ``transmission_rotation_center``."""
    base = f"{group}/I1"
    out: dict[str, Any] = {}
    if reader.has(f"{base}/ims") and not reader.is_group(f"{base}/ims"):
        ims = np.asarray(reader.read(f"{base}/ims"))
        if ims.ndim == 3:
            ims = ims[0]
        out["transmission"] = (("ty", "tx"), ims, _stored_attrs(reader, f"{base}/ims"))
    if reader.has(f"{base}/rotation_center"):
        value = reader.read(f"{base}/rotation_center")
        out["transmission_rotation_center"] = (
            (),
            float(value.item() if isinstance(value, np.ndarray) else value),
        )
    return out


def _small_computed(ds: xr.Dataset) -> xr.Dataset:
    """Compute the small (non-map) variables of a result once, together, before writing them."""
    names = [
        n for n, v in ds.data_vars.items() if isinstance(v.data, da.Array) and "y" not in v.dims
    ]  # eager-ok: dict
    if not names:
        return ds
    import dask

    values = dask.compute(*[ds[n].data for n in names])  # eager-ok: per-line summaries, small
    return ds.assign({n: (ds[n].dims, v, ds[n].attrs) for n, v in zip(names, values, strict=True)})


def _line_masks(ds: xr.Dataset, sch) -> dict[Any, np.ndarray]:
    """Lines to store per detector: drop those that are NaN throughout (absent for that channel).

    Decided from the small per-line summaries only, so the (possibly expensive) maps are not
    computed twice.
    """
    if "line" not in ds.dims or "detector" not in ds.dims:
        return {}
    variables = list(ds.data_vars.values())  # eager-ok: dict of variables
    small = [v for v in variables if set(v.dims) == {"detector", "line"}]
    if not small:
        return {}
    present = None
    for var in small:
        ok = np.asarray(
            var.notnull().transpose("detector", "line").values
        )  # eager-ok: per-line summary
        present = ok if present is None else present | ok
    labels = ds["detector"].values.tolist()  # eager-ok: labels
    return {
        label: np.flatnonzero(present[i]) for i, label in enumerate(labels) if not present[i].all()
    }


def read_result(reader, group: str, *, chunks: Any = "auto") -> xr.Dataset:
    """Assemble a result Dataset (``peak_area``... with a ``line`` coordinate) from its group."""
    path = reader.path
    sch = schema.result_schema(group)
    if sch.subgrouped and "/" not in group:
        if not reader.is_group(group):
            raise FormatError(f"{path}: group '{group}' is missing")
        subs = [k for k in reader.keys(group) if reader.is_group(f"{group}/{k}")]
        if not subs:
            raise FormatError(f"{path}: group '{group}' holds no '{group}/<name>' subgroup")
        if len(subs) > 1:
            raise ConfigError(
                f"{path}: '{group}' holds {subs}; choose one with group='{group}/<name>'"
            )
        group = f"{group}/{subs[0]}"
    if not reader.is_group(group):
        raise FormatError(f"{path}: group '{group}' is missing")
    channels = [
        k
        for k in reader.keys(group)
        if schema.is_channel_group(k) and reader.is_group(f"{group}/{k}")
    ]
    if not channels:
        raise FormatError(f"{path}: group '{group}' holds no channelXX group")
    shape = _result_map_shape(reader, group, channels, sch)
    per_channel = [_read_channel(reader, f"{group}/{c}", sch, shape, chunks) for c in channels]
    lines = line_union([list(p.coords["line"].values) for p in per_channel if "line" in p.coords])
    if lines:
        per_channel = [p.reindex(line=lines) if "line" in p.coords else p for p in per_channel]
    try:
        ds = xr.concat(
            per_channel,
            dim="detector",
            join="outer",
            coords="minimal",
            compat="override",
            combine_attrs="override",
        )
    except ValueError as exc:  # e.g. a variable some channel groups lack
        raise FormatError(
            f"{path}: the channel groups of '{group}' do not match ({first_line(exc)})"
        ) from None
    group_attrs = reader.attrs(group)
    top_attrs = reader.attrs(group.split("/")[0])
    attrs = _json_attr(reader, group, group_attrs, _ATTRS_KEY, dict) or {}
    for key, value in top_attrs.items():
        if not key.startswith("xrfdask_"):
            attrs.setdefault(key, value)
    for path_in_group, key in sch.group_scalars:
        if reader.has(f"{group}/{path_in_group}"):
            attrs[key] = _scalar(reader, f"{group}/{path_in_group}")
    if sch.subgrouped:
        attrs.setdefault("cnc", group.split("/", 1)[1])
    raw_attrs = reader.attrs("raw") if reader.is_group("raw") else {}
    labels = _labels(raw_attrs)
    if _labels(group_attrs) is not None:
        labels = _labels(group_attrs)
    if labels is not None and len(labels) != len(channels) and reader.is_group("raw"):
        # A group of some detectors only (xrf_proc's quant/ holds one channel): labels by name.
        raw_channels = [k for k in reader.keys("raw") if schema.is_channel_group(k)]
        if len(raw_channels) == len(labels) and set(channels) <= set(raw_channels):
            labels = [labels[raw_channels.index(c)] for c in channels]
    if labels is None or len(labels) != len(channels):
        labels = channels
    ds = ds.assign_coords(detector=("detector", labels))
    for name, var in ds.data_vars.items():  # detectors in one chunk, as everywhere
        if isinstance(var.data, da.Array) and "detector" in var.dims:
            ds[name] = var.chunk({"detector": -1})
    if shape is not None:
        motors = {m: np.asarray(reader.read(m)) for m in schema.RAW_MOTORS if reader.has(m)}
        motors = {k: (v[None, :] if v.ndim == 1 else v) for k, v in motors.items()}
        motors = {k: v for k, v in motors.items() if v.shape == shape and v.dtype.kind in "fiu"}
        coords = _coords(reader, channels, shape, motors, {})
        for axis, dim in enumerate(("y", "x")):  # coordinates stored with the result win
            p = f"{group}/coords/{dim}"
            if reader.has(p) and reader.shape(p) == (shape[axis],):
                coords[dim] = (dim, np.asarray(reader.read(p)), _stored_attrs(reader, p))
        ds = ds.assign_coords(y=coords["y"], x=coords["x"])
    if sch.name == "tomo" and reader.is_group(f"{group}/I1"):
        ds = ds.assign(_read_transmission(reader, group))
    ds.attrs = attrs
    if sch.name == "norm" and _ATTRS_KEY not in group_attrs and "normalised_error" in ds:
        ds = _xrf_proc_norm_errors(ds)
    spatial = [d for d in ("y", "x", "detector") if d in ds.dims]
    order = spatial + [d for d in ds.dims if d not in spatial]
    return ds.transpose(*order)


def _xrf_proc_norm_errors(ds: xr.Dataset) -> xr.Dataset:
    """Absolute errors from a ``norm/`` xrf_proc wrote: its ``ims_stddev`` is relative, except
    after its snake regridding, where it is absolute (spec 12.6), and nothing in the file says
    which. Poisson errors tell: a relative error e of a normalised value v has e² v ≈ normto/I0
    (about 1), an absolute one e² / v ≈ normto/I0; the other product is off by v². Decided on
    the first band of rows (one small read), recorded in ``attrs["normalised_error_stored"]``.
    """
    rows = ds["normalised"].chunks[0][0] if ds["normalised"].chunks else ds.sizes["y"]
    v = np.asarray(ds["normalised"].isel(y=slice(0, rows)).values)  # eager-ok: one band
    e = np.asarray(ds["normalised_error"].isel(y=slice(0, rows)).values)  # eager-ok: one band
    ok = np.isfinite(v) & np.isfinite(e) & (v > 1) & (e > 0)
    relative = True  # xrf_proc's plain path, the common one
    if ok.any():
        as_relative = np.abs(np.median(np.log(e[ok] ** 2 * v[ok])))
        as_absolute = np.abs(np.median(np.log(e[ok] ** 2 / v[ok])))
        relative = bool(as_relative <= as_absolute)
    if relative:
        # An infinite relative error of a zero value gives NaN: quietly, as a read should.
        error = xr.apply_ufunc(
            _quiet_product, ds["normalised_error"], ds["normalised"], dask="parallelized"
        ).assign_attrs(ds["normalised_error"].attrs)
        ds = ds.assign(normalised_error=error)
    ds.attrs["normalised_error_stored"] = (
        "relative (xrf_proc), converted to absolute" if relative else "absolute (xrf_proc)"
    )
    return ds


def _quiet_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return a * b


def _result_map_shape(reader, group: str, channels: list[str], sch) -> tuple[int, int] | None:
    """Rows x columns of a result group's maps (from its first stored map dataset)."""
    for c in channels:
        for f in sch.fields:
            p = f"{group}/{c}/{f.path}"
            if "y" not in f.dims or not reader.has(p) or reader.is_group(p):
                continue
            shape = reader.shape(p)
            y_axis = f.dims.index("y")
            if len(shape) == len(f.dims):
                return tuple(shape[y_axis : y_axis + 2])
            if len(shape) == len(f.dims) - 1:  # 1-D scan: one row
                return (1, shape[y_axis])
    return None


def _read_channel(reader, base: str, sch, shape, chunks) -> xr.Dataset:
    data_vars: dict[str, Any] = {}
    coords: dict[str, Any] = {}
    for f in sch.fields:
        p = f"{base}/{f.path}"
        if not reader.has(p) or reader.is_group(p):
            continue
        if f.kind == "names":
            values = reader.read(p)
            values = [values] if isinstance(values, str) else values
            if (
                len(reader.shape(p)) > 1
                or not isinstance(values, list)
                or not all(isinstance(v, str) for v in values)
            ):
                raise FormatError(
                    f"{reader.path}: dataset '{p}' holds {reader.dtype(p)} values of shape "
                    f"{reader.shape(p)}, expected a list of names"
                )
            if f.var == "line" and len(set(values)) != len(values):
                twice = next(v for v in values if values.count(v) > 1)
                raise FormatError(f"{reader.path}: dataset '{p}' names the line {twice!r} twice")
            if values == ["None"] and f.var == "variable":
                continue
            coords[f.var] = (f.dims, values)
            continue
        if f.kind in ("text", "scalar"):
            data_vars[f.var] = ((), _scalar(reader, p), _stored_attrs(reader, p))
            continue
        _check_numeric(reader, p)
        stored = reader.shape(p)
        dims = f.dims
        if "y" in dims and shape is not None:
            y_axis = dims.index("y")
            if dims[0] == "absorber" and tuple(stored) == tuple(shape):  # xrf_proc: one absorber
                array = reader.lazy_banded(p, 0, _budget(chunks))[None]
            elif len(stored) == len(dims) - 1:  # 1-D scan: the y axis was dropped (bands along x)
                array = da.expand_dims(reader.lazy_banded(p, y_axis, _budget(chunks)), axis=y_axis)
            elif len(stored) == len(dims):
                array = reader.lazy_banded(p, y_axis, _budget(chunks))
            else:
                raise FormatError(
                    f"{reader.path}: dataset '{p}' has shape {stored}, expected dims {dims}"
                )
            if tuple(array.shape[y_axis : y_axis + 2]) != tuple(shape):
                raise FormatError(
                    f"{reader.path}: dataset '{p}' covers {array.shape[y_axis : y_axis + 2]} "
                    f"pixels, expected {shape}"
                )
            value = array
        else:
            value = np.asarray(reader.read(p))
            if value.ndim != len(dims):
                raise FormatError(
                    f"{reader.path}: dataset '{p}' has shape {value.shape}, expected dims {dims}"
                )
        data_vars[f.var] = (dims, value, with_attrs(f.var, _stored_attrs(reader, p)))
    if sch.name == "kmeans":
        sums = sorted(
            (k for k in reader.keys(base) if k.startswith("sumspec_")),
            key=lambda k: int(k.split("_")[1]),
        )
        if sums:
            data_vars["class_spectra"] = (
                ("class", "channel"),
                np.stack([np.asarray(reader.read(f"{base}/{k}")) for k in sums]),
            )
            sizes = [reader.attrs(f"{base}/{k}").get("NPixels", -1) for k in sums]
            data_vars["class_size"] = (("class",), np.asarray(sizes))
            coords["class"] = ("class", np.arange(len(sums)))
        if "class_sums" in reader.keys(base):
            _check_numeric(reader, f"{base}/class_sums")
            table = np.asarray(reader.read(f"{base}/class_sums"))
            names = coords.get("variable", (None, []))[1]
            if table.ndim != 2 or table.shape[1] != len(names):
                raise FormatError(
                    f"{reader.path}: dataset '{base}/class_sums' has shape {table.shape}, "
                    f"expected (classes, {len(names)} lines of el_id)"
                )
            data_vars["class_sums"] = (("class", "line"), table)
            coords["line"] = ("line", list(names))
            coords["class"] = ("class", np.arange(table.shape[0]))
            if "class_size" in reader.keys(base):
                _check_numeric(reader, f"{base}/class_size")
                data_vars["class_size"] = (
                    ("class",),
                    np.asarray(reader.read(f"{base}/class_size")),
                )
    try:
        ds = xr.Dataset(data_vars, coords=coords)
    except ValueError as exc:  # names and maps of different lengths...
        raise FormatError(
            f"{reader.path}: the datasets of '{base}' do not match ({first_line(exc)})"
        ) from None
    for name in list(ds.data_vars):
        if ds[name].dtype.kind in "SU" and ds[name].ndim == 0:
            ds[name] = ds[name].astype(object)
    return ds
