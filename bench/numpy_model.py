"""The first-principles model in plain NumPy broadcasting: the benchmark's baseline.

A port, for timing, of the forward values of ``frontier_jax.model`` (MODEL.md §4-§7) as
they stand in this repository: same equations, same root finders (bisection with the
mantissa's number of steps, then two regula-falsi steps), same chunked-prefill search
(48-point grid, 40 golden-section steps, the pinning equation re-solved by bisection).
It has no JAX, no autodiff and no custom gradients; every array operation is a NumPy
call over all points at once (``np.where`` for branches, as the JAX code does).

What it covers (outputs): ``cpm_pd``, ``cpm_co``, ``cpm_cb``, ``delta_cpm``,
``best_arch``, with the pieces they need:

- workload (alpha, T or P, D), GPUs per instance ("auto" resolved), pair bandwidth;
- roofline phase times as maxima of affine pieces in the batch (decode step, chunked
  iteration, prefill pass) and the memory batch limit;
- M/D/1 waiting-time quantile and the utilization it allows (Erlang's formula up to two
  service times, matched exponential tail beyond);
- disaggregated prefill/decode with the link as a second queue; continuous batching
  (both TPOT kinds); chunked prefill at its optimal lane utilization rho_c;
- occupancy per request, fluid or whole instances, and the CPMs.

What it leaves out: the paper terms (c_prefill, c_decode, tau_kv, sigma_co), the hybrid,
latencies, goodputs, status bits and every other output; gradients. ``check`` in
bench/run.py compares its CPMs with the JAX model on the benchmark grid and reports the
largest relative difference.

Every function takes ``p``, a dict of SI inputs (NumPy arrays that broadcast against each
other), like the JAX model.
"""
from __future__ import annotations

import math

import numpy as np

RHO_MAX = 0.99
RHO_GRID = 48
GOLDEN_ITERS = 40
B_ACT = 2.0
_P2_COEFFS = tuple((n - 2) * (2 ** (n - 1) - n) / math.factorial(n) for n in range(3, 28))
_POLISH = 2


# --- roots ---------------------------------------------------------------------------------


