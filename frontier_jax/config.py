"""Sweep configs (TOML): parse and validate in plain Python before anything is traced.

A config has three tables::

    [sweep]                      # name, mode, and optionally minimize, dtype, description
    name = "paper-breakeven"
    mode = "calibrated"          # or "first-principles"

    [axes]                       # each entry is a dim of the grid
    alpha = {start = 0.2, stop = 0.97, num = 78}
    kv_bandwidth_gbps = {start = 25, stop = 900, num = 40, log = true}
    slo = ["paper-tight", "paper-mid", "paper-relaxed"]
    tpot_slo_ms = [30, 50, "80 ms"]

    [fixed]                      # scalars
    model = "Llama-2-70B"
    hardware = "H100-SXM5-80GB"
    eta = 0.5

Values are in the edge units of :mod:`frontier_jax.variables`; a string "<number> <unit>"
may name a compatible unit (e.g. "0.5 s" for a parameter in ms). Every problem raises
:class:`ConfigError` naming the field and what is allowed.
"""
from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import catalog
from .variables import CATEGORICAL, INPUTS, MODES


class ConfigError(ValueError):
    """A config that cannot be swept; the message names the field and what is allowed."""


# Compatible units: factor to the registry's edge unit, per edge unit.
_UNIT_ALIASES = {
    "ms": {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3},
    "us": {"us": 1.0, "µs": 1.0, "ms": 1e3, "s": 1e6},
    "GB/s": {"GB/s": 1.0, "TB/s": 1e3, "MB/s": 1e-3, "Gbps": 1.0 / 8.0, "Gb/s": 1.0 / 8.0},
    "TB/s": {"TB/s": 1.0, "GB/s": 1e-3},
    "GB": {"GB": 1.0, "TB": 1e3},
    "TFLOPS": {"TFLOPS": 1.0, "PFLOPS": 1e3},
    "USD/GPU-h": {"USD/GPU-h": 1.0, "USD/GPU-hr": 1.0},
    "USD/Mtok": {"USD/Mtok": 1.0},
    "req/s": {"req/s": 1.0},
    "tokens": {"tokens": 1.0},
}

SWEEP_KEYS = {"name", "mode", "minimize", "dtype", "description"}
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Dim:
    """One grid dimension.

    Attributes
    ----------
    name : str
        Dim name: an input name or a categorical name (hardware, model, ...).
    coord : numpy.ndarray
        Index coordinate: edge-unit numbers or catalog labels.
    params : dict
        Input name -> edge-unit values along the dim (several for a catalog dim).
    """

    name: str
    coord: np.ndarray
    params: dict


@dataclass
class Spec:
    """A validated sweep: dims (outer product, in order), fixed inputs, options."""

    name: str
    mode: str
    dims: list
    fixed: dict  # input name -> edge value (float, NaN for unset)
    fixed_labels: dict = field(default_factory=dict)  # categorical name -> label
    minimize: tuple = ()
    dtype: str = "float64"
    description: str = ""
    text: str = ""

    @property
    def shape(self) -> tuple:
        return tuple(len(d.coord) for d in self.dims)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.dims else 1

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def _parse_quantity(field_name: str, value, unit: str) -> float:
    """A number, or "<number> <unit>" converted to ``unit``."""
    if isinstance(value, bool):
        raise ConfigError(f"{field_name}: expected a number in {unit}, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([-+0-9.eE]+|inf)\s*(\S.*)?\s*", value)
        if m:
            try:
                num = float(m.group(1))
            except ValueError:
                num = None
            if num is not None:
                given = (m.group(2) or unit).strip()
                table = _UNIT_ALIASES.get(unit, {unit: 1.0})
                if given in table:
                    return num * table[given]
                raise ConfigError(
                    f"{field_name}: unit {given!r} is not allowed; this parameter is in {unit!r}"
                    + (f" (also accepted: {', '.join(k for k in table if k != unit)})" if len(table) > 1 else "")
                )
    raise ConfigError(f"{field_name}: expected a number in {unit or 'plain units'}, got {value!r}")


def _edge_value(field_name: str, var, value) -> float:
    """Validate one edge value of input ``var``; return it as a float (auto -> 0)."""
    if var.choices:
        if value not in var.choices:
            raise ConfigError(f"{field_name}: {value!r} is not allowed; allowed: {var.allowed()}")
        return float(var.choices.index(value))
    if var.auto and value == "auto":
        return 0.0
    v = _parse_quantity(field_name, value, var.unit)
    if not var.in_range(v):
        raise ConfigError(f"{field_name}: {value!r} is out of range; allowed: {var.allowed()}")
    return v


