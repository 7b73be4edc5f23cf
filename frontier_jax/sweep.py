"""The one place that maps the model over a grid: ``jit`` of nested ``vmap``.

Each dim's 1-D parameter arrays enter the compiled function, which gathers every point's
inputs by its multi-index and maps the model over the flattened grid with one ``vmap``. The compiled function is cached per sweep
structure (mode, which inputs live on which dim, dtype), and ``jax.jit`` caches per
shape, so a second sweep of the same shape does not recompile.
"""
from __future__ import annotations

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


@lru_cache(maxsize=64)
def make_sweep(mode: str, dim_params: tuple, names: tuple):
    """A jitted function ``run(dim_inputs, fixed) -> dict of (n1, ..., nk) arrays``.

    The grid is flattened inside the compiled function: each point gathers its inputs
    from the 1-D per-dim arrays by its multi-index, and one ``vmap`` maps the model over
    all points. (Nesting one ``vmap`` per dim gives the same numbers but compiled about
    3-4x slower for a 4-dim first-principles sweep on this machine.)

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

    def grid(dim_inputs, fixed):
        shape = tuple(next(iter(d.values())).shape[0] for d in dim_inputs)
        if not shape:
            return point({}, fixed)
        idx = jnp.indices(shape).reshape(len(shape), -1)
        pts = {n: v[idx[k]] for k, d in enumerate(dim_inputs) for n, v in d.items()}
        out = jax.vmap(point, in_axes=(0, None))(pts, fixed)
        return {k: v.reshape(shape) for k, v in out.items()}

    return jax.jit(grid)


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
    """Evaluate the whole grid in one compiled call; returns NumPy arrays keyed by output.

    ``timings`` (optional dict) receives ``compile_s`` and ``run_s`` [s].
    """
    names = tuple(names or output_names(spec.mode))
    fn = make_sweep(spec.mode, structure(spec), names)
    dim_inputs, fixed = inputs(spec)
    t0 = time.perf_counter()
    compiled = fn.lower(dim_inputs, fixed).compile() if timings is not None else None
    t1 = time.perf_counter()
    out = (compiled or fn)(dim_inputs, fixed)
    out = jax.tree.map(lambda a: np.asarray(jax.block_until_ready(a)), out)
    t2 = time.perf_counter()
    if timings is not None:
        timings["compile_s"] = t1 - t0
        timings["run_s"] = t2 - t1
    return out