def bisect_increasing(f, lo, hi, dtype):
    """Root of an increasing elementwise f on [lo, hi]; clamped to an end outside it."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, dtype), np.asarray(hi, dtype))
    f_lo = np.asarray(f(lo), dtype)
    shape = np.broadcast_shapes(lo.shape, f_lo.shape)
    lo, hi, f_lo = (np.broadcast_to(x, shape).astype(dtype) for x in (lo, hi, f_lo))
    f_hi = np.broadcast_to(np.asarray(f(hi), dtype), shape)
    below = f_lo > 0
    above = (f_hi < 0) & ~below
    a, b, fa, fb = lo.copy(), hi.copy(), f_lo.copy(), f_hi.copy()
    for _ in range(np.finfo(dtype).nmant):
        m = 0.5 * (a + b)
        fm = f(m)
        left = fm < 0
        a, b = np.where(left, m, a), np.where(left, b, m)
        fa, fb = np.where(left, fm, fa), np.where(left, fb, fm)
    x = 0.5 * (a + b)
    for _ in range(_POLISH):
        den = fb - fa
        ok = (den > 0) & np.isfinite(den) & np.isfinite(fa)
        x_rf = a - fa * (b - a) / np.where(ok, den, 1.0)
        x = np.where(ok, np.clip(x_rf, a, b), 0.5 * (a + b))
        fx = f(x)
        left = fx < 0
        a, b = np.where(left, x, a), np.where(left, b, x)
        fa, fb = np.where(left, fx, fa), np.where(left, fb, fx)
    return np.where(below, lo, np.where(above, hi, x))


# --- M/D/1 ---------------------------------------------------------------------------------


def _p2_over_rho3(rho):
    acc = np.zeros_like(rho) + _P2_COEFFS[-1]
    for c in reversed(_P2_COEFFS[:-1]):
        acc = acc * rho + c
    return acc


def _tail_at_two(rho):
    return rho * rho * rho * _p2_over_rho3(rho)


def _log_tail_at_two(rho_log):
    return 3.0 * rho_log + np.log(_p2_over_rho3(np.exp(rho_log)))


def _log_cdf_01(w, rho):
    return np.log1p(-rho) + rho * w


def _log_cdf_12(w, rho):
    u = w - 1.0
    return np.log1p(-rho) + rho * u + np.log(np.exp(rho) - rho * u)


def _log_rho_of_x(x):
    return np.log(x) - x - np.log(-np.expm1(-x))


def _lundberg_residual(x, rho):
    pos = x > 0
    xs = np.where(pos, x, 1.0)
    small = xs <= 1.0
    x_small = np.where(small, xs, 1.0)
    x_big = np.where(small, 2.0, xs)
    log_ratio = np.where(small, np.log(np.expm1(x_small) / x_small),
                         x_big + np.log(-np.expm1(-x_big)) - np.log(x_big))
    return np.where(pos, log_ratio, 0.0) + np.log(rho)


def _lundberg_bracket(rho):
    return 2.0 * (1.0 - rho), np.minimum(2.0 * (1.0 - rho) / rho, 2.0 * np.log(2.0 / rho))


def md1_wait_quantile(rho, q):
    """q-quantile of the M/D/1 wait in service times [1]."""
    rho, q = np.broadcast_arrays(rho, q)
    dt = rho.dtype
    ok = (rho > 0) & (rho < 1) & (q > 0) & (q < 1)
    rs = np.where(ok, rho, 0.5).astype(dt)
    qs = np.where(ok, q, 0.75).astype(dt)
    log_q = np.log(qs)
    log_1mr = np.log1p(-rs)
    p2 = _tail_at_two(rs)
    zero = qs <= 1.0 - rs
    first = log_q <= log_1mr + rs
    tail = (1.0 - qs) < p2
    x_lo, x_hi = _lundberg_bracket(rs)

    def residual(y):
        y_mid = np.where(tail, 1.5, y)
        y_tail = np.where(tail, y, 1.0)
        return np.where(tail, _lundberg_residual(y_tail, rs), _log_cdf_12(y_mid, rs) - log_q)

    y = bisect_increasing(residual, np.where(tail, x_lo, 1.0), np.where(tail, x_hi, 2.0), dt)
    w_first = (log_q - log_1mr) / rs
    x = np.where(tail, y, 1.0)
    ratio = np.where(tail, p2, 1.0) / np.where(tail, 1.0 - qs, 0.5)
    w_tail = 2.0 + np.log(ratio) / x
    w = np.where(zero, 0.0, np.where(first, w_first, np.where(tail, w_tail, y)))
    trivial = (rho <= 0) | (q <= 0)
    return np.where(ok, w, np.where(trivial, 0.0, np.inf)).astype(dt)


def md1_max_utilization(w_max, q, rho_max=RHO_MAX):
    """Largest utilization whose M/D/1 wait quantile meets w_max [1]."""
    w_max, q = np.broadcast_arrays(w_max, q)
    dt = w_max.dtype
    rho_max = np.asarray(rho_max, dt)
    ok = (w_max >= 0) & (q > 0) & (q < 1)
    ws = np.where(ok, w_max, 0.5).astype(dt)
    qs = np.where(ok, q, 0.5).astype(dt)
    log_q = np.log(qs)
    log_1mq = np.log1p(-qs)
    cap = np.clip(rho_max, 0.0, 1.0 - 4.0 * np.finfo(dt).eps)
    tail = ws > 2.0
    w_first = np.where(ws < 1.0, ws, 0.5)
    w_mid = np.clip(ws, 1.0, 2.0)
    w_tail = np.where(tail, ws, 3.0)
    x_lo = 2.0 * (1.0 - cap)
    big_l = -log_1mq
    x_hi = np.maximum(np.minimum(big_l / (w_tail - 2.0), 2.0 * big_l + 4.0), 2.0 * x_lo)

    def residual(y):
        r = np.where(tail, 0.5 * cap, y)
        log_f = np.where(ws < 1.0, _log_cdf_01(w_first, r), _log_cdf_12(w_mid, r))
        x = np.where(tail, y, 1.0)
        r_tail = log_1mq - _log_tail_at_two(_log_rho_of_x(x)) + x * (w_tail - 2.0)
        return np.where(tail, r_tail, log_q - log_f)

    y = bisect_increasing(residual, np.where(tail, x_lo, 0.0), np.where(tail, x_hi, cap), dt)
    rho_tail = np.exp(_log_rho_of_x(np.where(tail, y, 1.0)))
    rho = np.minimum(np.where(tail, rho_tail, y), rho_max)
    edge = np.where((w_max < 0) | (q >= 1), 0.0, rho_max)
    return np.where(ok, rho, edge).astype(dt)


# --- roofline ------------------------------------------------------------------------------


def kv_bytes_per_token(p):
    return 2.0 * p["attention_layers"] * p["kv_heads"] * p["head_dim"] * p["kv_bytes"]


def weight_bytes(p):
    return p["params_b"] * p["weight_bytes"]


def resolve_gpus(value, p):
    need = weight_bytes(p) / (0.5 * p["hbm_gb"] * p["memory_fraction"])
    auto = np.exp2(np.ceil(np.log2(np.maximum(need, 1.0))))
    return np.where(value > 0, value, auto)


def _effective(n, p):
    return n * p["peak_tflops"] * p["mfu"], n * p["hbm_tb_s"] * p["mbu"]


def _comm(n, p):
    multi = np.where(n > 1, 1.0, 0.0)
    two_l = 2.0 * p["layers"]
    return multi * two_l * p["allreduce_latency_us"], multi * two_l * 2.0 * (n - 1.0) / n * p["hidden"] * B_ACT / p["scaleup_gb_s"]


def prefill_time(n, prompt, p):
    f_e, w_e = _effective(n, p)
    c0, c1 = _comm(n, p)
    k = kv_bytes_per_token(p)
    a_flops = 2.0 * p["attention_layers"] * p["hidden"] * prompt ** 2
    weights = np.maximum(weight_bytes(p) / w_e, 2.0 * p["active_params_b"] * prompt / f_e)
    attention = np.maximum(prompt * k / w_e, a_flops / f_e)
    return weights + attention + c0 + c1 * prompt + p["step_overhead_ms"]


class Affine:
    """t(b) = max_i(a_i b + c_i)."""

    def __init__(self, slopes, icpts):
        self.slopes, self.icpts = slopes, icpts

    def __call__(self, b):
        out = None
        for a, c in zip(self.slopes, self.icpts):
            v = a * b + c
            out = v if out is None else np.maximum(out, v)
        return out

    def inverse(self, t):
        out = None
        for a, c in zip(self.slopes, self.icpts):
            pos = a > 0
            lim = np.where(pos, (t - c) / np.where(pos, a, 1.0), np.where(t >= c, np.inf, -np.inf))
            out = lim if out is None else np.minimum(out, lim)
        return out


def _combine(weight, attn, cs, ci, t0, scale):
    slopes, icpts = [], []
    for wa, wc in weight:
        for aa, ac in attn:
            slopes.append(scale * (wa + aa + cs))
            icpts.append(scale * (wc + ac + ci + t0))
    return Affine(slopes, icpts)


def step_affine(n, cbar, p):
    f_e, w_e = _effective(n, p)
    c0, c1 = _comm(n, p)
    k = kv_bytes_per_token(p)
    z = np.zeros_like(cbar)
    weight = ((z, weight_bytes(p) / w_e + z), (2.0 * p["active_params_b"] / f_e + z, z))
    attn = (((cbar + 1.0) * k / w_e, z), (4.0 * p["attention_layers"] * p["hidden"] * cbar / f_e, z))
    return _combine(weight, attn, c1, c0, p["step_overhead_ms"], 1.0)


def chunked_affine(n, cbar, prompt, beta, p):
    f_e, w_e = _effective(n, p)
    c0, c1 = _comm(n, p)
    k = kv_bytes_per_token(p)
    z = np.zeros_like(cbar)
    tok = 1.0 + beta
    weight = ((z, weight_bytes(p) / w_e + z), (2.0 * p["active_params_b"] * tok / f_e, z))
    la = p["attention_layers"] * p["hidden"]
    attn = (((4.0 * la * cbar + 2.0 * la * beta * prompt) / f_e, z),
            ((cbar + 1.0 + beta) * k / w_e, z),
            ((cbar + 1.0 + 0.5 * beta) * k / w_e, 0.5 * prompt * k / w_e))
    return _combine(weight, attn, c1 * tok, c0, p["step_overhead_ms"], 1.0 + p["kappa"])


def memory_batch(n, cbar, p):
    free = n * p["hbm_gb"] * p["memory_fraction"] - weight_bytes(p)
    return free / (cbar * kv_bytes_per_token(p) + p["state_bytes_per_seq"])


# --- architectures -------------------------------------------------------------------------


def disaggregated(p, prompt, output, n_p, n_d, bandwidth, dt):
    q = p["attainment"]
    tbt = p["tpot_kind"] > 0.5
    s_p = prefill_time(n_p, prompt, p)
    w_max = (p["ttft_slo_ms"] - s_p) / s_p
    ttft_ok = w_max >= 0
    rho_ttft = md1_max_utilization(np.maximum(w_max, 0.0).astype(dt), q)
    lam_ttft = rho_ttft / s_p
    t_kv = (kv_bytes_per_token(p) * prompt + p["state_bytes_per_seq"]) / bandwidth
    lam_link = p["max_link_utilization"] / t_kv
    lam_p = np.minimum(lam_ttft, lam_link)
    rho_link = lam_p * t_kv
    d_kv = t_kv * md1_wait_quantile(rho_link.astype(dt), q) + (1.0 - p["eta"]) * t_kv
    cbar = prompt + 0.5 * output
    step = step_affine(n_d, cbar, p)
    tpot = p["tpot_slo_ms"]
    b_mean = step.inverse(tpot - d_kv / output)
    first_gap = 1.0 / output > 1.0 - q
    b_tbt = np.where(first_gap, step.inverse(np.minimum(tpot, tpot - d_kv)), step.inverse(tpot))
    b_tpot = np.where(tbt, b_tbt, b_mean)
    b_dec = np.minimum(np.minimum(b_tpot, memory_batch(n_d, cbar, p)), p["max_batch"])
    feasible = ttft_ok & (b_dec >= 1.0) & (rho_ttft > 0)
    b = np.where(feasible, b_dec, 1.0)
    r_d = b / (output * step(b) + (1.0 - p["eta"]) * t_kv)
    return np.where(feasible, lam_p, 1.0), r_d, feasible


def _chunked_at(p, prompt, output, n, rho, q, dt, rtol=0.0):
    cbar = prompt + 0.5 * output
    beta = prompt / (output * rho)
    it = chunked_affine(n, cbar, prompt, beta, p)
    w = md1_wait_quantile(np.asarray(rho, dt), q)
    s_star = p["ttft_slo_ms"] / (1.0 + w)
    b_tpot = it.inverse(p["tpot_slo_ms"])
    b_ttft = it.inverse(s_star)
    b_const = np.minimum(memory_batch(n, cbar, p), p["max_batch"])
    b_hi = np.minimum(np.minimum(b_tpot, b_ttft), b_const)
    b_safe = np.maximum(b_hi, 1.0)
    s_c = np.maximum(1.0, output * rho / b_safe) * it(b_safe)
    feasible = (b_hi >= 1.0) & (s_c <= s_star * (1.0 + rtol))
    return dict(b_tpot=b_tpot, b_ttft=b_ttft, b_const=b_const, b_hi=b_hi, s_c=s_c, s_star=s_star,
                feasible=feasible, it=it, w=w)


def _chunked_cost(p, prompt, output, n, rho, q, dt):
    cbar = prompt + 0.5 * output
    st = _chunked_at(p, prompt, output, n, rho, q, dt)
    b = np.maximum(st["b_hi"], 1.0)
    tbar = rho * st["it"](b) + (1.0 - rho) * step_affine(n, cbar, p)(b)
    return np.where(st["feasible"], tbar / b, np.inf)


def _log(x):
    return np.log(np.maximum(x, 1e-30))


def chunked(p, prompt, output, n, dt):
    q = p["attainment"]
    lo, hi = dt(1e-4), dt(RHO_MAX)
    grid = np.linspace(lo, hi, RHO_GRID, dtype=dt)
    shape = np.broadcast_shapes(prompt.shape, output.shape, np.shape(n))
    g = grid.reshape((RHO_GRID,) + (1,) * len(shape))
    costs = _chunked_cost(p, prompt, output, n, g, q, dt)  # (RHO_GRID, *shape)
    costs = np.broadcast_to(costs, (RHO_GRID,) + shape)
    i = np.argmin(costs, axis=0)
    a = grid[np.maximum(i - 1, 0)]
    c = grid[np.minimum(i + 1, RHO_GRID - 1)]
    gold = 0.5 * (np.sqrt(5.0) - 1.0)
    for _ in range(GOLDEN_ITERS):
        x1 = c - gold * (c - a)
        x2 = a + gold * (c - a)
        f1 = _chunked_cost(p, prompt, output, n, x1, q, dt)
        f2 = _chunked_cost(p, prompt, output, n, x2, q, dt)
        a, c = np.where(f1 <= f2, a, x1), np.where(f1 <= f2, x2, c)
    cands = np.stack(np.broadcast_arrays(a, 0.5 * (a + c), c, grid[i]))
    ccost = np.broadcast_to(_chunked_cost(p, prompt, output, n, cands, q, dt), cands.shape)
    rho_star = np.take_along_axis(cands, np.argmin(ccost, axis=0)[None], axis=0)[0]

    st = _chunked_at(p, prompt, output, n, rho_star, q, dt)
    tol = 1e-4

    def close(x, y):
        return np.abs(x - y) <= tol * np.maximum(np.abs(x), np.abs(y))

    edge = np.abs(_log(st["s_c"]) - _log(st["s_star"])) <= tol
    c1 = ~edge & close(st["b_tpot"], st["b_ttft"]) & (st["b_tpot"] <= st["b_const"] * (1 + tol))
    c2 = ~edge & ~c1 & close(st["b_const"], st["b_ttft"]) & (st["b_const"] <= st["b_tpot"] * (1 + tol))
    c3 = ~edge & ~c1 & ~c2 & close(st["b_tpot"], st["b_const"]) & (st["b_tpot"] <= st["b_ttft"] * (1 + tol))

    def pin(r):
        s = _chunked_at(p, prompt, output, n, r, q, dt)
        return np.where(edge, _log(s["s_c"]) - _log(s["s_star"]),
                        np.where(c1, _log(s["b_tpot"]) - _log(s["b_ttft"]),
                                 np.where(c2, _log(s["b_const"]) - _log(s["b_ttft"]),
                                          np.where(c3, _log(s["b_tpot"]) - _log(s["b_const"]), r - rho_star))))

    lo_r = np.maximum(rho_star * (1.0 - 1e-2), lo)
    hi_r = np.minimum(rho_star * (1.0 + 1e-2), hi)
    sign = np.where(pin(hi_r) >= pin(lo_r), 1.0, -1.0)
    rho = bisect_increasing(lambda r: sign * pin(r), lo_r, hi_r, dt)
    rho = np.where(edge | c1 | c2 | c3, rho, rho_star)

    cbar = prompt + 0.5 * output
    st = _chunked_at(p, prompt, output, n, rho, q, dt, rtol=1e4 * np.finfo(dt).eps)
    feasible = st["feasible"] & np.isfinite(ccost.min(axis=0))
    b = np.where(feasible, st["b_hi"], 1.0)
    tbar = rho * st["it"](b) + (1.0 - rho) * step_affine(n, cbar, p)(b)
    return b / (output * tbar), feasible


def _ndtri(q):
    """Standard normal quantile (scalar q) [1]."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(float(q))


