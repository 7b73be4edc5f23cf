"""Sweeps larger than memory: blocks sized from a budget, streamed to netCDF, Dask, devices.

A grid of shape (n1, ..., nk) is cut into *blocks* that are contiguous runs of its
flattened (C-order) points and hyperslabs of the grid at the same time: the leading split
dims take one value per block, the last split dim takes ``m`` values, the trailing dims
are whole. Each block is evaluated by the tiles of :func:`frontier_jax.sweep.run` (one
compiled function called on fixed-length runs of points that start at multiples of the
tile length), so a chunked sweep computes every point with exactly the same compiled code
and inputs as the in-memory path and the results are equal bit for bit. Each block's
outputs then go through the same conversion as the in-memory path
(:func:`frontier_jax.io.to_dataset`, ``minimize`` included) and are written into their
slice of a netCDF file that gets its final name only when the sweep is complete.

Executors:

- local (:func:`run_to_file`, :func:`run`): the next tile computes while the finished
  block is converted and written (JAX dispatches asynchronously);
- devices: with more than one JAX device, each call evaluates one tile per device over a
  1-D mesh of all devices (``jax.sharding``, :func:`frontier_jax.sweep.make_sharded_sweep`);
- Dask: :func:`lazy_dataset` gives an ``xarray.Dataset`` of Dask arrays whose chunks are
  the blocks; :func:`run_to_file` with a ``dask.distributed.Client`` evaluates blocks on
  the cluster's workers and streams them into the file on the client.

Memory: blocks are sized so that the budget holds the tiles in flight (outputs and XLA's
temporaries, the latter from the compiled tile's ``memory_analysis()``) plus the blocks
being filled, converted and written (:func:`bytes_per_point`). The process's fixed
footprint (Python, JAX, the XLA compiler) comes on top of the budget.

``minimize`` in blocks: a block must hold the minimized axes whole, so when a sweep needs
more than one block the minimized axes must be the last axes of the config (a clear
ValueError says so otherwise); each block is then minimized on its own, which is exact.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from . import io, sweep
from .config import Dim, Spec
from .variables import OUTPUTS

DEFAULT_MEMORY_FRACTION = 0.5
"""float : Share of the RAM available at start that a sweep may use by default [1]."""

# XLA temporaries per point of a compiled tile [B per byte of the float dtype], a prior
# used where no compiled tile is at hand (the Dask client); measured with
# ``memory_analysis()`` on 4-dim grids, all outputs: first-principles 635 B per point in
# float32; calibrated 64 B (float32) and 8 B (float64).
_TEMP_PRIOR = {"first-principles": 160.0, "calibrated": 16.0}

_UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


# --- memory budget ------------------------------------------------------------------------


def parse_memory(text) -> int:
    """Bytes in a memory size such as ``"4GB"``, ``"512 MiB"`` or ``"1e9"`` [B].

    Raises
    ------
    ValueError
        Naming ``--max-memory`` and the accepted forms.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        unit = m.group(2).upper() if m else None
        if not m or unit not in _UNITS:
            raise ValueError(f"--max-memory: {text!r} is not a memory size; allowed: a number of bytes "
                             "or a number with B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 4GB)")
        value = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value < 1e6:
        raise ValueError(f"--max-memory: {text!r} is too small; allowed: at least 1MB")
    return int(value)


def default_max_memory() -> int:
    """Default budget: :data:`DEFAULT_MEMORY_FRACTION` of the RAM available now [B]."""
    import psutil

    return int(DEFAULT_MEMORY_FRACTION * psutil.virtual_memory().available)


def _kernel_dtype(name: str, float_dtype) -> np.dtype:
    kind = OUTPUTS[name].kind
    return {"bool": np.dtype(bool), "int": np.dtype(np.int8), "flags": np.dtype(np.int16)}.get(kind, np.dtype(float_dtype))


def output_bytes(names, dtype) -> int:
    """Bytes of one grid point's outputs as the kernel returns them [B]."""
    return int(sum(_kernel_dtype(n, dtype).itemsize for n in names))


