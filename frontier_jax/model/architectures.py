"""The three serving architectures at their SLO-feasible optimum (MODEL.md §5-§6).

Each function returns a dict of SI arrays for one architecture at one grid point:
``rate`` [requests/s per instance] per pool, the operating batch, the latencies at the
attainment quantile, feasibility and status bits. Costs are assembled in
:mod:`frontier_jax.model.first_principles`.

Optima and gradients: cost falls as the batch b grows in every architecture, so the
optimum sits where a constraint binds. Every pass time is a maximum of affine pieces in b
(:class:`frontier_jax.model.roofline.Affine`), so each binding constraint is solved for b
in closed form and derivatives carry the binding constraint's term. The chunked-prefill
lane utilization rho_c is found by a vectorized grid + golden-section search; when the
optimum sits where two constraints cross, rho_c is re-solved from that crossing with the
implicit function theorem, otherwise the envelope theorem makes a stop-gradient exact.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from ..variables import STATUS_BITS
from .queueing import RHO_MAX, md1_max_utilization, md1_wait_quantile
from typing import NamedTuple

from .roofline import Affine, chunked_affine, memory_batch, prefill_time, step_affine
from .roots import bisect_increasing

TTFT_BIT = STATUS_BITS["ttft_unattainable"]
TPOT_BIT = STATUS_BITS["tpot_unattainable"]
OOM_BIT = STATUS_BITS["out_of_memory"]
LINK_BIT = STATUS_BITS["link_bound"]
CAP_BIT = STATUS_BITS["utilization_capped"]

# Chunked prefill search over rho_c: a fixed grid, then golden-section refinement.
RHO_GRID = 48
GOLDEN_ITERS = 40


def _bits(*pairs):
    out = jnp.int32(0)
    for cond, bit in pairs:
        out = out | jnp.where(cond, jnp.int32(bit), jnp.int32(0))
    return out


def _safe(cond, x, fill):
    """x where cond else fill (use on inputs of divisions/logs: the double-where pattern)."""
    return jnp.where(cond, x, fill)


def _is_tbt(p):
    return p["tpot_kind"] > 0.5


def disaggregated(p, prompt, output, n_p, n_d, bandwidth, *, link: bool = True):
    """Disaggregated prefill/decode pools (DistServe, Splitwise, Mooncake), MODEL.md §5.

    Parameters
    ----------
    p : dict
        SI inputs.
    prompt, output : array
        P, D [tokens].
    n_p, n_d : array
        GPUs per prefill / decode instance [GPUs].
    bandwidth : array
        KV bandwidth per instance pair B [B/s].
    link : bool
        Static. False models a free, instant link (B = infinity: the phases isolated).

    Returns
    -------
    dict: lam_p [req/s per prefill instance], r_d [req/s per decode instance], batch
    [sequences], t_prefill, t_step, ttft, tpot, t_kv [s], rho_p, rho_link [1],
    feasible [bool], status [bit flags].
    """
    q = p["attainment"]
    tbt = _is_tbt(p)
    s_p = prefill_time(n_p, prompt, p)
    w_max = (p["ttft_slo_ms"] - s_p) / s_p
    ttft_ok = w_max >= 0
    rho_ttft = md1_max_utilization(jnp.maximum(w_max, 0.0), q, RHO_MAX)
    lam_ttft = rho_ttft / s_p

    if link:
        from .terms import kv_bytes_per_request

        t_kv = kv_bytes_per_request(prompt, p) / bandwidth
        lam_link = p["max_link_utilization"] / t_kv
        link_bound = lam_link < lam_ttft
        lam_p = jnp.minimum(lam_ttft, lam_link)
        rho_link = lam_p * t_kv
        d_kv = t_kv * md1_wait_quantile(rho_link, q) + (1.0 - p["eta"]) * t_kv
    else:
        t_kv = jnp.zeros_like(s_p)
        link_bound = jnp.zeros_like(ttft_ok)
        lam_p = lam_ttft
        rho_link = jnp.zeros_like(s_p)
        d_kv = jnp.zeros_like(s_p)

    cbar = prompt + 0.5 * output
    step = step_affine(n_d, cbar, p)
    tpot = p["tpot_slo_ms"]
    b_mean = step.inverse(tpot - d_kv / output)
    first_gap_counts = 1.0 / output > 1.0 - q
    b_tbt = jnp.where(first_gap_counts, step.inverse(jnp.minimum(tpot, tpot - d_kv)), step.inverse(tpot))
    b_tpot = jnp.where(tbt, b_tbt, b_mean)
    b_mem = memory_batch(n_d, cbar, p)
    b_dec = jnp.minimum(jnp.minimum(b_tpot, b_mem), p["max_batch"])
    feasible = ttft_ok & (b_dec >= 1.0) & (rho_ttft > 0)

    b = _safe(feasible, b_dec, 1.0)
    t_step = step(b)
    r_d = b / (output * t_step + (1.0 - p["eta"]) * t_kv)
    lam = _safe(feasible, lam_p, 1.0)
    rho_p = lam * s_p
    ttft = s_p * (1.0 + md1_wait_quantile(rho_p, q))
    tpot_out = jnp.where(tbt, t_step + jnp.where(first_gap_counts, d_kv, 0.0), t_step + d_kv / output)
    status = _bits(
        (~ttft_ok, TTFT_BIT),
        (b_tpot < 1.0, TPOT_BIT),
        (b_mem < 1.0, OOM_BIT),
        (link_bound, LINK_BIT),
        (ttft_ok & (rho_ttft >= RHO_MAX), CAP_BIT),
    )
    return {
        "lam_p": lam, "r_d": r_d, "batch": b, "t_prefill": s_p, "t_step": t_step,
        "ttft": ttft, "tpot": tpot_out, "t_kv": t_kv, "rho_p": rho_p, "rho_link": rho_link,
        "feasible": feasible, "status": status,
    }


class _Chunked(NamedTuple):
    b_tpot: jax.Array  # largest b with t_it(b) <= TPOT contract [sequences]
    b_ttft: jax.Array  # largest b with t_it(b) <= S* (whole prompts per chunk) [sequences]
    b_const: jax.Array  # min(b_mem, b_max) [sequences]
    b_hi: jax.Array  # min of the three [sequences]
    s_c: jax.Array  # prefill time of one prompt at b_hi [s]
    s_star: jax.Array  # largest s_c meeting TTFT at rho_c [s]
    feasible: jax.Array
    it: Affine
    w: jax.Array  # waiting-time quantile / service time at rho_c [1]


def _chunked_at(p, prompt, output, n_c, rho, q, rtol=None):
    """Chunked prefill at lane utilization rho_c: the largest batch meeting both contracts.

    For fixed rho_c, chi = beta b with beta = P/(D rho_c), so t_it is a max of affine
    pieces in b. TPOT: t_it(b) <= contract. TTFT: s_c (1 + w_q(rho_c)) <= contract, with
    s_c = max(1, D rho_c/b) t_it(b): decreasing in b below b = D rho_c (several chunks per
    prompt) and increasing above it, so TTFT allows b <= t_it^-1(S*) and needs
    s_c(b) <= S* checked at the chosen b. Cost falls with b, so b = b_hi.

    ``rtol`` [1] is the relative slack of that check: where b_hi = t_it^-1(S*) with one
    chunk per prompt, s_c = S* holds identically and only rounding decides the sign, so
    the default is a few thousand machine epsilons of the dtype.
    """
    cbar = prompt + 0.5 * output
    beta = prompt / (output * rho)
    it = chunked_affine(n_c, cbar, prompt, beta, p)
    w = md1_wait_quantile(rho, q)
    s_star = p["ttft_slo_ms"] / (1.0 + w)
    b_tpot = it.inverse(p["tpot_slo_ms"])
    b_ttft = it.inverse(s_star)
    b_const = jnp.minimum(memory_batch(n_c, cbar, p), p["max_batch"])
    b_hi = jnp.minimum(jnp.minimum(b_tpot, b_ttft), b_const)
    b_safe = jnp.maximum(b_hi, 1.0)
    s_c = jnp.maximum(1.0, output * rho / b_safe) * it(b_safe)
    if rtol is None:
        rtol = 4096 * jnp.finfo(jnp.result_type(s_c)).eps
    feasible = (b_hi >= 1.0) & (s_c <= s_star * (1.0 + rtol))
    return _Chunked(b_tpot, b_ttft, b_const, b_hi, s_c, s_star, feasible, it, w)


def _chunked_cost(p, prompt, output, n_c, rho, q):
    """Instance-seconds per decode token at rho_c (inf where infeasible) [s]."""
    cbar = prompt + 0.5 * output
    st = _chunked_at(p, prompt, output, n_c, rho, q)
    b = jnp.maximum(st.b_hi, 1.0)
    tbar = rho * st.it(b) + (1.0 - rho) * step_affine(n_c, cbar, p)(b)
    return jnp.where(st.feasible, tbar / b, jnp.inf)


def _log(x):
    return jnp.log(jnp.maximum(x, 1e-30))


def _slope_ln_cost(p, prompt, output, n_c, q):
    """r -> d ln cost / d rho_c at rho_c = r (forward mode; 0 where the cost is infinite) [1]."""

    def slope(r):
        f = lambda x: _log(_chunked_cost(p, prompt, output, n_c, x, q))  # noqa: E731
        _, d = jax.jvp(f, (r,), (jnp.ones_like(r),))
        return jnp.where(jnp.isfinite(d), d, 0.0)

    return slope


def _pieces(f: Affine, b):
    """The affine pieces a_i b + c_i of ``f`` at b, stacked [s]."""
    return jnp.stack([a * b + c for a, c in zip(f.slopes, f.intercepts)])


def _top_two(f: Affine, b, tol):
    """Indices of the two largest pieces of ``f`` at b and whether they tie within ``tol``."""
    v = _pieces(f, b)
    if v.shape[0] < 2:
        return jnp.int32(0), jnp.int32(0), jnp.bool_(False)
    order = jnp.argsort(-v)
    i, j = order[0], order[1]
    tie = jnp.abs(v[i] - v[j]) <= tol * jnp.abs(v[i])
    return i, j, tie


def chunked(p, prompt, output, n_c):
    """Colocated chunked prefill (Sarathi-Serve), MODEL.md §6.

    A share rho_c of iterations carries a chunk chi = b P/(D rho_c) besides b decodes;
    busy iteration t_it = (1+kappa) t_it(b, chi) <= TPOT contract (both kinds);
    s_c = max(1, P/chi) t_it; TTFT_q = s_c (1 + w_q(rho_c)) <= contract;
    mean iteration tbar = rho_c t_it + (1 - rho_c) t_step(b); R_co = b/(D tbar).
    Cost is minimized over (b, rho_c): b in closed form for each rho_c, rho_c by a grid
    and golden-section search. Derivatives: the active constraints at the optimum are
    identified, and rho_c is re-solved from the equation that pins it (two batch limits
    crossing, or the multi-chunk TTFT limit s_c = S*) by the implicit function theorem;
    at an interior optimum the envelope theorem makes a stop-gradient exact.

    Returns
    -------
    dict: rate [req/s per instance], batch [sequences], rho [1], chunk [tokens],
    t_prefill (s_c), t_step (tbar), ttft, tpot (t_it) [s], feasible, status.
    """
    q = p["attainment"]
    dt = jnp.result_type(prompt)
    lo = jnp.asarray(1e-4, dt)
    hi = jnp.asarray(RHO_MAX, dt)
    grid = jnp.linspace(lo, hi, RHO_GRID, dtype=dt)
    sg = jax.lax.stop_gradient
    pc = jax.tree.map(sg, p)
    P0, D0, N0 = sg(prompt), sg(output), sg(n_c)
    costs = jax.vmap(lambda r: _chunked_cost(pc, P0, D0, N0, r, q))(grid)
    i = jnp.argmin(costs)
    a = grid[jnp.maximum(i - 1, 0)]
    c = grid[jnp.minimum(i + 1, RHO_GRID - 1)]
    g = 0.5 * (jnp.sqrt(5.0) - 1.0)

    def body(_, ac):
        a, c = ac
        x1 = c - g * (c - a)
        x2 = a + g * (c - a)
        f1 = _chunked_cost(pc, P0, D0, N0, x1, q)
        f2 = _chunked_cost(pc, P0, D0, N0, x2, q)
        return jnp.where(f1 <= f2, a, x1), jnp.where(f1 <= f2, x2, c)

    a, c = jax.lax.fori_loop(0, GOLDEN_ITERS, body, (a, c))
    # the best feasible point seen: the golden bracket's ends, its middle, the grid point
    cands = jnp.stack([a, 0.5 * (a + c), c, grid[i]])
    ccost = jax.vmap(lambda r: _chunked_cost(pc, P0, D0, N0, r, q))(cands)
    rho_star = sg(cands[jnp.argmin(ccost)])

    # Which equation pins rho_c at the optimum (decided without gradients).
    st = _chunked_at(pc, P0, D0, N0, rho_star, q)
    tol = 1e-4

    def close(x, y):
        return jnp.abs(x - y) <= tol * jnp.maximum(jnp.abs(x), jnp.abs(y))

    # Candidate pinning equations, in order of precedence (jnp.select takes the first):
    # 1. the multi-chunk TTFT edge s_c(b_hi) = S*, only where a prompt spans several chunks
    #    (b_hi < D rho_c); with one chunk per prompt s_c = t_it(b_hi) and the TTFT limit is
    #    the batch limit b_ttft, handled by the crossings below;
    # 2. TTFT binding exactly where a prompt stops fitting one chunk, b_hi(rho_c) = D rho_c
    #    (beyond it s_c jumps above S*);
    # 3-5. two batch limits crossing (TPOT/TTFT, memory/TTFT, TPOT/memory);
    # 6-7. a kink of the cost: two roofline pieces of the busy (6) or idle (7) iteration time
    #    tie at b_hi, so the cost is the max of two smooth branches and its minimum sits where
    #    they cross (the envelope theorem does not hold there).
    # None: an interior optimum, where the envelope theorem makes the stop-gradient exact.
    multi = D0 * rho_star > st.b_hi * (1.0 + tol)
    ttft_binds = jnp.abs(_log(st.s_c) - _log(st.s_star)) <= tol
    # Roofline kinks are judged where the slope of the cost changes sign (rho_s), not at the
    # search's rho_star: the cost is so flat near an interior optimum that the search can
    # stop a few % away from it, next to a crossing of two pieces that is not the optimum.
    # At a true kink the sign change of the slope sits on the crossing itself.
    # rho_s solves d ln cost/d rho_c = 0 (stop-gradient) where the slope changes sign within
    # 5% of rho_star: at an interior optimum it is the optimum itself (the flat cost lets the
    # search stop ~1% off it, where the M/D/1 quantile's rounding hides the slope), so the
    # envelope theorem makes a stop-gradient on it exact.
    slope = _slope_ln_cost(pc, P0, D0, N0, q)
    lo_s = jnp.maximum(rho_star * (1.0 - 5e-2), lo)
    hi_s = jnp.minimum(rho_star * (1.0 + 5e-2), hi)
    stationary = (slope(lo_s) < 0) & (slope(hi_s) > 0)
    rho_s = sg(jnp.where(stationary, bisect_increasing(slope, lo_s, hi_s), rho_star))
    st_s = _chunked_at(pc, P0, D0, N0, rho_s, q)
    b0 = jnp.maximum(st_s.b_hi, 1.0)
    # a kink found by the bisection above ties its pieces to root precision; a looser test
    # would also catch two pieces that merely run close to each other (4e-5 apart seen)
    tie_tol = jnp.where(stationary, jnp.maximum(1e-7, 1e3 * jnp.finfo(dt).eps), tol)
    it_i, it_j, it_tie = _top_two(st_s.it, b0, tie_tol)
    id_i, id_j, id_tie = _top_two(step_affine(N0, P0 + 0.5 * D0, pc), b0, tie_tol)
    cases = [
        multi & ttft_binds,
        ttft_binds & close(D0 * rho_star, st.b_hi),
        close(st.b_tpot, st.b_ttft) & (st.b_tpot <= st.b_const * (1 + tol)),
        close(st.b_const, st.b_ttft) & (st.b_const <= st.b_tpot * (1 + tol)),
        close(st.b_tpot, st.b_const) & (st.b_tpot <= st.b_ttft * (1 + tol)),
        it_tie,
        id_tie,
    ]
    pinned = jnp.any(jnp.stack(cases))

    def pin(r):
        s = _chunked_at(p, prompt, output, n_c, r, q)
        bb = jnp.maximum(s.b_hi, 1.0)
        k_it = _pieces(s.it, bb)
        k_id = _pieces(step_affine(n_c, prompt + 0.5 * output, p), bb)
        eqs = [
            _log(s.s_c) - _log(s.s_star),
            _log(s.b_hi) - _log(output * r),
            _log(s.b_tpot) - _log(s.b_ttft),
            _log(s.b_const) - _log(s.b_ttft),
            _log(s.b_tpot) - _log(s.b_const),
            _log(k_it[it_i]) - _log(k_it[it_j]),
            _log(k_id[id_i]) - _log(k_id[id_j]),
        ]
        return jnp.select(cases, eqs, r - rho_s)

    lo_r = jnp.maximum(rho_s * (1.0 - 1e-2), lo)
    hi_r = jnp.minimum(rho_s * (1.0 + 1e-2), hi)
    # orient the pinning equation so that it increases across the bracket
    sign = sg(jnp.where(pin(hi_r) >= pin(lo_r), 1.0, -1.0))
    rho = bisect_increasing(lambda r: sign * pin(r), lo_r, hi_r)
    rho = jnp.where(pinned, rho, rho_s)

    cbar = prompt + 0.5 * output
    rtol = 1e5 * jnp.finfo(dt).eps  # the pinned rho_c sits on a constraint to root precision
    st = _chunked_at(p, prompt, output, n_c, rho, q, rtol=rtol)
    feasible = st.feasible & jnp.isfinite(ccost.min())
    b = jnp.where(feasible, st.b_hi, 1.0)
    t_it = st.it(b)
    tbar = rho * t_it + (1.0 - rho) * step_affine(n_c, cbar, p)(b)
    chunk = b * prompt / (output * rho)
    s_c = jnp.maximum(1.0, prompt / chunk) * t_it
    ttft = s_c * (1.0 + st.w)
    rate = b / (output * tbar)
    b_mem = memory_batch(n_c, cbar, p)
    tpot_fail = ~feasible & (st.b_tpot < 1.0)
    status = _bits(
        (~feasible & ~tpot_fail & (b_mem >= 1.0), TTFT_BIT),
        (tpot_fail, TPOT_BIT),
        (b_mem < 1.0, OOM_BIT),
        (feasible & (rho >= RHO_MAX * (1 - 1e-6)), CAP_BIT),
    )
    return {
        "rate": rate, "batch": b, "rho": rho, "chunk": chunk, "t_prefill": s_c,
        "t_step": tbar, "ttft": ttft, "tpot": t_it, "feasible": feasible, "status": status,
    }


def continuous(p, prompt, output, n_c):
    """Colocated continuous batching without chunking (vLLM, Orca), MODEL.md §6.

    Prefill-prioritized whole-prompt passes stall in-flight decodes; a request meets a
    Poisson number (mean b) of prefills while it decodes:
    TPOT_mean = t_step(b) + b t_pre(P)/D; R_cb = b/(D TPOT_mean);
    mean: t_step(b) + (b + z_q sqrt(b)) t_pre/D <= contract;
    tbt: stall share phi = b/D; TBT_q = t_step(b) if phi <= 1-q else t_step(b) + t_pre;
    TTFT_q = t_pre (1 + w_q(rho)), rho = b t_pre/(D TPOT_mean); b maximized.

    Returns
    -------
    dict: rate [req/s per instance], batch [sequences], t_prefill, t_step, ttft, tpot [s],
    feasible, status.
    """
    q = p["attainment"]
    tbt = _is_tbt(p)
    s = prefill_time(n_c, prompt, p)
    tau = s / output
    cbar = prompt + 0.5 * output
    step = step_affine(n_c, cbar, p)
    tpot = p["tpot_slo_ms"]
    z = norm.ppf(q)

    # mean: for each affine piece (a_i b + c_i), (a_i + tau) u^2 + z tau u + (c_i - T) <= 0, u = sqrt(b)
    b_mean = None
    for a_i, c_i in zip(step.slopes, step.intercepts):
        aa = a_i + tau
        disc = (z * tau) ** 2 + 4.0 * aa * (tpot - c_i)
        ok = disc >= 0
        u = (-z * tau + jnp.sqrt(_safe(ok, disc, 1.0))) / (2.0 * aa)
        bi = jnp.where(ok & (u >= 0), u * u, -jnp.inf)
        b_mean = bi if b_mean is None else jnp.minimum(b_mean, bi)
    b_a = jnp.minimum(output * (1.0 - q), step.inverse(tpot))
    b_b = step.inverse(tpot - s)
    b_tbt = jnp.maximum(b_a, b_b)
    b_tpot = jnp.where(tbt, b_tbt, b_mean)

    w_max = (p["ttft_slo_ms"] - s) / s
    ttft_ok = w_max >= 0
    rho_star = md1_max_utilization(jnp.maximum(w_max, 0.0), q, RHO_MAX)
    # rho(b) <= rho*  <=>  t_step(b) >= k' b,  k' = s (1 - rho*)/(rho* D)
    has = rho_star > 0
    kp = s * (1.0 - rho_star) / (output * _safe(has, rho_star, 1.0))
    b_ttft = None
    for a_i, c_i in zip(step.slopes, step.intercepts):
        gap = kp - a_i
        bi = jnp.where(gap > 0, c_i / _safe(gap > 0, gap, 1.0), jnp.inf)
        b_ttft = bi if b_ttft is None else jnp.maximum(b_ttft, bi)
    b_ttft = jnp.where(has & ttft_ok, b_ttft, -jnp.inf)

    b_mem = memory_batch(n_c, cbar, p)
    b_cb = jnp.minimum(jnp.minimum(jnp.minimum(b_tpot, b_ttft), b_mem), p["max_batch"])
    feasible = ttft_ok & has & (b_cb >= 1.0)
    b = jnp.where(feasible, b_cb, 1.0)
    t_step = step(b)
    tpot_mean = t_step + b * tau
    rate = b / (output * tpot_mean)
    rho = b * s / (output * tpot_mean)
    ttft = s * (1.0 + md1_wait_quantile(rho, q))
    tpot_q = jnp.where(
        tbt,
        t_step + jnp.where(b / output <= 1.0 - q, 0.0, s),
        t_step + (b + z * jnp.sqrt(b)) * tau,
    )
    status = _bits(
        (~ttft_ok | ~has | (b_ttft < 1.0), TTFT_BIT),
        (b_tpot < 1.0, TPOT_BIT),
        (b_mem < 1.0, OOM_BIT),
        (ttft_ok & (rho_star >= RHO_MAX), CAP_BIT),
    )
    return {
        "rate": rate, "batch": b, "t_prefill": s, "t_step": t_step, "ttft": ttft,
        "tpot": tpot_q, "feasible": feasible, "status": status,
    }
