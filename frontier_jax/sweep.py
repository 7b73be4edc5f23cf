"""The one place that maps the model over a grid: ``jit`` of nested ``vmap``.

The outer product of the dims is never materialized as inputs: each dim's 1-D parameter
arrays enter one ``vmap`` level, so a sweep of shape (n1, ..., nk) reads n1 + ... + nk
input values and writes the dense outputs. The compiled function is cached per sweep
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

    Parameters
    ----------
    mode : str
        Model mode (static).
    dim_params : tuple of tuple of str
        For each dim, the input names that vary along it.
    names : tuple of str
        Output names to return.
    """

    def point(dim_inputs, fixed):
        p = dict(fixed)
        for d in dim_inputs:
            p.update(d)
        out = evaluate(p, mode)
        return {k: out[k] for k in names}

    fn = point
    k = len(dim_params)
    for i in reversed(range(k)):
        axes = tuple(0 if j == i else None for j in range(k))
        fn = jax.vmap(fn, in_axes=(axes, None))
    return jax.jit(fn)


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