def continuous(p, prompt, output, n, dt):
    q = p["attainment"]
    tbt = p["tpot_kind"] > 0.5
    s = prefill_time(n, prompt, p)
    tau = s / output
    cbar = prompt + 0.5 * output
    step = step_affine(n, cbar, p)
    tpot = p["tpot_slo_ms"]
    z = np.vectorize(_ndtri, otypes=[dt])(q) if np.ndim(q) else dt(_ndtri(q))
    b_mean = None
    for a_i, c_i in zip(step.slopes, step.icpts):
        aa = a_i + tau
        disc = (z * tau) ** 2 + 4.0 * aa * (tpot - c_i)
        ok = disc >= 0
        u = (-z * tau + np.sqrt(np.where(ok, disc, 1.0))) / (2.0 * aa)
        bi = np.where(ok & (u >= 0), u * u, -np.inf)
        b_mean = bi if b_mean is None else np.minimum(b_mean, bi)
    b_a = np.minimum(output * (1.0 - q), step.inverse(tpot))
    b_b = step.inverse(tpot - s)
    b_tpot = np.where(tbt, np.maximum(b_a, b_b), b_mean)
    w_max = (p["ttft_slo_ms"] - s) / s
    ttft_ok = w_max >= 0
    rho_star = md1_max_utilization(np.maximum(w_max, 0.0).astype(dt), q)
    has = rho_star > 0
    kp = s * (1.0 - rho_star) / (output * np.where(has, rho_star, 1.0))
    b_ttft = None
    for a_i, c_i in zip(step.slopes, step.icpts):
        gap = kp - a_i
        bi = np.where(gap > 0, c_i / np.where(gap > 0, gap, 1.0), np.inf)
        b_ttft = bi if b_ttft is None else np.maximum(b_ttft, bi)
    b_ttft = np.where(has & ttft_ok, b_ttft, -np.inf)
    b_cb = np.minimum(np.minimum(np.minimum(b_tpot, b_ttft), memory_batch(n, cbar, p)), p["max_batch"])
    feasible = ttft_ok & has & (b_cb >= 1.0)
    b = np.where(feasible, b_cb, 1.0)
    rate = b / (output * (step(b) + b * tau))
    return rate, feasible


