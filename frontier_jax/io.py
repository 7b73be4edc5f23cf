"""Labeled results: model outputs -> xarray.Dataset (units, long_name, history) -> netCDF.

Outputs are stored in the edge units of :data:`frontier_jax.variables.OUTPUTS` (ms,
USD/Mtok, ...); coordinates in the edge units of the inputs. Files are written
atomically: a temporary file in the destination folder, then a rename, so a failed or
interrupted write never leaves a half-written file under the requested name.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__
from .config import Spec
from .variables import ARCHS, INPUTS, OUTPUTS, STATUS_BITS


def _coord_attrs(name: str) -> dict:
    if name in INPUTS:
        v = INPUTS[name]
        return {"units": v.unit or "1", "long_name": v.doc}
    return {"long_name": f"{name} (catalog label)"}


def history_line(spec: Spec) -> str:
    """'time: frontier_jax VERSION sweep NAME (config sha256 HASH)'."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{now}: frontier_jax {__version__} sweep {spec.name!r} mode={spec.mode} (config sha256:{spec.config_hash})"


def var_attrs(name: str) -> dict:
    """CF attributes of an output variable."""
    o = OUTPUTS[name]
    attrs = {"long_name": o.long_name}
    if o.kind == "flags":
        attrs["flag_masks"] = np.asarray(list(STATUS_BITS.values()), dtype=np.int16)
        attrs["flag_meanings"] = " ".join(STATUS_BITS)
    elif o.kind == "int" and name == "best_arch":
        attrs["flag_values"] = np.asarray([-1, 0, 1, 2], dtype=np.int8)
        attrs["flag_meanings"] = "none pd co cb"
    elif o.kind != "bool":
        attrs["units"] = o.units
    return attrs


def to_dataset(spec: Spec, out: dict) -> xr.Dataset:
    """Wrap model outputs (SI, shape of the grid) as a labeled Dataset in edge units."""
    dims = [d.name for d in spec.dims]
    coords = {}
    for d in spec.dims:
        coords[d.name] = xr.Variable(d.name, d.coord.astype(str) if d.coord.dtype == object else d.coord, _coord_attrs(d.name))
        for pname, vals in d.params.items():
            if pname != d.name:
                coords[pname] = xr.Variable(d.name, vals, _coord_attrs(pname))
    data = {}
    for name, arr in out.items():
        o = OUTPUTS[name]
        a = np.asarray(arr)
        if o.kind == "bool":
            a = a.astype(bool)
        elif o.kind == "flags":
            a = a.astype(np.int16)
        elif o.kind == "int":
            a = a.astype(np.int8)
        else:
            a = a * o.scale
        data[name] = xr.Variable(dims, a, var_attrs(name))
    ds = xr.Dataset(data, coords=coords)
    fixed_attrs = {}
    on_dims = {n for d in spec.dims for n in d.params}
    for n, v in spec.fixed.items():
        if n not in on_dims and not (isinstance(v, float) and np.isnan(v)):
            var = INPUTS[n]
            fixed_attrs[f"fixed_{n}"] = var.choices[int(v)] if var.choices else float(v)
    for n, lab in spec.fixed_labels.items():
        fixed_attrs[f"fixed_{n}"] = lab
    ds.attrs.update(
        {
            "title": f"frontier_jax sweep {spec.name}",
            "mode": spec.mode,
            "history": history_line(spec),
            "frontier_jax_version": __version__,
            "config_sha256": spec.config_hash,
            "config": spec.text,
            "Conventions": "CF-1.8",
            **fixed_attrs,
        }
    )
    if spec.minimize:
        ds = minimize(ds, spec.minimize)
    return ds


