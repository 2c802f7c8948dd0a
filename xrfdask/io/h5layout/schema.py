"""The uniform ("XProc") layout, field by field: where each Dataset variable lives in the file.

Spec ``xrf_proc.md`` section 1. Spectra are stored rows x columns x channels, image stacks as
lines x rows x columns, one ``channelXX`` group per detector; in memory xrfdask uses
``(y, x, detector, channel)`` and ``(y, x, detector, line)``. This module only describes the
mapping; :mod:`~xrfdask.io.h5layout.tree` applies it in both directions, for HDF5 and zarr alike.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Field",
    "GroupSchema",
    "RESULT_GROUPS",
    "result_schema",
    "channel_name",
    "is_channel_group",
    "SUM_GROUP",
]


@dataclass(frozen=True)
class Field:
    """One dataset of a channel group.

    path : dataset path relative to ``<group>/channelXX``.
    var : name in the Dataset (a data variable, or the coordinate given by ``kind="names"``).
    dims : dimensions as stored in the file, without ``detector``.
    kind : "array" (numeric), "names" (list of utf-8 strings, a coordinate), "text" (scalar
        string), "scalar" (number).
    compress : gzip level 4 in HDF5 (the spec's exceptions: scalars, names and strings).
    names_fixed : write names as fixed-length ``S<n>`` bytes (``norm`` does) instead of vlen.
    """

    path: str
    var: str
    dims: tuple[str, ...]
    kind: str = "array"
    compress: bool = True
    names_fixed: bool = False


@dataclass(frozen=True)
class GroupSchema:
    """A result group: its per-channel fields, group-level scalars and the variable naming it."""

    name: str
    fields: tuple[Field, ...]
    key_var: str  # a variable whose presence identifies a Dataset of this group
    group_scalars: tuple[tuple[str, str], ...] = ()  # (dataset path in the group, attrs key)
    subgrouped: bool = False  # detlim/elyield: one subgroup per reference (cnc) file


def _ims(var: str, *extra: Field, names_fixed: bool = False) -> tuple[Field, ...]:
    return (
        Field("names", "line", ("line",), "names", compress=False, names_fixed=names_fixed),
        Field("ims", var, ("line", "y", "x")),
        Field("ims_stddev", f"{var}_error", ("line", "y", "x")),
        *extra,
    )


RESULT_GROUPS: dict[str, GroupSchema] = {
    "fit": GroupSchema(
        "fit",
        _ims(
            "peak_area",
            Field("cfg", "config", (), "text", compress=False),
            Field("sum/int", "sum_area", ("line",)),
            Field("sum/bkg", "sum_background", ("line",)),
        ),
        key_var="peak_area",
    ),
    "norm": GroupSchema(
        "norm",
        _ims(
            "normalised",
            Field("sum/int", "sum_area", ("line",)),
            Field("sum/bkg", "sum_background", ("line",)),
            Field("sum/int_stddev", "sum_area_error", ("line",)),
            Field("sum/bkg_stddev", "sum_background_error", ("line",)),
            # xrfdask's own (xrf_proc reads datasets by name and ignores these): which pixels
            # entered, and the totals that undo the normalisation of the sums.
            Field("valid", "valid", ("y", "x")),
            Field("sum/I0_total", "I0_total", (), "scalar", compress=False),
            Field("sum/I0_raw_total", "I0_raw_total", (), "scalar", compress=False),
            Field("sum/time_total", "time_total", (), "scalar", compress=False),
            names_fixed=True,
        ),
        key_var="normalised",
        group_scalars=(("I0", "I0"),),
    ),
    "quant": GroupSchema(
        "quant",
        _ims(
            "concentration",
            Field("sum/int", "sum_concentration", ("line",)),
            Field("sum/int_stddev", "sum_concentration_error", ("line",)),
            # refs: a list of strings (xrf_proc writes the repr of an array: read as one name).
            Field("refs", "references", ("reference",), "names", compress=False),
            # Every absorber's ratio (xrf_proc keeps the last one only, as (y, x): read as one).
            Field("absorbers", "absorber", ("absorber",), "names", compress=False),
            Field("ratio_exp", "ratio_exp", ("absorber", "y", "x")),
            Field("ratio_th", "ratio_th", ("absorber",)),
            Field("rhot", "rhot", ("y", "x")),
        ),
        key_var="concentration",
    ),
    "rel_dif": GroupSchema(
        "rel_dif",
        _ims(
            "relative_difference",
            Field("sum/int", "sum_relative_difference", ("line",)),
            Field("sum/int_stddev", "sum_relative_difference_error", ("line",)),
            Field("cnc", "cnc", (), "text", compress=False),
        ),
        key_var="relative_difference",
    ),
    "kmeans": GroupSchema(
        "kmeans",
        (
            Field("nclusters", "n_clusters", (), "scalar", compress=False),
            Field("data_dir_clustered", "clustered_data", (), "text", compress=False),
            Field("el_id", "variable", ("variable",), "names", compress=False),
            Field("ims", "labels", ("y", "x")),
            # sumspec_<i> (channel) with attr NPixels -> class_spectra (class, channel) and
            # class_size (class): handled in tree.py.
        ),
        key_var="labels",
    ),
    "PCA": GroupSchema(
        "PCA",
        (
            Field("el_id", "variable", ("variable",), "names", compress=False),
            Field("nclusters", "n_components", (), "scalar", compress=False),
            Field("names", "component", ("component",), "names", compress=False),
            Field("ims", "scores", ("component", "y", "x")),
            Field("RVE", "explained_variance_ratio", ("component",), compress=False),
            Field("loadings", "loadings", ("variable", "component")),
        ),
        key_var="scores",
    ),
    "detlim": GroupSchema(
        "detlim",
        (
            Field("names", "line", ("line",), "names", compress=False),
            Field("1s/data", "detection_limit_1s", ("line",)),
            Field("1s/stddev", "detection_limit_1s_error", ("line",)),
            Field("1000s/data", "detection_limit_1000s", ("line",)),
            Field("1000s/stddev", "detection_limit_1000s_error", ("line",)),
        ),
        key_var="detection_limit_1s",
        group_scalars=(("unit", "unit"),),
        subgrouped=True,
    ),
    "elyield": GroupSchema(
        "elyield",
        (
            Field("names", "line", ("line",), "names", compress=False),
            Field("yield", "elemental_yield", ("line",)),
            Field("stddev", "elemental_yield_error", ("line",)),
        ),
        key_var="elemental_yield",
        subgrouped=True,
    ),
    "tomo": GroupSchema(
        "tomo",
        (
            Field("names", "line", ("line",), "names", compress=False),
            Field("rotation_center", "rotation_center", (), "scalar", compress=False),
            Field("ims", "tomogram", ("line", "ty", "tx")),
            Field("ims_stddev", "tomogram_error", ("line", "ty", "tx")),
            # tomo/I1/{rotation_center, ims (1 x P x P), names} <-> transmission (ty, tx) and
            # transmission_rotation_center: handled in tree.py (I1 is not a channel group).
        ),
        key_var="tomogram",
    ),
}

#: Raw group (spec 1.1): root ``cmd``, ``mot1``, ``mot2``; ``raw/I0``, ``raw/I1``,
#: ``raw/acquisition_time``; ``raw/channelXX/{spectra, icr, ocr, sumspec, maxspec}``. xrfdask
#: adds ``deadtime`` and ``present`` per channel when the source has them (others ignore them).
RAW_PER_PIXEL = ("I0", "I1", "acquisition_time")
RAW_MOTORS = ("mot1", "mot2")
RAW_CHANNEL_PIXEL = ("icr", "ocr", "deadtime", "present")
RAW_CHANNEL_SPECTRUM = ("sumspec", "maxspec")


def result_schema(group: str) -> GroupSchema:
    """The schema of a result group (``"fit"``, ``"norm"``, ``"detlim/nist613.cnc"``...)."""
    base = group.split("/")[0]
    try:
        return RESULT_GROUPS[base]
    except KeyError:
        known = ", ".join(["raw", *RESULT_GROUPS])
        raise ValueError(f"unknown group {group!r}; the layout has {known}") from None


SUM_GROUP = "sum"  # the detector-summed "detector": not a channelXX, so xrf_proc's scripts skip it


def channel_name(label) -> str:
    """HDF5 group name of a detector label: 0 -> "channel00"; "channel01" stays; "sum" stays."""
    if isinstance(label, bytes):
        label = label.decode()
    if isinstance(label, str):
        if label == SUM_GROUP or label.startswith("channel"):
            return label
        return f"channel{label}"
    return f"channel{int(label):02d}"


def is_channel_group(name: str) -> bool:
    """A detector's group in the layout (``channelXX``, or ``sum`` for summed detectors).

    h5py gives a name that is not UTF-8 as bytes: never one of the layout's groups.
    """
    return isinstance(name, str) and (name.startswith("channel") or name == SUM_GROUP)