def bytes_per_point(names, dtype, *, minimize: bool = False) -> float:
    """Memory one point of a block needs on its way to the file [B].

    Two blocks may be open at once (one being filled by the tiles, one being written),
    the conversion to edge units copies the outputs once and the netCDF write once more;
    ``minimize`` adds the stacked copies of :func:`frontier_jax.io.minimize`.
    """
    out = output_bytes(names, dtype)
    return float(out * (4 + (3 if minimize else 0)) + 16)


def tile_bytes(names, dtype, points: int, temp_per_point: float) -> float:
    """Memory of the tiles in flight: two calls' outputs and temporaries [B]."""
    return 2.0 * points * (output_bytes(names, dtype) + temp_per_point)


def temp_prior(mode: str, dtype) -> float:
    """Prior on XLA's temporaries per point of a tile [B]."""
    return _TEMP_PRIOR.get(mode, 160.0) * np.dtype(dtype).itemsize


# --- block plan ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Block:
    """One block: its number and where it sits in the grid."""

    index: int
    start: tuple  # first grid index along each dim
    stop: tuple  # one past the last grid index along each dim
    a: int  # first flat (C-order) index
    b: int  # one past the last flat index

    @property
    def shape(self) -> tuple:
        return tuple(y - x for x, y in zip(self.start, self.stop))

    @property
    def slices(self) -> tuple:
        return tuple(slice(x, y) for x, y in zip(self.start, self.stop))

    @property
    def size(self) -> int:
        return self.b - self.a


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a grid is cut into blocks.

    Attributes
    ----------
    shape : tuple of int
        Grid shape.
    block_shape : tuple of int
        Shape of a full block: 1 along the leading split dims, ``m`` along the last split
        dim, whole along the rest (the last block along the split dim may be shorter).
    bytes_per_point : float
        Memory per point of a block [B].
    budget : int
        Memory budget [B].
    """

    shape: tuple
    block_shape: tuple
    bytes_per_point: float
    budget: int

    @property
    def counts(self) -> tuple:
        return tuple(-(-n // b) for n, b in zip(self.shape, self.block_shape))

    @property
    def n_blocks(self) -> int:
        return math.prod(self.counts)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def block_points(self) -> int:
        return math.prod(self.block_shape)

    def blocks(self):
        """Iterate over the blocks in C order (which is also the order of their points)."""
        strides = [math.prod(self.shape[i + 1:]) for i in range(len(self.shape))]
        for i, pos in enumerate(itertools.product(*(range(c) for c in self.counts))):
            start = tuple(p * b for p, b in zip(pos, self.block_shape))
            stop = tuple(min(s + b, n) for s, b, n in zip(start, self.block_shape, self.shape))
            a = sum(s * st for s, st in zip(start, strides))
            size = math.prod(y - x for x, y in zip(start, stop))
            yield Block(i, start, stop, a, a + size)


def make_plan(shape, per_point: float, budget: float, *, whole_trailing: int = 0, max_points=None) -> Plan:
    """Cut a grid into blocks of at most ``budget / per_point`` points.

    Dims are split from the first: while the rest of the grid does not fit, a dim takes one
    value per block; the first dim at which it fits takes as many values as fit, balanced
    so that the last block is not much smaller than the others. Every block is thus a
    contiguous run of the flattened grid.

    Parameters
    ----------
    shape : tuple of int
        Grid shape.
    per_point : float
        Bytes one point of a block needs [B].
    budget : float
        Bytes the blocks may use [B].
    whole_trailing : int
        Number of trailing dims every block must hold whole (the minimized dims).
    max_points : int, optional
        A cap on points per block besides the budget.

    Raises
    ------
    ValueError
        If the dims that must stay whole do not fit in the budget (names ``--max-memory``).
    """
    shape = tuple(int(n) for n in shape)
    cap = max(1, int(budget // max(per_point, 1.0)))
    if max_points is not None:
        cap = max(1, min(cap, int(max_points)))
    block = list(shape)
    if math.prod(shape) > cap:
        free = len(shape) - whole_trailing
        for d in range(len(shape)):
            if d >= free:
                need = math.prod(shape[free:]) * per_point
                raise ValueError(
                    f"--max-memory: {budget / 1e6:,.0f} MB does not hold one block; the minimized axes, "
                    f"kept whole in every block, need about {need / 1e6:,.0f} MB; allowed: a larger "
                    "--max-memory, or minimize over fewer or shorter axes"
                )
            block[d] = 1
            rest = math.prod(block)
            if rest <= cap:
                step = min(shape[d], cap // rest)
                n = -(-shape[d] // step)
                block[d] = -(-shape[d] // n)  # balanced: ceil(n_d / blocks)
                break
    return Plan(shape, tuple(block), float(per_point), int(budget))


# --- evaluating points ------------------------------------------------------------------------


@dataclasses.dataclass
class Payload:
    """Everything needed to evaluate blocks (picklable: NumPy arrays and names only)."""

    mode: str
    structure: tuple
    names: tuple
    dtype: str
    shape: tuple
    tile: int
    dim_inputs: tuple  # per dim: {name: 1-D SI array}
    fixed: dict  # {name: 0-d SI array}


def make_payload(spec: Spec, names) -> Payload:
    dim_inputs, fixed = sweep.inputs(spec)
    return Payload(
        mode=spec.mode,
        structure=sweep.structure(spec),
        names=tuple(names),
        dtype=str(np.dtype(spec.dtype)),
        shape=tuple(spec.shape),
        tile=sweep.tile_points(spec.size, spec.mode) if spec.dims else 1,
        dim_inputs=tuple({k: np.asarray(v) for k, v in d.items()} for d in dim_inputs),
        fixed={k: np.asarray(v) for k, v in fixed.items()},
    )


class Tiles:
    """The compiled tile function of a sweep on this process's devices.

    Each call evaluates ``per_call = tile * len(devices)`` consecutive points starting at
    a multiple of ``per_call``: one tile per device, split over a 1-D mesh of the devices
    when there are several (:func:`frontier_jax.sweep.make_sharded_sweep`).
    """

    def __init__(self, payload: Payload, devices=None, compile: bool = True):
        import jax

        self.payload = payload
        self.devices = tuple(devices if devices is not None else jax.devices())
        self.tile = payload.tile
        self.scalar = not payload.shape
        ndev = len(self.devices)
        self.per_call = 1 if self.scalar else self.tile * ndev
        if self.scalar:
            self.fn = sweep.make_sweep(payload.mode, payload.structure, payload.names)
        elif ndev > 1:
            self.fn = sweep.make_sharded_sweep(payload.mode, payload.structure, payload.names, self.devices)
        else:
            self.fn = sweep.make_sweep(payload.mode, payload.structure, payload.names)
        self.compile_s = 0.0
        self.temp_per_point = None
        if compile:
            t0 = time.perf_counter()
            self.fn = self.fn.lower(*self._args(0)).compile()
            self.compile_s = time.perf_counter() - t0
            try:
                ma = self.fn.memory_analysis()
                self.temp_per_point = float(ma.temp_size_in_bytes) / self.per_call
            except Exception:  # noqa: BLE001 - not every backend reports it
                pass

    def _args(self, start: int):
        p = self.payload
        if self.scalar:
            return (p.dim_inputs, p.fixed)
        if len(self.devices) > 1:
            return (p.dim_inputs, p.fixed, start + self.tile * np.arange(len(self.devices), dtype=np.int64))
        return (p.dim_inputs, p.fixed, np.int64(start))

    def dispatch(self, call: int):
        """Start call number ``call`` (points ``call * per_call`` onwards); returns its future."""
        return self.fn(*self._args(call * self.per_call))

    @staticmethod
    def collect(out) -> dict:
        return {k: np.asarray(v).reshape(-1) for k, v in out.items()}


def _calls(block: Block, per_call: int) -> range:
    return range(block.a // per_call, (block.b - 1) // per_call + 1)


def fill_blocks(tiles: Tiles, blocks, size: int):
    """Evaluate ``blocks`` (in order) with ``tiles``; yield ``(block, raw outputs)``.

    The raw outputs are NumPy arrays of the block's shape in SI units. A call shared by
    two consecutive blocks is computed once, and the next call is already running while
    the caller handles a finished block.
    """
    blocks = list(blocks)
    if not blocks:
        return
    per = tiles.per_call
    calls = sorted({c for b in blocks for c in _calls(b, per)})
    names = tiles.payload.names
    dtypes = {}
    pending = []  # open blocks: [block, buffers, points filled]
    it = iter(blocks)
    nxt = next(it, None)

    def results():
        ahead = None
        for c in calls:
            fut = (c, tiles.dispatch(c))
            if ahead is not None:
                yield ahead[0], tiles.collect(ahead[1])
            ahead = fut
        yield ahead[0], tiles.collect(ahead[1])

    for c, res in results():
        lo, hi = c * per, min(c * per + per, size)
        while nxt is not None and nxt.a < hi:
            pending.append([nxt, None, 0])
            nxt = next(it, None)
        for entry in pending:
            blk = entry[0]
            s, e = max(lo, blk.a), min(hi, blk.b)
            if s >= e:
                continue
            if entry[1] is None:
                for k in names:
                    dtypes.setdefault(k, res[k].dtype)
                entry[1] = {k: np.empty(blk.size, dtypes[k]) for k in names}
            for k in names:
                entry[1][k][s - blk.a:e - blk.a] = res[k][s - lo:e - lo]
            entry[2] += e - s
        while pending and pending[0][2] == pending[0][0].size:
            blk, buf, _ = pending.pop(0)
            yield blk, {k: v.reshape(blk.shape) for k, v in buf.items()}


def evaluate_block(payload: Payload, block: Block) -> dict:
    """Raw SI outputs of one block, NumPy arrays of the block's shape.

    A plain function of picklable arguments, for Dask workers: the tile function is
    compiled once per process (``make_sweep`` is cached and ``jit`` caches per shape) and
    runs on the worker's default device.
    """
    import jax

    tiles = Tiles(payload, devices=jax.devices()[:1], compile=False)
    for _, raw in fill_blocks(tiles, [block], math.prod(payload.shape)):
        return raw
    raise AssertionError("unreachable: a block always yields")


def block_spec(spec: Spec, block: Block) -> Spec:
    """The spec of the sub-grid a block covers (coords and parameters sliced)."""
    dims = [Dim(d.name, d.coord[sl], {k: v[sl] for k, v in d.params.items()}) for d, sl in zip(spec.dims, block.slices)]
    return dataclasses.replace(spec, dims=dims)


def block_dataset(spec: Spec, block: Block, raw: dict):
    """One block's outputs labeled as the in-memory path labels them (minimize included)."""
    return io.to_dataset(block_spec(spec, block), raw)


