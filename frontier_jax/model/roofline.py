"""Per-operator roofline phase times (MODEL.md §4), pure JAX, SI units.

A forward pass over n_tok tokens runs the weight operators and the attention operators,
each bound by its own roofline, plus two tensor-parallel all-reduces per layer::

    t_pass = max(W_b/W_e, 2 n n_tok/F_e) + max(A_bytes/W_e, A_flops/F_e) + t_comm + t_0
    t_comm = [N > 1] 2L (a_ar + 2(N-1)/N n_tok d_m b_act / B_su)

with F_e = N F u_F, W_e = N W u_W, W_b = n_total b_w, n = n_active (MoE), and the KV bytes
per token k = 2 L_attn h_kv d b_kv.

Every pass time used by the architectures is, as a function of the batch b (with the
chunk chi proportional to b), a *maximum of affine pieces* ``max_i(a_i b + c_i)``. The
:class:`Affine` helper keeps those pieces so that constraints ``t(b) <= T`` invert in
closed form, ``b <= min_i (T - c_i)/a_i``, which keeps the optimum's derivatives exact
(they carry the binding piece, MODEL.md §6 "The optimum and its gradients").

All functions take ``p``, a dict of SI inputs keyed by the names of
:mod:`frontier_jax.variables`, and the GPUs per instance ``n_gpu`` [GPUs].
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

B_ACT = 2.0  # bytes per activation element in the all-reduce (BF16), MODEL.md §4


def kv_bytes_per_token(p):
    """KV bytes per token k = 2 L_attn h_kv d b_kv [B]."""
    return 2.0 * p["attention_layers"] * p["kv_heads"] * p["head_dim"] * p["kv_bytes"]


def weight_bytes(p):
    """Weight bytes W_b = n_total b_w [B]."""
    return p["params_b"] * p["weight_bytes"]


def auto_gpus(p):
    """Smallest power of two N with W_b <= 0.5 N M m_f [GPUs] (MODEL.md §2 default)."""
    need = weight_bytes(p) / (0.5 * p["hbm_gb"] * p["memory_fraction"])
    return jnp.exp2(jnp.ceil(jnp.log2(jnp.maximum(need, 1.0))))


def resolve_gpus(value, p):
    """GPUs per instance: ``value`` where set (> 0), else :func:`auto_gpus` [GPUs]."""
    return jnp.where(value > 0, value, auto_gpus(p))


def _effective(n_gpu, p):
    f_e = n_gpu * p["peak_tflops"] * p["mfu"]
    w_e = n_gpu * p["hbm_tb_s"] * p["mbu"]
    return f_e, w_e


def _comm_coeffs(n_gpu, p):
    """t_comm = c0 + c1 n_tok: intercept c0 [s] and slope c1 [s/token]."""
    multi = jnp.where(n_gpu > 1, 1.0, 0.0)
    two_l = 2.0 * p["layers"]
    c0 = multi * two_l * p["allreduce_latency_us"]
    c1 = multi * two_l * 2.0 * (n_gpu - 1.0) / n_gpu * p["hidden"] * B_ACT / p["scaleup_gb_s"]
    return c0, c1


def pass_time(n_gpu, n_tok, a_flops, a_bytes, p):
    """Roofline time of one forward pass [s].

    Parameters
    ----------
    n_gpu : array
        GPUs per instance N [GPUs].
    n_tok : array
        Tokens in the pass [tokens].
    a_flops, a_bytes : array
        Attention FLOPs [FLOP] and attention bytes [B] of the pass.
    p : dict
        SI inputs.
    """
    f_e, w_e = _effective(n_gpu, p)
    c0, c1 = _comm_coeffs(n_gpu, p)
    weights = jnp.maximum(weight_bytes(p) / w_e, 2.0 * p["active_params_b"] * n_tok / f_e)
    attention = jnp.maximum(a_bytes / w_e, a_flops / f_e)
    return weights + attention + c0 + c1 * n_tok + p["step_overhead_ms"]


def prefill_time(n_gpu, prompt, p):
    """t_pre(P): one prompt of P tokens in one pass [s] (MODEL.md §4 table)."""
    k = kv_bytes_per_token(p)
    a_flops = 2.0 * p["attention_layers"] * p["hidden"] * prompt**2
    return pass_time(n_gpu, prompt, a_flops, prompt * k, p)


class Affine(NamedTuple):
    """t(b) = max_i(slopes[i] b + intercepts[i]) [s], with b in sequences."""

    slopes: tuple
    intercepts: tuple

    def __call__(self, b):
        """Evaluate t(b) [s]."""
        vals = [a * b + c for a, c in zip(self.slopes, self.intercepts)]
        out = vals[0]
        for v in vals[1:]:
            out = jnp.maximum(out, v)
        return out

    def inverse(self, t):
        """Largest b with t(b) <= t [sequences]; -inf where no b >= 0 works."""
        out = None
        for a, c in zip(self.slopes, self.intercepts):
            pos = a > 0
            safe_a = jnp.where(pos, a, 1.0)
            lim = jnp.where(pos, (t - c) / safe_a, jnp.where(t >= c, jnp.inf, -jnp.inf))
            out = lim if out is None else jnp.minimum(out, lim)
        return out


def _combine(weight_pieces, attn_pieces, comm_slope, comm_icpt, t0, scale):
    slopes, icpts = [], []
    for wa, wc in weight_pieces:
        for aa, ac in attn_pieces:
            slopes.append(scale * (wa + aa + comm_slope))
            icpts.append(scale * (wc + ac + comm_icpt + t0))
    return Affine(tuple(slopes), tuple(icpts))


def step_affine(n_gpu, cbar, p):
    """t_step(b): a decode step of b sequences at mean context cbar, as :class:`Affine`.

    A_flops = 4 L_attn d_m cbar b, A_bytes = b (cbar + 1) k (MODEL.md §4).
    """
    f_e, w_e = _effective(n_gpu, p)
    c0, c1 = _comm_coeffs(n_gpu, p)
    k = kv_bytes_per_token(p)
    zero = jnp.zeros_like(cbar)
    weight = ((zero, weight_bytes(p) / w_e + zero), (2.0 * p["active_params_b"] / f_e + zero, zero))
    attn = (
        ((cbar + 1.0) * k / w_e, zero),
        (4.0 * p["attention_layers"] * p["hidden"] * cbar / f_e, zero),
    )
    return _combine(weight, attn, c1, c0, p["step_overhead_ms"], 1.0)


def chunked_affine(n_gpu, cbar, prompt, beta, p):
    """(1+kappa) t_it(b, chi = beta b): a chunked iteration, as :class:`Affine`.

    b decodes at mean context cbar plus a chunk of chi = beta b prompt tokens;
    A_flops = 4 L_attn d_m cbar b + 2 L_attn d_m chi P and
    A_bytes = (b (cbar+1) + max(P - chi, 0)/2 + chi) k, i.e. k max(b(cbar+1+beta),
    b(cbar+1+beta/2) + P/2) (MODEL.md §4). Mixed passes are inflated by (1 + kappa).
    """
    f_e, w_e = _effective(n_gpu, p)
    c0, c1 = _comm_coeffs(n_gpu, p)
    k = kv_bytes_per_token(p)
    zero = jnp.zeros_like(cbar)
    tok = 1.0 + beta
    weight = ((zero, weight_bytes(p) / w_e + zero), (2.0 * p["active_params_b"] * tok / f_e, zero))
    la = p["attention_layers"] * p["hidden"]
    attn = (
        ((4.0 * la * cbar + 2.0 * la * beta * prompt) / f_e, zero),
        ((cbar + 1.0 + beta) * k / w_e, zero),
        ((cbar + 1.0 + 0.5 * beta) * k / w_e, 0.5 * prompt * k / w_e),
    )
    return _combine(weight, attn, c1 * tok, c0, p["step_overhead_ms"], 1.0 + p["kappa"])


def step_time(n_gpu, b, cbar, p):
    """t_step(b): one decode step of b sequences at mean context cbar [s]."""
    return step_affine(n_gpu, cbar, p)(b)


def memory_batch(n_gpu, cbar, p):
    """b_mem = (N M m_f - W_b) / (cbar k + state) [sequences] (MODEL.md §4)."""
    free = n_gpu * p["hbm_gb"] * p["memory_fraction"] - weight_bytes(p)
    return free / (cbar * kv_bytes_per_token(p) + p["state_bytes_per_seq"])
