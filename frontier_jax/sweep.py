"""The one place that maps the model over a grid: ``jit`` of ``vmap`` over the grid's points.

Each dim's 1-D parameter arrays enter the compiled function, which gathers every point's
inputs by its multi-index and maps the model over the flattened grid with one ``vmap``.
The compiled function is cached per sweep structure (mode, which inputs live on which
dim, outputs), and ``jax.jit`` caches per shape, so a second sweep of the same shape does
not recompile.

Tiles. :func:`run` evaluates the flattened grid in *tiles*: calls of one compiled
function on ``tile_points(size)`` consecutive points starting at a multiple of the tile
size. :mod:`frontier_jax.chunked` evaluates larger-than-memory grids with the very same
calls (and splits them over devices with :func:`make_sharded_sweep`), so a point's value
never depends on how the sweep was cut: XLA's CPU code rounds some operations
differently in different compiled shapes (``jnp.log`` of the same float32 value changes
in the last bit with the array's length), and a shared tile function rules that out.
"""
from __future__ import annotations

import math
import time
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .config import Spec
from .model.evaluate import evaluate
from .variables import INPUTS, OUTPUTS

# Outputs each mode produces.
CALIBRATED_OUTPUTS = (
    "prompt_tokens", "output_tokens", "kv_bytes_per_request", "t_kv", "c_prefill", "c_decode",
    "tau_kv", "sigma_co", "cpm_pd", "cpm_co", "delta_cpm", "best_arch",
)


def output_names(mode: str) -> tuple:
    """Names of the output variables a mode produces."""
    if mode == "calibrated":
        return CALIBRATED_OUTPUTS
    return tuple(OUTPUTS)


def to_si(name: str, edge):
    """Edge-unit value(s) of input ``name`` in SI."""
    return np.asarray(edge, dtype=float) * INPUTS[name].si


# Points per tile, at most (per backend and mode). A first-principles tile of 2**16 points
# holds about 50 MB of outputs and XLA temporaries in float32; calibrated points are
# cheap, so their tiles are larger to keep the per-call overhead small.
TILE_MAX = {
    ("cpu", "first-principles"): 2**16,
    ("cpu", "calibrated"): 2**20,
    ("gpu", "first-principles"): 2**20,
    ("gpu", "calibrated"): 2**22,
}
TILE_ALIGN = 128
"""int : A tile's length is a multiple of this (SIMD width times unrolling, generously) [1]."""