def _axis_values(name: str, spec) -> list:
    """Expand an axis entry: a list, or a range table {start, stop, num, log, unit}."""
    if isinstance(spec, dict):
        extra = set(spec) - {"start", "stop", "num", "log", "unit"}
        if extra:
            raise ConfigError(f"axes.{name}: unknown range keys {sorted(extra)}; allowed: start, stop, num, log, unit")
        for k in ("start", "stop", "num"):
            if k not in spec:
                raise ConfigError(f"axes.{name}: a range needs start, stop and num; {k!r} is missing")
        num = spec["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise ConfigError(f"axes.{name}.num: expected a whole number >= 1, got {num!r}")
        unit = spec.get("unit")
        var = INPUTS.get(name)
        u = var.unit if var else ""
        start = _parse_quantity(f"axes.{name}.start", spec["start"] if unit is None else f"{spec['start']} {unit}", u)
        stop = _parse_quantity(f"axes.{name}.stop", spec["stop"] if unit is None else f"{spec['stop']} {unit}", u)
        if spec.get("log", False):
            if start <= 0 or stop <= 0:
                raise ConfigError(f"axes.{name}: a log range needs start > 0 and stop > 0")
            return list(np.geomspace(start, stop, num))
        return list(np.linspace(start, stop, num))
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"axes.{name}: the axis is empty; give at least one value")
        return spec
    raise ConfigError(f"axes.{name}: expected a list of values or a range table {{start, stop, num}}, got {spec!r}")


def _catalog_params(kind: str, label: str, field_name: str) -> dict:
    try:
        return catalog.input_values(kind, label)
    except catalog.CatalogError as e:
        raise ConfigError(f"{field_name}: {e}") from None


def load(path: str | Path) -> Spec:
    """Read and validate a sweep config file."""
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(f"config file {str(path)!r} {what}; give the path of a TOML sweep config")
    text = path.read_text()
    return parse(text, source=str(path))