# --- costs ---------------------------------------------------------------------------------


def _occupancy(rate, arrival, feasible):
    r = np.where(feasible, rate, 1.0)
    fluid = np.isinf(arrival)
    lam = np.where(fluid, 1.0, arrival)
    occ = np.where(fluid, 1.0 / r, np.ceil(lam / r) / lam)
    return np.where(feasible, occ, np.inf)


def evaluate(p: dict, dtype=np.float64) -> dict:
    """cpm_pd, cpm_co, cpm_cb [USD/Mtok], delta_cpm, best_arch at every point of ``p``."""
    dt = np.dtype(dtype).type
    p = {k: np.asarray(v, dtype=dt) for k, v in p.items()}
    with np.errstate(all="ignore"):
        use_tokens = ~np.isnan(p["prompt_tokens"]) & ~np.isnan(p["output_tokens"])
        prompt = np.where(use_tokens, p["prompt_tokens"], p["alpha"] * p["request_tokens"])
        output = np.where(use_tokens, p["output_tokens"], (1.0 - p["alpha"]) * p["request_tokens"])
        n_p = resolve_gpus(p["tp_prefill"], p)
        n_d = resolve_gpus(p["tp_decode"], p)
        n_c = resolve_gpus(p["tp_colocated"], p)
        per_gpu = p["link_gb_s"]
        bw = np.where(np.isnan(per_gpu), p["kv_bandwidth_gbps"], np.where(np.isnan(per_gpu), 0.0, per_gpu) * np.minimum(n_p, n_d))
        price = p["price_usd_per_gpu_hr"]
        lam = p["arrival_rate"]
        served = prompt + output
        lam_p, r_d, ok_pd = disaggregated(p, prompt, output, n_p, n_d, bw, dt)
        rate_co, ok_co = chunked(p, prompt, output, n_c, dt)
        rate_cb, ok_cb = continuous(p, prompt, output, n_c, dt)
        pre = n_p * price * _occupancy(lam_p, lam, ok_pd)
        dec = n_d * price * _occupancy(r_d, lam, ok_pd)
        cpm_pd = np.where(ok_pd, (pre + dec) / served * 1e6, np.inf)
        cpm_co = np.where(ok_co, n_c * price * _occupancy(rate_co, lam, ok_co) / served * 1e6, np.inf)
        cpm_cb = np.where(ok_cb, n_c * price * _occupancy(rate_cb, lam, ok_cb) / served * 1e6, np.inf)
        both = ok_pd & ok_co
        delta = np.where(both, np.where(ok_co, cpm_co, 0.0) - np.where(both, cpm_pd, 0.0), 0.0)
        delta = np.where(both, delta, np.where(ok_pd, np.inf, np.where(ok_co, -np.inf, np.nan)))
        stack = np.stack(np.broadcast_arrays(cpm_pd, cpm_co, cpm_cb))
        best = np.argmin(stack, axis=0).astype(np.int8)
        best = np.where(np.all(np.isinf(stack), axis=0), np.int8(-1), best)
    return {"cpm_pd": cpm_pd, "cpm_co": cpm_co, "cpm_cb": cpm_cb, "delta_cpm": delta, "best_arch": best}