def minimize(ds: xr.Dataset, over: tuple) -> xr.Dataset:
    """Keep the cheapest point over dims ``over``, per architecture (MODEL.md §7).

    Each architecture's variables are taken at its own argmin of CPM; the argmin
    coordinates are kept as ``argmin_<dim>_<arch>``; the shared terms are rebuilt from
    the selected points so that the identities of MODEL.md §3 still hold.
    """
    over = list(over)
    archs = [a for a in ARCHS if f"cpm_{a}" in ds]
    result = {}
    for a in archs:
        cpm = ds[f"cpm_{a}"]
        stacked = cpm.stack(_opt=over)
        filled = stacked.fillna(np.inf)
        idx = filled.argmin("_opt")
        own = [v for v in ds.data_vars if v.endswith(f"_{a}")]
        if a == "pd":
            own += [v for v in ("c_prefill", "c_decode", "tau_kv", "t_kv", "kv_bytes_per_request", "link_utilization",
                                "prompt_tokens", "output_tokens") if v in ds]
        if a == "co":
            own += [v for v in ("chunk_co",) if v in ds]
        for v in own:
            result[v] = ds[v].stack(_opt=over).isel(_opt=idx).drop_vars(["_opt"] + over, errors="ignore")
        for dname in over:
            sel = ds[dname].values[np.asarray(np.unravel_index(idx.values, [ds.sizes[o] for o in over])[over.index(dname)])]
            attrs = dict(ds[dname].attrs)
            attrs["long_name"] = f"{dname} at the minimum of cpm_{a}"
            result[f"argmin_{dname}_{a}"] = xr.Variable(idx.dims, sel, attrs)
    rest = ds.drop_dims(over)
    keep = {k: v for k, v in ds.data_vars.items() if k not in result and not set(over) & set(v.dims)}
    new = xr.Dataset({**keep, **result}, coords=rest.coords, attrs=ds.attrs)
    new.attrs["minimized_over"] = " ".join(over)
    _rebuild_shared(new)
    return new


def _rebuild_shared(ds: xr.Dataset) -> None:
    """Recompute delta_cpm, sigma_co and best_arch after a minimization."""
    if "cpm_pd" in ds and "cpm_co" in ds:
        ds["delta_cpm"] = (ds["cpm_co"] - ds["cpm_pd"]).assign_attrs(var_attrs("delta_cpm"))
        if "c_prefill" in ds and "prompt_tokens" in ds:
            alpha = ds["prompt_tokens"] / (ds["prompt_tokens"] + ds["output_tokens"])
            base = alpha * ds["c_prefill"] + (1 - alpha) * ds["c_decode"]
            ds["sigma_co"] = (ds["cpm_co"] - base).assign_attrs(var_attrs("sigma_co"))
    if "cpm_cb" in ds:
        best_co = np.fmin(ds["cpm_co"], ds["cpm_cb"])
        ds["delta_cpm_best_co"] = (best_co - ds["cpm_pd"]).assign_attrs(var_attrs("delta_cpm_best_co"))
    archs = [a for a in ARCHS if f"cpm_{a}" in ds]  # calibrated mode has no cpm_cb
    if archs:
        stack = np.stack([np.where(np.isfinite(ds[f"cpm_{a}"]), ds[f"cpm_{a}"], np.inf) for a in archs])
        codes = np.asarray([ARCHS.index(a) for a in archs], dtype=np.int8)
        best = codes[np.argmin(stack, axis=0)]
        best = np.where(np.all(np.isinf(stack), axis=0), np.int8(-1), best)
        ds["best_arch"] = xr.Variable(ds[f"cpm_{archs[0]}"].dims, best, var_attrs("best_arch"))


def save(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a Dataset to netCDF4 atomically (temporary file, then rename)."""
    return write_atomic(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4"))


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file (JSON, markdown) atomically (temporary file, then rename)."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def json_ready(x):
    """A copy of ``x`` that ``json.dumps(allow_nan=False)`` accepts: NaN/inf -> None, NumPy scalars -> Python."""
    if isinstance(x, dict):
        return {k: json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (non-finite numbers become null)."""
    return write_text(path, json.dumps(json_ready(obj), indent=1, allow_nan=False) + "\n")


def write_atomic(path: str | Path, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    A failure (or Ctrl-C) inside ``write`` removes the temporary file and leaves ``path``
    as it was: no half-written output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        mask = os.umask(0)  # mkstemp makes the file 0600; give it the mode an ordinary write would
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def open_dataset(path: str | Path) -> xr.Dataset:
    """Open a saved sweep (loads into memory and closes the file)."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()