def parse(text: str, source: str = "<config>") -> Spec:
    """Parse and validate config text (TOML)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    return from_dict(raw, text=text)


def from_dict(raw: dict, text: str | None = None) -> Spec:
    """Validate a config given as nested dicts (the TOML structure)."""
    unknown = set(raw) - {"sweep", "axes", "fixed"}
    if unknown:
        raise ConfigError(f"unknown tables {sorted(unknown)}; allowed: [sweep], [axes], [fixed]")
    for table in ("sweep", "axes", "fixed"):
        if not isinstance(raw.get(table, {}), dict):
            raise ConfigError(f"{table}: expected a table ([{table}] with name = value entries), got {raw[table]!r}")
    sw = raw.get("sweep", {})
    bad = set(sw) - SWEEP_KEYS
    if bad:
        raise ConfigError(f"sweep: unknown keys {sorted(bad)}; allowed: {', '.join(sorted(SWEEP_KEYS))}")
    mode = sw.get("mode", "first-principles")
    if mode not in MODES:
        raise ConfigError(f"sweep.mode: {mode!r} is not allowed; allowed: {', '.join(MODES)}")
    dtype = sw.get("dtype", "float64")
    if dtype not in DTYPES:
        raise ConfigError(f"sweep.dtype: {dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
    axes = raw.get("axes", {})
    fixed = raw.get("fixed", {})
    valid_names = sorted(INPUTS) + sorted(CATEGORICAL)

    for table, entries in (("axes", axes), ("fixed", fixed)):
        for name in entries:
            if name not in INPUTS and name not in CATEGORICAL:
                hint = _closest(name, valid_names)
                raise ConfigError(
                    f"{table}.{name}: unknown parameter"
                    + (f" (did you mean {hint!r}?)" if hint else "")
                    + f"; run 'frontier params' for the list of {len(valid_names)} names"
                )
    both = set(axes) & set(fixed)
    if both:
        raise ConfigError(f"{sorted(both)[0]}: set both as an axis and as fixed; choose one")

    explicit = set(axes) | set(fixed)
    # inputs the model would silently ignore (MODEL.md §2: one or the other)
    if "kv_bandwidth_gbps" in explicit and {"interconnect", "link_gb_s"} & explicit:
        other = sorted({"interconnect", "link_gb_s"} & explicit)[0]
        raise ConfigError(f"kv_bandwidth_gbps: set together with {other}, which sets the pair bandwidth "
                          "(link_gb_s x min(tp_prefill, tp_decode)); choose one")
    if {"prompt_tokens", "output_tokens"} & explicit and {"alpha", "request_tokens"} & explicit:
        other = sorted({"alpha", "request_tokens"} & explicit)[0]
        raise ConfigError(f"{other}: cannot be set when prompt_tokens and output_tokens are given; "
                          "use either prompt_tokens + output_tokens or alpha + request_tokens")
    if "sigma_co" in explicit:
        explicit.add("sigma_co_loss")  # an explicit sigma_co overrides the catalog's loss

    # Fixed scalars (edge units), defaults first.
    values = {n: (math.nan if v.default is None else v.default) for n, v in INPUTS.items()}
    fixed_labels = {}
    for name, v in fixed.items():
        if name in CATEGORICAL:
            if not isinstance(v, str):
                raise ConfigError(f"fixed.{name}: expected a catalog name (string), got {v!r}")
            row = _catalog_params(CATEGORICAL[name], v, f"fixed.{name}")
            fixed_labels[name] = v
            for k, val in row.items():
                if k not in explicit:
                    values[k] = math.nan if val is None else val
        else:
            if isinstance(v, (list, dict)):
                raise ConfigError(f"fixed.{name}: expected a single value; put lists in [axes]")
            values[name] = _edge_value(f"fixed.{name}", INPUTS[name], v)
    for name in ("tp_prefill", "tp_decode", "tp_colocated"):
        if name not in explicit:
            values[name] = 0.0  # auto
    if "sigma_co" in explicit and "sigma_co_loss" not in axes and "sigma_co_loss" not in fixed:
        values["sigma_co_loss"] = math.nan

    dims = []
    for name, spec in axes.items():
        vals = _axis_values(name, spec)
        if name in CATEGORICAL:
            labels, rows = [], []
            for i, lab in enumerate(vals):
                if not isinstance(lab, str):
                    raise ConfigError(f"axes.{name}[{i}]: expected a catalog name (string), got {lab!r}")
                rows.append(_catalog_params(CATEGORICAL[name], lab, f"axes.{name}[{i}]"))
                labels.append(lab)
            _no_duplicates(name, labels)
            # rows may provide different columns (only the paper's SLO bins carry
            # sigma_co_loss): a column a row lacks is NaN there, aligned with its label
            keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in explicit]
            params = {k: np.asarray([math.nan if r.get(k) is None else r[k] for r in rows], dtype=float) for k in keys}
            dims.append(Dim(name, np.asarray(labels, dtype=object), params))
        else:
            var = INPUTS[name]
            edge = [_edge_value(f"axes.{name}[{i}]", var, x) for i, x in enumerate(vals)]
            _no_duplicates(name, edge)
            coord = np.asarray([var.choices[int(e)] for e in edge], dtype=object) if var.choices else np.asarray(edge)
            dims.append(Dim(name, coord, {name: np.asarray(edge, dtype=float)}))

    minimize = sw.get("minimize", [])
    if isinstance(minimize, str):
        minimize = [minimize]
    if not isinstance(minimize, list):
        raise ConfigError(f"sweep.minimize: expected an axis name or a list of axis names, got {minimize!r}")
    dim_names = [d.name for d in dims]
    for m in minimize:
        if m not in dim_names:
            raise ConfigError(f"sweep.minimize: {m!r} is not an axis of this sweep; axes: {', '.join(dim_names) or 'none'}")

    spec = Spec(
        name=str(sw.get("name", "sweep")),
        mode=mode,
        dims=dims,
        fixed=values,
        fixed_labels=fixed_labels,
        minimize=tuple(minimize),
        dtype=dtype,
        description=str(sw.get("description", "")),
        text=text if text is not None else repr(raw),
    )
    _check_consistency(spec)
    return spec


def _no_duplicates(name, vals):
    seen = set()
    for v in vals:
        key = v if isinstance(v, str) else float(v)
        if key in seen:
            raise ConfigError(f"axes.{name}: value {v!r} appears more than once; axis values must be distinct")
        seen.add(key)


def _closest(name, options):
    import difflib

    m = difflib.get_close_matches(name, options, n=1)
    return m[0] if m else None


def varying(spec: Spec, name: str) -> np.ndarray:
    """All edge values an input takes in the sweep (axis values or the fixed value)."""
    for d in spec.dims:
        if name in d.params:
            return d.params[name]
    return np.asarray([spec.fixed[name]])


def _check_consistency(spec: Spec) -> None:
    """Cross-field rules: required inputs per mode, pairs that go together, catalog gaps."""
    def is_set(name):
        return not np.all(np.isnan(varying(spec, name)))

    def any_unset(name):
        return bool(np.any(np.isnan(varying(spec, name))))

    dims = {d.name for d in spec.dims}
    if is_set("prompt_tokens") != is_set("output_tokens"):
        raise ConfigError("prompt_tokens and output_tokens go together: set both, or neither (then alpha and request_tokens are used)")
    if is_set("prompt_tokens") and ({"alpha", "request_tokens"} & dims):
        raise ConfigError("alpha/request_tokens cannot be axes when prompt_tokens and output_tokens are set")
    for name in ("price_usd_per_gpu_hr", "peak_tflops", "hbm_tb_s", "hbm_gb", "scaleup_gb_s"):
        if any_unset(name):
            raise ConfigError(f"{name}: the chosen hardware has no value for it in the catalog (an empty cell means unknown); set {name} in [fixed]")
    if spec.mode == "calibrated":
        for name in ("c_prefill", "c_decode", "decode_batch"):
            if any_unset(name):
                raise ConfigError(f"{name}: required in calibrated mode; allowed: {INPUTS[name].allowed()}")
        if any_unset("sigma_co") and any_unset("sigma_co_loss"):
            raise ConfigError(
                "sigma_co: required in calibrated mode (USD/Mtok), or sigma_co_loss as a capacity loss; "
                "the paper's SLO bins (paper-tight, paper-mid, paper-relaxed) provide sigma_co_loss"
            )