def tile_points(size: int, mode: str, backend: str | None = None) -> int:
    """Points per tile for a grid of ``size`` points: at most :data:`TILE_MAX`, balanced.

    The grid is cut into ``ceil(size / TILE_MAX)`` tiles of equal length (rounded up to
    :data:`TILE_ALIGN`), so little is wasted on the last one. Depends only on the grid
    size, the mode and the backend, so every way of running one sweep uses the same
    tiles.
    """
    backend = backend or jax.default_backend()
    cap = TILE_MAX.get(("cpu" if backend == "cpu" else "gpu", mode), 2**16)
    n = max(1, -(-int(size) // cap))
    per = -(-int(size) // n)
    return max(TILE_ALIGN, -(-per // TILE_ALIGN) * TILE_ALIGN)


def _grid_shape(dim_inputs) -> tuple:
    return tuple(next(iter(d.values())).shape[0] for d in dim_inputs)


def grid_function(mode: str, dim_params: tuple, names: tuple):
    """The model mapped over a grid, not jitted: ``f(dim_inputs, fixed, start=None)``.

    With ``start=None`` the whole grid: a dict of (n1, ..., nk) arrays. With an integer
    ``start`` one tile: a dict of arrays of shape (tile_points(size, mode),) holding the
    points ``start, start + 1, ...`` of the flattened (C-order) grid; indices past the
    end repeat the last point.

    Parameters
    ----------
    mode : str
        Model mode (static).
    dim_params : tuple of tuple of str
        For each dim, the input names that vary along it.
    names : tuple of str
        Output names to return.
    """

    def point(pt, fixed):
        out = evaluate({**fixed, **pt}, mode)
        return {k: out[k] for k in names}

    def grid(dim_inputs, fixed, start=None):
        shape = _grid_shape(dim_inputs)
        if not shape:
            return point({}, fixed)
        if start is None:
            idx = jnp.indices(shape).reshape(len(shape), -1)
        else:
            size = math.prod(shape)
            flat = start + jnp.arange(tile_points(size, mode), dtype=jnp.asarray(start).dtype)
            idx = jnp.unravel_index(jnp.minimum(flat, size - 1), shape)
        pts = {n: v[idx[k]] for k, d in enumerate(dim_inputs) for n, v in d.items()}
        out = jax.vmap(point, in_axes=(0, None))(pts, fixed)
        return out if start is not None else {k: v.reshape(shape) for k, v in out.items()}

    return grid


@lru_cache(maxsize=64)
def make_sweep(mode: str, dim_params: tuple, names: tuple):
    """A jitted function ``run(dim_inputs, fixed) -> dict of (n1, ..., nk) arrays``.

    The grid is flattened inside the compiled function: each point gathers its inputs
    from the 1-D per-dim arrays by its multi-index, and one ``vmap`` maps the model over
    all points. (Nesting one ``vmap`` per dim gives the same numbers but compiled about
    3-4x slower for a 4-dim first-principles sweep on this machine, and ran 7x slower:
    3.2e3 against 2.4e4 points/s, float32, 10^4 points, all outputs.) A third argument
    ``start`` evaluates one tile instead (see :func:`grid_function`).

    Parameters
    ----------
    mode : str
        Model mode (static).
    dim_params : tuple of tuple of str
        For each dim, the input names that vary along it.
    names : tuple of str
        Output names to return.
    """
    return jax.jit(grid_function(mode, dim_params, names))


@lru_cache(maxsize=64)
def make_sharded_sweep(mode: str, dim_params: tuple, names: tuple, devices: tuple):
    """``run(dim_inputs, fixed, starts)``: one tile per device, all devices at once.

    ``starts`` holds one tile start per device; it is split over a 1-D mesh of the
    devices (``jax.sharding.NamedSharding``, axis ``"points"``) and each device evaluates
    its tile with the same per-tile program as :func:`make_sweep` (``jax.shard_map``).
    Inputs are replicated (they are 1-D per-dim arrays and scalars); the outputs, of
    shape (len(devices) * tile,), stay sharded along the points.

    Parameters
    ----------
    mode, dim_params, names
        As for :func:`make_sweep`.
    devices : tuple of jax.Device
        Devices of the mesh.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    mesh = Mesh(np.asarray(devices), ("points",))
    grid = grid_function(mode, dim_params, names)

    def local(dim_inputs, fixed, starts):
        return grid(dim_inputs, fixed, starts[0])

    mapped = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(), P("points")), out_specs=P("points"))
    whole = NamedSharding(mesh, P())
    split = NamedSharding(mesh, P("points"))
    return jax.jit(mapped, in_shardings=(whole, whole, split), out_shardings=split)


def inputs(spec: Spec, dtype=None):
    """SI inputs of a spec: (tuple of per-dim dicts of 1-D arrays, dict of fixed scalars)."""
    dt = jnp.dtype(dtype or spec.dtype)
    on_dims = {n for d in spec.dims for n in d.params}
    dim_inputs = tuple(
        {n: jnp.asarray(to_si(n, v), dtype=dt) for n, v in d.params.items()} for d in spec.dims
    )
    fixed = {n: jnp.asarray(to_si(n, v), dtype=dt) for n, v in spec.fixed.items() if n not in on_dims}
    return dim_inputs, fixed


def structure(spec: Spec) -> tuple:
    """The static structure of a sweep: which inputs vary along which dim."""
    return tuple(tuple(sorted(d.params)) for d in spec.dims)


def run(spec: Spec, *, names=None, timings: dict | None = None) -> dict:
    """Evaluate the whole grid, tile by tile; returns NumPy arrays keyed by output.

    ``timings`` (optional dict) receives ``compile_s`` and ``run_s`` [s].
    """
    names = tuple(names or output_names(spec.mode))
    fn = make_sweep(spec.mode, structure(spec), names)
    dim_inputs, fixed = inputs(spec)
    size = spec.size
    t0 = time.perf_counter()
    if not spec.dims:
        compiled = fn.lower(dim_inputs, fixed).compile() if timings is not None else fn
        t1 = time.perf_counter()
        out = jax.tree.map(lambda a: np.asarray(jax.block_until_ready(a)), compiled(dim_inputs, fixed))
    else:
        tile = tile_points(size, spec.mode)
        first = np.int64(0)
        compiled = fn.lower(dim_inputs, fixed, first).compile() if timings is not None else fn
        t1 = time.perf_counter()
        flat = {}
        pending = None
        for start in range(0, size, tile):
            res = compiled(dim_inputs, fixed, np.int64(start))  # dispatched; runs while we copy
            if pending is not None:
                _store(flat, *pending, size)
            pending = (start, res)
        _store(flat, *pending, size)
        out = {k: v.reshape(spec.shape) for k, v in flat.items()}
    t2 = time.perf_counter()
    if timings is not None:
        timings["compile_s"] = t1 - t0
        timings["run_s"] = t2 - t1
    return out


def _store(flat: dict, start: int, res: dict, size: int) -> None:
    for k, v in res.items():
        v = np.asarray(v)
        if k not in flat:
            flat[k] = np.empty(size, dtype=v.dtype)
        n = min(v.shape[0], size - start)
        flat[k][start:start + n] = v[:n]