# --- progress -----------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr: points done, points/s, ETA.

    Parameters
    ----------
    total : int
        Points in the sweep.
    enabled : bool
        Whether to draw anything.
    stream : file, optional
        Where to draw (default ``sys.stderr``).
    min_interval : float
        Seconds between redraws on a terminal; elsewhere one line every 10 s at most [s].
    """

    def __init__(self, total: int, enabled: bool = True, stream=None, min_interval: float = 0.25):
        self.total = int(total)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self.done = 0
        self._base = 0
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def start(self, done: int = 0) -> None:
        """Start the clock (after compiling), counting ``done`` points as done before."""
        self.done = self._base = int(done)
        self.t0 = time.perf_counter()
        if self._tty:
            self._draw(force=True)

    def update(self, n: int) -> None:
        self.done += int(n)
        self._draw()

    def close(self) -> None:
        self._draw(force=True)
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def line(self) -> str:
        """The progress line: bar, percent, points done/total, points/s, ETA."""
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self._base) / elapsed if elapsed > 0 else 0.0
        frac = self.done / self.total if self.total else 1.0
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
        return (f"[{bar}] {100 * frac:5.1f}% {self.done:,}/{self.total:,} points, "
                f"{rate:,.0f} points/s, ETA {_hms(eta) if math.isfinite(eta) else '?'}")

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        interval = self.min_interval if self._tty else max(self.min_interval, 10.0)
        if not force and now - self._last < interval:
            return
        self._last = now
        self.stream.write(("\r" + self.line()) if self._tty else self.line() + "\n")
        self.stream.flush()


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --- streaming netCDF writer --------------------------------------------------------------


CHUNK_BYTES = 2**22
"""int : Largest HDF5 chunk of a streamed variable [B]."""


def chunk_shape(block_shape, itemsize: int, max_bytes: int = CHUNK_BYTES) -> tuple:
    """HDF5 chunk shape for a variable written in blocks of ``block_shape`` [elements per dim].

    The block's shape, cut down from the first dim until a chunk holds at most
    ``max_bytes``. Chunked storage is allocated chunk by chunk as blocks arrive; the
    default contiguous storage makes HDF5 allocate and write fill values over the whole
    variable at the first write (measured: 15 s and 4 GB for one float32 variable of a
    10^9-point grid before the first block lands).
    """
    chunk = [max(1, int(n)) for n in block_shape]
    cap = max(1, max_bytes // max(int(itemsize), 1))
    for d in range(len(chunk)):
        total = math.prod(chunk)
        if total <= cap:
            break
        chunk[d] = max(1, -(-chunk[d] // -(-total // cap)))
    return tuple(chunk)


class StreamWriter:
    """A netCDF4 file filled block by block.

    The layout follows what ``xarray.Dataset.to_netcdf`` writes for the in-memory path:
    coordinates and global attributes are written by xarray; each data variable is
    created with the dims, dtype and attributes of the first block's Dataset (bool as
    int8 with ``dtype = "bool"``, floats with a NaN ``_FillValue``, the ``coordinates``
    attribute naming its auxiliary coordinates), so that ``xarray.open_dataset`` reads
    back the same Dataset. Variables are stored in chunks of at most :data:`CHUNK_BYTES`
    cut from the first block's shape (:func:`chunk_shape`).
    """

    def __init__(self, path: Path, coords=None, first=None):
        import netCDF4

        self.path = Path(path)
        if first is not None:
            import xarray as xr

            xr.Dataset(coords=coords, attrs=first.attrs).to_netcdf(self.path, engine="netcdf4", format="NETCDF4")
        self.nc = netCDF4.Dataset(self.path, "a")
        self.nc.set_auto_maskandscale(False)
        if first is not None:
            self._define(first, coords)

    def _define(self, first, coords) -> None:
        aux = [c for c in coords if c not in coords.dims]
        for name, var in first.data_vars.items():
            if var.dtype == bool:
                kind = np.int8
            elif var.dtype.kind in "UO":
                kind = str
            else:
                kind = var.dtype
            fill = np.asarray(np.nan, var.dtype) if var.dtype.kind == "f" else None
            chunks = chunk_shape(var.shape, np.dtype(kind if kind is not str else object).itemsize) if var.dims else None
            v = self.nc.createVariable(name, kind, var.dims, fill_value=fill, chunksizes=chunks)
            attrs = dict(var.attrs)
            if var.dtype == bool:
                attrs["dtype"] = "bool"
            on = [c for c in aux if set(coords[c].dims) <= set(var.dims)]
            if on:
                attrs["coordinates"] = " ".join(on)
            v.setncatts(attrs)

    def write(self, ds, where: dict) -> None:
        """Write every data variable of ``ds`` at ``where`` (dim name -> slice of the file)."""
        for name, var in ds.data_vars.items():
            idx = tuple(where[d] for d in var.dims)
            vals = var.values
            if vals.dtype == bool:
                vals = vals.astype(np.int8)
            elif vals.dtype.kind == "U":
                vals = vals.astype(object)
            self.nc.variables[name][idx] = vals

    def sync(self) -> None:
        self.nc.sync()

    def close(self) -> None:
        if self.nc.isopen():
            self.nc.close()


def _coords_template(spec: Spec):
    """Coordinates of the whole sweep (those left after ``minimize``)."""
    full = io.to_dataset(dataclasses.replace(spec, minimize=()), {})
    if spec.minimize:
        full = full.drop_dims(list(spec.minimize))
    return full.coords


def _fingerprint(spec: Spec, names, plan: Plan) -> str:
    from . import __version__

    key = json.dumps([spec.text, spec.name, spec.mode, str(spec.dtype), list(names), list(plan.shape),
                      list(plan.block_shape), __version__])
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def partial_paths(path) -> tuple:
    """(partial netCDF, its progress record): hidden files next to ``path`` while a sweep runs."""
    path = Path(path)
    return path.parent / f".{path.name}.partial", path.parent / f".{path.name}.partial.json"


# --- planning -----------------------------------------------------------------------------


def check_names(spec: Spec, names=None) -> tuple:
    """The outputs to compute: ``names`` checked against the mode (default: all of them)."""
    allowed = sweep.output_names(spec.mode)
    names = tuple(names or allowed)
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"--outputs: {bad[0]!r} is not an output of mode {spec.mode!r}; allowed: {', '.join(allowed)}")
    if spec.minimize and not any(n in names for n in ("cpm_pd", "cpm_co", "cpm_cb")):
        raise ValueError("--outputs: minimize needs at least one of cpm_pd, cpm_co, cpm_cb among the outputs")
    return names


def plan_for(spec: Spec, names, max_memory=None, *, temp_per_point=None, tile_points=None, in_flight: int = 1,
             max_points=None) -> Plan:
    """The block plan of a sweep under a memory budget (default :func:`default_max_memory`).

    ``in_flight`` blocks may be held at once (Dask: results waiting to be written).

    Raises
    ------
    ValueError
        When the sweep needs several blocks, minimizes, and its minimized axes are not the
        last axes of the config; or when the minimized axes do not fit in the budget.
    """
    budget = int(max_memory) if max_memory is not None else default_max_memory()
    temp = temp_prior(spec.mode, spec.dtype) if temp_per_point is None else temp_per_point
    tile = tile_points if tile_points is not None else (sweep.tile_points(spec.size, spec.mode) if spec.dims else 1)
    left = budget - tile_bytes(names, spec.dtype, tile, temp)
    per = bytes_per_point(names, spec.dtype, minimize=bool(spec.minimize))
    room = max(left / max(in_flight, 1), per * tile)  # the floor: a block as long as a tile
    trailing = 0
    if spec.minimize:
        dims = [d.name for d in spec.dims]
        m = len(spec.minimize)
        if set(dims[len(dims) - m:]) == set(spec.minimize):
            trailing = m
        elif spec.size * per > room or (max_points is not None and spec.size > max_points):
            raise ValueError(
                f"sweep.minimize: this sweep is evaluated in blocks (about {spec.size * per / 1e6:,.0f} MB), and "
                "a block must hold the minimized axes whole; allowed: put the minimized axes "
                f"({', '.join(spec.minimize)}) last in [axes], or raise --max-memory"
            )
    return make_plan(spec.shape, per, room, whole_trailing=trailing, max_points=max_points)


# --- runners ------------------------------------------------------------------------------


def run(spec: Spec, *, names=None, max_memory=None, max_points=None, devices=None, timings: dict | None = None) -> dict:
    """The grid evaluated block by block (on all ``devices``) and assembled in memory.

    Equal to :func:`frontier_jax.sweep.run` bit for bit; a check of the blocked and
    sharded paths. :func:`run_to_file` is the memory-bounded one.
    """
    names = check_names(spec, names)
    tiles = Tiles(make_payload(spec, names), devices)
    plan = plan_for(spec, names, max_memory, temp_per_point=tiles.temp_per_point, max_points=max_points)
    out = {}
    t0 = time.perf_counter()
    for block, raw in fill_blocks(tiles, plan.blocks(), spec.size):
        for n in names:
            if n not in out:
                out[n] = np.empty(spec.shape, raw[n].dtype)
            out[n][block.slices] = raw[n]
    if timings is not None:
        timings.update(compile_s=tiles.compile_s, run_s=time.perf_counter() - t0, n_blocks=plan.n_blocks,
                       block_shape=plan.block_shape, tile=tiles.tile, devices=len(tiles.devices))
    return out


def run_to_file(spec: Spec, path, *, names=None, max_memory=None, max_points=None, progress: bool = False,
                client=None, devices=None, resume: bool = False, timings: dict | None = None,
                on_block=None) -> Path:
    """Evaluate a sweep block by block and stream it into a netCDF file.

    Parameters
    ----------
    spec : Spec
        The sweep.
    path : path
        Final file. Blocks go into a hidden partial file next to it (with a JSON record of
        the blocks written), renamed to ``path`` when the sweep is complete.
    names : sequence of str, optional
        Outputs to keep (default: every output of the mode).
    max_memory : int, optional
        Memory budget for the sweep's data [B] (default :func:`default_max_memory`).
    max_points : int, optional
        A cap on points per block besides the budget.
    progress : bool
        Draw a progress bar on stderr.
    client : dask.distributed.Client, optional
        Evaluate the blocks on this cluster's workers; this process writes the file.
    devices : sequence of jax.Device, optional
        Local devices to split each call over (default: all of them).
    resume : bool
        Continue the partial file of an interrupted run of the same sweep (same config
        text, outputs and blocks); otherwise start afresh.
    timings : dict, optional
        Receives compile_s, run_s [s], n_blocks, block_shape, budget [B], points, ...
    on_block : callable, optional
        Called with each block after it is written.

    Returns
    -------
    Path of the written file.

    Notes
    -----
    On KeyboardInterrupt the partial file and its record are kept (for ``resume``); on
    any other error they are removed. Nothing is ever written under ``path`` itself until
    the sweep is complete.
    """
    import jax

    path = Path(path)
    names = check_names(spec, names)
    path.parent.mkdir(parents=True, exist_ok=True)
    part, record = partial_paths(path)
    payload = make_payload(spec, names)
    tiles = None
    in_flight = 1
    if client is None:
        tiles = Tiles(payload, tuple(devices if devices is not None else jax.devices()))
        temp = tiles.temp_per_point
    else:
        in_flight = 2 * (sum(client.nthreads().values()) or 1)
        temp = None
    plan = plan_for(spec, names, max_memory, temp_per_point=temp, in_flight=in_flight, max_points=max_points)
    fp = _fingerprint(spec, names, plan)

    done = set()
    if resume and part.exists() and record.exists():
        try:
            rec = json.loads(record.read_text())
        except (OSError, ValueError):
            rec = {}
        if rec.get("fingerprint") == fp:
            done = set(rec.get("done", []))
    if not done:
        for f in (part, record):
            if f.exists():
                f.unlink()
    blocks = list(plan.blocks())
    todo = [b for b in blocks if b.index not in done]
    bar = Progress(spec.size, enabled=progress)
    written = set(done)
    dims = [d.name for d in spec.dims]
    writer = StreamWriter(part) if done else None

    def save_record():
        tmp = record.with_name(record.name + ".tmp")
        tmp.write_text(json.dumps({"fingerprint": fp, "n_blocks": plan.n_blocks, "done": sorted(written)}))
        os.replace(tmp, record)

    def handle(block, raw):
        nonlocal writer
        ds = block_dataset(spec, block, raw)
        if writer is None:
            writer = StreamWriter(part, _coords_template(spec), ds)
        writer.write(ds, {n: s for n, s in zip(dims, block.slices)})
        writer.sync()
        written.add(block.index)
        save_record()
        bar.update(block.size)
        if on_block is not None:
            on_block(block)

    ok = False
    try:
        bar.start(sum(b.size for b in blocks if b.index in done))
        t0 = time.perf_counter()
        if client is None:
            for block, raw in fill_blocks(tiles, todo, spec.size):
                handle(block, raw)
        else:
            _run_on_client(client, payload, todo, handle, in_flight)
        run_s = time.perf_counter() - t0
        bar.close()
        writer.close()
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(part, 0o666 & ~mask)
        os.replace(part, path)
        if record.exists():
            record.unlink()
        ok = True
    finally:
        if not ok:
            if writer is not None:
                writer.close()
            if not (sys.exc_info()[0] is KeyboardInterrupt and written):
                for f in (part, record):
                    if f.exists():
                        f.unlink()
    if timings is not None:
        timings.update(compile_s=tiles.compile_s if tiles else 0.0, run_s=run_s, n_blocks=plan.n_blocks,
                       block_shape=plan.block_shape, budget=plan.budget, bytes_per_point=plan.bytes_per_point,
                       tile=payload.tile, temp_per_point=temp, points=spec.size, resumed_blocks=len(done))
    return path


def _run_on_client(client, payload: Payload, blocks, handle, in_flight: int) -> None:
    """Submit blocks to a Dask cluster, at most ``in_flight`` at a time, and handle results."""
    from distributed import as_completed

    if not blocks:
        return
    remote = client.scatter(payload, broadcast=True)
    queue = list(blocks)
    owner = {}

    def submit(block):
        fut = client.submit(evaluate_block, remote, block, pure=False)
        owner[fut.key] = block
        return fut

    seq = as_completed([submit(b) for b in queue[:in_flight]])
    queue = queue[in_flight:]
    for fut in seq:
        block = owner.pop(fut.key)
        raw = fut.result()
        fut.release()
        if queue:
            seq.add(submit(queue.pop(0)))
        handle(block, raw)


# --- Dask -----------------------------------------------------------------------------------


def _edge_block(spec: Spec, payload: Payload, block: Block) -> dict:
    """One block in edge units, NumPy arrays keyed by output (a Dask task)."""
    ds = block_dataset(spec, block, evaluate_block(payload, block))
    return {k: v.values for k, v in ds.data_vars.items()}


def lazy_dataset(spec: Spec, *, names=None, max_memory=None, max_points=None):
    """The sweep as an ``xarray.Dataset`` of Dask arrays, one chunk per block.

    Nothing is evaluated until the Dataset (or a part of it) is computed, on whatever Dask
    scheduler is active (a ``dask.distributed.Client`` if one is). Each chunk is one
    block evaluated by the tile function and converted like the in-memory path; values,
    dims, coordinates and attributes equal ``io.to_dataset(spec, sweep.run(spec))``.

    Raises
    ------
    ValueError
        For a spec with ``minimize`` (its variables are known only after evaluation;
        :func:`run_to_file` minimizes block by block).
    """
    import dask
    import dask.array as da
    import xarray as xr

    if spec.minimize:
        raise ValueError("sweep.minimize: not supported by lazy_dataset; use run_to_file "
                         "(frontier sweep), which minimizes block by block")
    names = check_names(spec, names)
    plan = plan_for(spec, names, max_memory, max_points=max_points)
    payload = dask.delayed(make_payload(spec, names), pure=True)
    spec_d = dask.delayed(spec, pure=True)
    tasks = [(b, dask.delayed(_edge_block, pure=True)(spec_d, payload, b)) for b in plan.blocks()]
    template = io.to_dataset(spec, {})
    dims = [d.name for d in spec.dims]
    data = {}
    for n in names:
        grid = np.empty(plan.counts, dtype=object)
        dt = _kernel_dtype(n, spec.dtype)
        for b, task in tasks:
            pos = tuple(s // m for s, m in zip(b.start, plan.block_shape))
            grid[pos] = da.from_delayed(task[n], shape=b.shape, dtype=dt)
        arr = da.block(grid.tolist()) if grid.ndim else grid[()]
        data[n] = xr.Variable(dims, arr, io.var_attrs(n))
    return xr.Dataset(data, coords=template.coords, attrs=template.attrs)
