"""One grid point: every output of MODEL.md §2 from one dict of SI inputs.

``evaluate(p, mode)`` is the single pure function the sweep engine maps over a grid. It
never knows it is being swept (no jit or vmap here). ``p`` holds every input of
:data:`frontier_jax.variables.INPUTS` in SI units (unset optional inputs are NaN; "auto"
GPUs per instance are 0).
"""
from __future__ import annotations

import jax.numpy as jnp

from . import terms
from .roofline import resolve_gpus


def workload(p):
    """(P, D) [tokens]: from prompt_tokens/output_tokens when set, else alpha and T."""
    use_tokens = ~jnp.isnan(p["prompt_tokens"]) & ~jnp.isnan(p["output_tokens"])
    pa, da = terms.lengths(p["alpha"], p["request_tokens"])
    prompt = jnp.where(use_tokens, p["prompt_tokens"], pa)
    output = jnp.where(use_tokens, p["output_tokens"], da)
    return prompt, output


def gpus(p):
    """(N_p, N_d, N_c) [GPUs], "auto" resolved (MODEL.md §2)."""
    return (
        resolve_gpus(p["tp_prefill"], p),
        resolve_gpus(p["tp_decode"], p),
        resolve_gpus(p["tp_colocated"], p),
    )


def pair_bandwidth(p, n_p, n_d):
    """B [B/s]: kv_bandwidth_gbps, or link_gb_s times min(N_p, N_d) when an interconnect is set."""
    per_gpu = p["link_gb_s"]
    return jnp.where(
        jnp.isnan(per_gpu), p["kv_bandwidth_gbps"], jnp.where(jnp.isnan(per_gpu), 0.0, per_gpu) * jnp.minimum(n_p, n_d)
    )


def evaluate(p, mode: str = "first-principles"):
    """All outputs at one point.

    Parameters
    ----------
    p : dict
        Every input, SI units (see :mod:`frontier_jax.variables`).
    mode : {"calibrated", "first-principles"}
        Static: the paper's scalar terms (MODEL.md §3) or the derived model (§4-§7).

    Returns
    -------
    dict of arrays keyed by output names, SI units (costs in USD/Mtok).
    """
    prompt, output = workload(p)
    n_p, n_d, n_c = gpus(p)
    bw = pair_bandwidth(p, n_p, n_d)
    if mode == "calibrated":
        out = terms.calibrated(p, prompt, output, n_d, bw)
        # ties go to pd (MODEL.md §7)
        out["best_arch"] = jnp.where(out["delta_cpm"] >= 0, 0, 1).astype(jnp.int8)
    elif mode == "first-principles":
        from .first_principles import first_principles

        out = first_principles(p, prompt, output, n_p, n_d, n_c, bw)
    else:
        raise ValueError(f"mode {mode!r} is not known; allowed: 'calibrated', 'first-principles'")
    out["prompt_tokens"] = prompt
    out["output_tokens"] = output
    return out
