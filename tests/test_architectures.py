"""First-principles architectures (MODEL.md §4-§6): hand-worked cases, one per branch.

Each expected value is computed here, in plain Python floats, from MODEL.md's equations
(§4 roofline table, §5 disaggregated, §6 colocated), not by calling the model's code path.
The one shared primitive is the M/D/1 waiting-time quantile W_q of
:mod:`frontier_jax.model.queueing` (tested on its own); it is cross-checked here against
Erlang's exact distribution (MODEL.md §5, "within 2%") at the operating points.

Chunked prefill (§6) is checked against a brute-force search over a dense (b, rho_c)
grid written from MODEL.md §6 directly: the model's optimum must be within 1%.

All points are evaluated through one compiled, vmapped function (the sweep engine's
``make_sweep`` with every input on one dim), shared with the other first-principles test
files through its cache.
"""
import math
from decimal import Decimal, localcontext
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frontier_jax import config, sweep
from frontier_jax.model import queueing
from frontier_jax.variables import INPUTS, STATUS_BITS

FP = "first-principles"
NAMES = tuple(sorted(INPUTS))
OUT = sweep.output_names(FP)
BATCH = 32  # fixed batch shape: one compilation for every call
M = 1e6
RHO_MAX = 0.99  # highest utilization the engine lets a queue run at (queueing.RHO_MAX)

TTFT = STATUS_BITS["ttft_unattainable"]
TPOT = STATUS_BITS["tpot_unattainable"]
OOM = STATUS_BITS["out_of_memory"]
LINK = STATUS_BITS["link_bound"]
UNDEF = STATUS_BITS["term_undefined"]


# --- evaluation helpers ------------------------------------------------------------------


def si(**fixed):
    """SI inputs of one point: Llama-2-70B on H100 at the registry defaults plus ``fixed`` (edge units)."""
    base = {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB"}
    base.update(fixed)
    _, p = sweep.inputs(config.from_dict({"sweep": {"mode": FP}, "fixed": base}))
    return {k: float(v) for k, v in p.items()}


def evaluate_points(points):
    """Evaluate a list of SI input dicts; returns a list of dicts of floats (one per point)."""
    fn = sweep.make_sweep(FP, (NAMES,), OUT)
    rows = []
    for i in range(0, len(points), BATCH):
        chunk = list(points[i:i + BATCH])
        n = len(chunk)
        chunk += [chunk[-1]] * (BATCH - n)
        batch = {k: jnp.asarray([q[k] for q in chunk], dtype=jnp.float64) for k in NAMES}
        out = {k: np.asarray(v) for k, v in fn((batch,), {}).items()}
        rows += [{k: float(v[j]) for k, v in out.items()} for j in range(n)]
    return rows


_wq_jit = jax.jit(queueing.md1_wait_quantile)


def wq(rho, q):
    """W_q / s of M/D/1 (the shared primitive) [1]."""
    return np.asarray(_wq_jit(jnp.asarray(rho, dtype=jnp.float64), jnp.asarray(q, dtype=jnp.float64)))


def md1_exact_quantile(rho, q):
    """W_q / s from Erlang's exact M/D/1 CDF (MODEL.md §5), in 100-digit decimal arithmetic [1].

    F(w) = (1 - rho) sum_{k=0}^{floor(w)} (rho (k - w))^k / k! exp(-rho (k - w)).
    """
    if rho <= 1.0 - q:
        return 0.0
    with localcontext() as ctx:
        ctx.prec = 100
        r, target = Decimal(rho), Decimal(q)

        def cdf(w):
            w = Decimal(w)
            total = Decimal(0)
            for k in range(int(w) + 1):
                x = r * (k - w)
                total += x**k / Decimal(math.factorial(k)) * (-x).exp()
            return (1 - r) * total

        lo, hi = 0.0, 1.0
        while cdf(hi) < target:
            lo, hi = hi, 2.0 * hi
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if cdf(mid) < target else (lo, mid)
        return 0.5 * (lo + hi)


def sup(pred, lo, hi, iters=200):
    """Largest x in [lo, hi] with pred(x), for pred true at lo and monotone (bisection)."""
    assert pred(lo)
    if pred(hi):
        return hi
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if pred(mid) else (lo, mid)
    return lo


def auto_gpus(p):
    """Smallest power of two N with W_b <= 0.5 N M m_f (MODEL.md §2)."""
    n = 1
    while p["params_b"] * p["weight_bytes"] > 0.5 * n * p["hbm_gb"] * p["memory_fraction"]:
        n *= 2
    return n


def workload(p):
    return p["alpha"] * p["request_tokens"], (1.0 - p["alpha"]) * p["request_tokens"]


class Roofline:
    """MODEL.md §4 written out: t_pass = max(W_b/W_e, 2 n n_tok/F_e) + max(A_bytes/W_e, A_flops/F_e) + t_comm + t_0.

    Works on floats and on NumPy arrays (the brute-force grid).
    """

    def __init__(self, p, n):
        self.p, self.n = p, n
        self.fe = n * p["peak_tflops"] * p["mfu"]
        self.we = n * p["hbm_tb_s"] * p["mbu"]
        self.wb = p["params_b"] * p["weight_bytes"]
        self.k = 2.0 * p["attention_layers"] * p["kv_heads"] * p["head_dim"] * p["kv_bytes"]
        self.la_dm = p["attention_layers"] * p["hidden"]

    def comm(self, ntok):
        p, n = self.p, self.n
        if n <= 1:
            return 0.0 * ntok
        return 2.0 * p["layers"] * (p["allreduce_latency_us"] + 2.0 * (n - 1) / n * ntok * p["hidden"] * 2.0 / p["scaleup_gb_s"])

    def weight_memory(self):
        return self.wb / self.we

    def weight_compute(self, ntok):
        return 2.0 * self.p["active_params_b"] * ntok / self.fe

    def passtime(self, ntok, a_flops, a_bytes):
        return (np.maximum(self.weight_memory(), self.weight_compute(ntok))
                + np.maximum(a_bytes / self.we, a_flops / self.fe) + self.comm(ntok) + self.p["step_overhead_ms"])

    def t_pre(self, P):
        return self.passtime(P, 2.0 * self.la_dm * P**2, P * self.k)

    def t_step(self, b, cbar):
        return self.passtime(b, 4.0 * self.la_dm * cbar * b, b * (cbar + 1.0) * self.k)

    def t_it(self, b, chi, P, cbar):
        """(1 + kappa) t_it(b, chi): b decodes plus a chunk of chi prompt tokens."""
        a_flops = 4.0 * self.la_dm * cbar * b + 2.0 * self.la_dm * chi * P
        a_bytes = (b * (cbar + 1.0) + np.maximum(P - chi, 0.0) / 2.0 + chi) * self.k
        return (1.0 + self.p["kappa"]) * self.passtime(b + chi, a_flops, a_bytes)

    def b_mem(self, cbar):
        p = self.p
        return (self.n * p["hbm_gb"] * p["memory_fraction"] - self.wb) / (cbar * self.k + p["state_bytes_per_seq"])


def ref_disaggregated(p, link=True):
    """MODEL.md §5 by hand: prefill rate, link queue, decode batch, cost."""
    P, D = workload(p)
    q, n = p["attainment"], auto_gpus(p)
    rl = Roofline(p, n)
    s_p = rl.t_pre(P)
    if s_p > p["ttft_slo_ms"]:
        return {"feasible": False, "s_p": s_p}
    rho_ttft = sup(lambda r: s_p * (1.0 + wq(r, q)) <= p["ttft_slo_ms"], 0.0, RHO_MAX)
    lam_ttft = rho_ttft / s_p
    if link:
        t_kv = rl.k * P / p["kv_bandwidth_gbps"]
        lam_link = p["max_link_utilization"] / t_kv
    else:
        t_kv, lam_link = 0.0, math.inf
    lam_p = min(lam_ttft, lam_link)
    rho_link = lam_p * t_kv
    d_kv = t_kv * float(wq(rho_link, q)) + (1.0 - p["eta"]) * t_kv
    cbar = P + D / 2.0
    tpot = p["tpot_slo_ms"]
    if p["tpot_kind"] == 0.0:
        ok = lambda b: rl.t_step(b, cbar) + d_kv / D <= tpot  # noqa: E731
    elif 1.0 / D > 1.0 - q:  # the first gap (which carries d_KV) counts against TBT
        ok = lambda b: rl.t_step(b, cbar) + d_kv <= tpot and rl.t_step(b, cbar) <= tpot  # noqa: E731
    else:
        ok = lambda b: rl.t_step(b, cbar) <= tpot  # noqa: E731
    b_tpot = sup(ok, 0.0, 1e7) if ok(0.0) else -math.inf
    b_mem = rl.b_mem(cbar)
    b = min(b_tpot, b_mem, p["max_batch"])
    if b < 1.0:
        return {"feasible": False, "b_tpot": b_tpot, "b_mem": b_mem}
    t_step = rl.t_step(b, cbar)
    r_d = b / (D * t_step + (1.0 - p["eta"]) * t_kv)
    pi = n * p["price_usd_per_gpu_hr"]
    return {
        "feasible": True, "P": P, "D": D, "n": n, "rl": rl, "cbar": cbar, "s_p": s_p,
        "rho_ttft": rho_ttft, "lam_ttft": lam_ttft, "lam_link": lam_link, "lam_p": lam_p,
        "t_kv": t_kv, "rho_link": rho_link, "d_kv": d_kv, "b_tpot": b_tpot, "b_mem": b_mem,
        "b": b, "t_step": t_step, "r_d": r_d, "pi": pi,
        "cpm": (pi / lam_p + pi / r_d) / (P + D) * M,
        "c_prefill": pi / (lam_p * P) * M, "c_decode": pi * t_step / b * M,
    }


def ref_continuous(p):
    """MODEL.md §6, continuous batching by hand: the largest b meeting every constraint."""
    P, D = workload(p)
    q, n = p["attainment"], auto_gpus(p)
    rl = Roofline(p, n)
    s = rl.t_pre(P)
    cbar = P + D / 2.0
    z = NormalDist().inv_cdf(q)
    tbt = p["tpot_kind"] == 1.0

    def tpot_q(b):
        ts = rl.t_step(b, cbar)
        if tbt:
            return ts if b / D <= 1.0 - q else ts + s
        return ts + (b + z * math.sqrt(b)) * s / D

    def rho(b):
        return b * s / (D * (rl.t_step(b, cbar) + b * s / D))

    def ok(b):
        r = rho(b)
        return (tpot_q(b) <= p["tpot_slo_ms"] and r <= RHO_MAX and s * (1.0 + wq(r, q)) <= p["ttft_slo_ms"]
                and b <= rl.b_mem(cbar) and b <= p["max_batch"])

    b = sup(ok, 1.0, 1e7) if ok(1.0) else -math.inf
    if b < 1.0:
        return {"feasible": False}
    tpot_mean = rl.t_step(b, cbar) + b * s / D
    rate = b / (D * tpot_mean)
    pi = n * p["price_usd_per_gpu_hr"]
    return {"feasible": True, "b": b, "s": s, "z": z, "rl": rl, "cbar": cbar, "P": P, "D": D, "rho": rho(b),
            "tpot_q": tpot_q(b), "tpot_mean": tpot_mean, "cpm": pi / (rate * (P + D)) * M, "pi": pi}


# --- the cases -------------------------------------------------------------------------

CASES = {
    # defaults: Llama-2-70B, H100, N = 4, alpha 0.85, T = 1360, (500 ms, 50 ms) mean, q = 0.99, B = 450 GB/s
    "default": {},
    # decode batch from TPOT with the weight operator compute-bound (b > W_b F_e / (2 n W_e) ~ 221)
    "compute_bound": {"tpot_slo_ms": 35, "max_batch": 1000},
    # decode batch from TPOT with the weight operator memory-bound
    "memory_bound": {"tpot_slo_ms": 20},
    # long contexts: every architecture's batch is capped by memory
    "memory_capped": {"alpha": 0.5, "request_tokens": 16000, "ttft_slo_ms": 5000},
    # a thin link: lambda_p = max_link_utilization / t_KV
    "link_bound": {"kv_bandwidth_gbps": 3},
    # TTFT contract below the prefill pass (79.6 ms)
    "ttft_unattainable": {"ttft_slo_ms": 50},
    # TPOT contract below one decode step of one sequence (~14.5 ms)
    "tpot_unattainable": {"tpot_slo_ms": 10},
    # tbt, continuous batching: a stall (79.6 ms) never fits in 50 ms, so b <= D (1 - q)
    "cb_tbt_no_stall": {"tpot_kind": "tbt"},
    # tbt, continuous batching: t_step(b) + t_pre(P) = 100 ms binds
    "cb_tbt_stall": {"tpot_kind": "tbt", "tpot_slo_ms": 100, "ttft_slo_ms": 3000},
    # continuous batching limited by TTFT (rho(b) reaches rho*)
    "cb_ttft_bound": {"tpot_kind": "tbt", "tpot_slo_ms": 150},
    # tbt, disaggregated, 1/D > 1 - q: the first gap carries d_KV
    "pd_tbt_first_gap": {"tpot_kind": "tbt", "alpha": 0.97, "tpot_slo_ms": 25},
    # tbt, disaggregated, 1/D <= 1 - q: t_step(b) <= TBT
    "pd_tbt": {"tpot_kind": "tbt", "tpot_slo_ms": 20},
    # chunked prefill with mixed-pass overhead and a fixed step overhead
    "kappa": {"kappa": 0.3, "step_overhead_ms": 1.0},
}


@pytest.fixture(scope="module")
def cases():
    points = {name: si(**fixed) for name, fixed in CASES.items()}
    rows = evaluate_points(list(points.values()))
    return {name: (points[name], row) for name, row in zip(points, rows)}


def rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def check_pd(p, out, tol=1e-9):
    """Every disaggregated output against the hand computation; returns the reference."""
    ref = ref_disaggregated(p)
    assert ref["feasible"] and out["feasible_pd"] == 1.0
    assert out["batch_pd"] == pytest.approx(ref["b"], rel=tol)
    assert out["t_step_pd"] == pytest.approx(ref["t_step"], rel=tol)
    assert out["t_prefill_pd"] == pytest.approx(ref["s_p"], rel=1e-12)
    assert out["t_kv"] == pytest.approx(ref["t_kv"], rel=1e-12)
    assert out["rho_pd"] == pytest.approx(ref["lam_p"] * ref["s_p"], rel=tol)
    assert out["link_utilization"] == pytest.approx(ref["rho_link"], rel=tol)
    assert out["cpm_pd"] == pytest.approx(ref["cpm"], rel=tol)
    # TTFT_q = s_p (1 + W_q(rho_p)) at the operating utilization
    assert out["ttft_pd"] == pytest.approx(ref["s_p"] * (1.0 + float(wq(out["rho_pd"], p["attainment"]))), rel=1e-12)
    assert out["ttft_pd"] <= p["ttft_slo_ms"] * (1 + 1e-12)
    # phases isolated (B = inf): c_prefill, c_decode
    iso = ref_disaggregated(p, link=False)
    assert out["c_prefill"] == pytest.approx(iso["c_prefill"], rel=tol)
    assert out["c_decode"] == pytest.approx(iso["c_decode"], rel=tol)
    assert out["tau_kv"] == pytest.approx(ref["cpm"] - iso["cpm"], rel=1e-6, abs=1e-12 * ref["cpm"])
    return ref


# --- §5 disaggregated ----------------------------------------------------------------------


def test_prefill_ttft_binds_at_defaults(cases):
    p, out = cases["default"]
    ref = check_pd(p, out)
    # not link-bound: lambda_p = rho_TTFT / s_p and TTFT_q equals the contract
    assert ref["lam_ttft"] < ref["lam_link"]
    assert out["status_pd"] == 0
    assert out["ttft_pd"] == pytest.approx(p["ttft_slo_ms"], rel=1e-9)
    w = (p["ttft_slo_ms"] - ref["s_p"]) / ref["s_p"]
    assert float(wq(out["rho_pd"], p["attainment"])) == pytest.approx(w, rel=1e-9)
    # the waiting-time quantile at that utilization matches Erlang's exact M/D/1 within 2%
    assert md1_exact_quantile(out["rho_pd"], p["attainment"]) == pytest.approx(w, rel=0.02)
    # the decode batch sits at max_batch (256 < b_TPOT, b_mem = 364)
    assert out["batch_pd"] == p["max_batch"] < min(ref["b_tpot"], ref["b_mem"])


def test_compute_bound_decode(cases):
    p, out = cases["compute_bound"]
    ref = check_pd(p, out)
    rl, b = ref["rl"], ref["b"]
    assert rl.weight_compute(b) > rl.weight_memory()  # the weight operator is compute-bound
    assert ref["b_tpot"] < min(ref["b_mem"], p["max_batch"])  # TPOT binds
    # t_step by its compute-bound pieces: 2 n b / F_e + b (cbar+1) k / W_e + t_comm
    t = 2 * p["active_params_b"] * b / rl.fe + b * (ref["cbar"] + 1) * rl.k / rl.we + rl.comm(b)
    assert out["t_step_pd"] == pytest.approx(t, rel=1e-12)
    assert out["tpot_pd"] == pytest.approx(p["tpot_slo_ms"], rel=1e-9)
    assert out["tpot_pd"] == pytest.approx(out["t_step_pd"] + ref["d_kv"] / ref["D"], rel=1e-12)


def test_memory_bound_decode(cases):
    p, out = cases["memory_bound"]
    ref = check_pd(p, out)
    rl, b = ref["rl"], ref["b"]
    assert rl.weight_compute(b) < rl.weight_memory()  # the weight operator is memory-bound
    assert ref["b_tpot"] < min(ref["b_mem"], p["max_batch"])
    t = rl.wb / rl.we + b * (ref["cbar"] + 1) * rl.k / rl.we + rl.comm(b)
    assert out["t_step_pd"] == pytest.approx(t, rel=1e-12)
    # mean TPOT: t_step(b) + d_KV / D = contract
    assert out["tpot_pd"] == pytest.approx(p["tpot_slo_ms"], rel=1e-9)


def test_memory_capped_batch(cases):
    p, out = cases["memory_capped"]
    ref = check_pd(p, out)
    P, D = workload(p)
    n = auto_gpus(p)
    b_mem = (n * p["hbm_gb"] * p["memory_fraction"] - p["params_b"] * p["weight_bytes"]) / ((P + D / 2) * 327_680.0)
    assert ref["b_mem"] == pytest.approx(b_mem, rel=1e-12)
    assert b_mem < min(ref["b_tpot"], p["max_batch"])
    for arch in ("pd", "co", "cb"):
        assert out[f"feasible_{arch}"] == 1.0
        assert out[f"batch_{arch}"] == pytest.approx(b_mem, rel=1e-9), arch
    cb = ref_continuous(p)
    assert cb["b"] == pytest.approx(b_mem, rel=1e-12)
    assert out["cpm_cb"] == pytest.approx(cb["cpm"], rel=1e-9)


def test_link_bound_transfer(cases):
    p, out = cases["link_bound"]
    ref = check_pd(p, out)
    t_kv = 327_680.0 * workload(p)[0] / 3e9
    assert out["t_kv"] == pytest.approx(t_kv, rel=1e-12)
    assert ref["lam_link"] < ref["lam_ttft"]
    lam_p = p["max_link_utilization"] / t_kv
    assert out["rho_pd"] / out["t_prefill_pd"] == pytest.approx(lam_p, rel=1e-12)
    assert out["link_utilization"] == pytest.approx(p["max_link_utilization"], rel=1e-12)
    assert int(out["status_pd"]) & LINK
    assert out["feasible_pd"] == 1.0
    # prefill runs below its TTFT-limited utilization, so TTFT has slack
    assert out["ttft_pd"] < p["ttft_slo_ms"]
    # d_KV = W_q(rho_L, t_KV) + (1 - eta) t_KV lands on TPOT (mean kind: spread over D)
    d_kv = t_kv * (float(wq(0.8, p["attainment"])) + 1.0 - p["eta"])
    assert out["tpot_pd"] == pytest.approx(out["t_step_pd"] + d_kv / workload(p)[1], rel=1e-12)
    assert md1_exact_quantile(0.8, p["attainment"]) == pytest.approx(float(wq(0.8, p["attainment"])), rel=0.02)
    assert out["tau_kv"] > 0
    # the default link (450 GB/s) is not link-bound
    assert not int(cases["default"][1]["status_pd"]) & LINK


def test_pd_tbt_first_gap_carries_transfer(cases):
    p, out = cases["pd_tbt_first_gap"]
    D = workload(p)[1]
    assert 1.0 / D > 1.0 - p["attainment"]
    ref = check_pd(p, out)
    assert ref["b_tpot"] < min(ref["b_mem"], p["max_batch"])
    assert out["tpot_pd"] == pytest.approx(out["t_step_pd"] + ref["d_kv"], rel=1e-12)
    assert out["tpot_pd"] == pytest.approx(p["tpot_slo_ms"], rel=1e-9)


def test_pd_tbt_gap_without_transfer(cases):
    p, out = cases["pd_tbt"]
    assert 1.0 / workload(p)[1] <= 1.0 - p["attainment"]
    ref = check_pd(p, out)
    assert ref["b_tpot"] < min(ref["b_mem"], p["max_batch"])
    assert out["t_step_pd"] == pytest.approx(p["tpot_slo_ms"], rel=1e-9)
    assert out["tpot_pd"] == pytest.approx(out["t_step_pd"], rel=1e-12)


# --- unattainable contracts ------------------------------------------------------------------


def test_unattainable_ttft(cases):
    p, out = cases["ttft_unattainable"]
    P, _ = workload(p)
    rl = Roofline(p, auto_gpus(p))
    assert rl.t_pre(P) > p["ttft_slo_ms"]
    # even chunked prefill needs 2 n P / F_e of weight compute per prompt: more than the contract
    assert 2 * p["active_params_b"] * P / rl.fe > p["ttft_slo_ms"]
    for arch in ("pd", "co", "cb"):
        assert out[f"feasible_{arch}"] == 0.0, arch
        assert out[f"cpm_{arch}"] == math.inf, arch
        assert out[f"cpm_output_{arch}"] == math.inf, arch
        assert out[f"goodput_{arch}"] == 0.0, arch
    assert int(out["status_pd"]) & TTFT and int(out["status_cb"]) & TTFT
    assert int(out["status_pd"]) & UNDEF  # c_prefill, c_decode, tau, sigma need the isolated pd
    for name in ("c_prefill", "c_decode", "tau_kv", "sigma_co"):
        assert math.isnan(out[name]), name
    assert out["best_arch"] == -1


@pytest.mark.xfail(strict=True, reason="chunked() flags TTFT-unattainable points as tpot_unattainable "
                   "(status evaluated at the rho_c the search ends on, where the chunk is huge)")
def test_unattainable_ttft_status_chunked(cases):
    p, out = cases["ttft_unattainable"]
    # TPOT alone is attainable: rho_c = 0.99, b = 1 gives a chunk of P/(0.99 D) = 5.7 tokens
    P, D = workload(p)
    rl = Roofline(p, auto_gpus(p))
    assert rl.t_it(1.0, P / (D * 0.99), P, P + D / 2) < p["tpot_slo_ms"]
    assert int(out["status_co"]) & TTFT
    assert not int(out["status_co"]) & TPOT


def test_unattainable_tpot(cases):
    p, out = cases["tpot_unattainable"]
    P, D = workload(p)
    rl = Roofline(p, auto_gpus(p))
    assert rl.t_step(1.0, P + D / 2) > p["tpot_slo_ms"]
    for arch in ("pd", "co", "cb"):
        assert out[f"feasible_{arch}"] == 0.0, arch
        assert out[f"cpm_{arch}"] == math.inf, arch
        assert int(out[f"status_{arch}"]) & TPOT, arch
        assert not int(out[f"status_{arch}"]) & TTFT, arch
        for name in ("batch", "ttft", "tpot"):
            assert math.isnan(out[f"{name}_{arch}"])
    assert out["best_arch"] == -1
    assert math.isnan(out["tau_kv"]) and math.isnan(out["sigma_co"])


# --- §6 continuous batching --------------------------------------------------------------------


def check_cb(p, out, tol=1e-9):
    ref = ref_continuous(p)
    assert ref["feasible"] and out["feasible_cb"] == 1.0
    assert out["batch_cb"] == pytest.approx(ref["b"], rel=tol)
    assert out["t_prefill_cb"] == pytest.approx(ref["s"], rel=1e-12)
    assert out["t_step_cb"] == pytest.approx(ref["rl"].t_step(ref["b"], ref["cbar"]), rel=tol)
    assert out["tpot_cb"] == pytest.approx(ref["tpot_q"], rel=tol)
    assert out["cpm_cb"] == pytest.approx(ref["cpm"], rel=tol)
    assert out["ttft_cb"] == pytest.approx(ref["s"] * (1 + float(wq(ref["rho"], p["attainment"]))), rel=1e-6)
    return ref


def test_continuous_mean_tpot_binds(cases):
    p, out = cases["default"]
    ref = check_cb(p, out)
    b, s, D = ref["b"], ref["s"], ref["D"]
    z = NormalDist().inv_cdf(0.99)
    # t_step(b) + (b + z sqrt(b)) t_pre / D = contract at the chosen b
    lhs = ref["rl"].t_step(b, ref["cbar"]) + (b + z * math.sqrt(b)) * s / D
    assert lhs == pytest.approx(p["tpot_slo_ms"], rel=1e-9)
    assert out["tpot_cb"] == pytest.approx(p["tpot_slo_ms"], rel=1e-9)
    assert out["ttft_cb"] < p["ttft_slo_ms"]
    # R_cb = b / (D TPOT_mean), CPM = pi / (R (P + D)) 1e6
    rate = b / (D * (ref["rl"].t_step(b, ref["cbar"]) + b * s / D))
    assert out["cpm_cb"] == pytest.approx(ref["pi"] / (rate * (ref["P"] + D)) * M, rel=1e-9)


def test_continuous_tbt_without_stall(cases):
    p, out = cases["cb_tbt_no_stall"]
    ref = check_cb(p, out)
    D = ref["D"]
    # a stall never fits (t_pre + t_step(1) > TBT), so at most a share 1 - q of gaps may stall
    assert ref["s"] + ref["rl"].t_step(1.0, ref["cbar"]) > p["tpot_slo_ms"]
    assert out["batch_cb"] == pytest.approx(D * (1 - p["attainment"]), rel=1e-12)
    assert out["tpot_cb"] == pytest.approx(ref["rl"].t_step(out["batch_cb"], ref["cbar"]), rel=1e-12)


def test_continuous_tbt_with_stall(cases):
    p, out = cases["cb_tbt_stall"]
    ref = check_cb(p, out)
    assert out["batch_cb"] / ref["D"] > 1 - p["attainment"]
    # t_step(b) + t_pre(P) = TBT
    assert ref["rl"].t_step(ref["b"], ref["cbar"]) + ref["s"] == pytest.approx(p["tpot_slo_ms"], rel=1e-9)
    assert out["tpot_cb"] == pytest.approx(p["tpot_slo_ms"], rel=1e-9)


def test_continuous_ttft_binds(cases):
    p, out = cases["cb_ttft_bound"]
    ref = check_cb(p, out)
    # TTFT_q = t_pre (1 + W_q(rho)) = contract, rho = b t_pre / (D TPOT_mean)
    assert ref["s"] * (1 + float(wq(ref["rho"], p["attainment"]))) == pytest.approx(p["ttft_slo_ms"], rel=1e-6)
    assert out["ttft_cb"] == pytest.approx(p["ttft_slo_ms"], rel=1e-6)
    assert out["tpot_cb"] < p["tpot_slo_ms"]


# --- §6 chunked prefill: the reported point, by hand --------------------------------------


def chunked_point(p, b, rho):
    """t_it, tbar, s_c, TTFT_q and instance-seconds per request at (b, rho_c), MODEL.md §6."""
    P, D = workload(p)
    rl = Roofline(p, auto_gpus(p))
    cbar = P + D / 2
    chi = b * P / (D * rho)
    t_it = rl.t_it(b, chi, P, cbar)
    tbar = rho * t_it + (1 - rho) * rl.t_step(b, cbar)
    s_c = max(1.0, P / chi) * t_it
    return {"chi": chi, "t_it": t_it, "tbar": tbar, "s_c": s_c, "ttft": s_c * (1 + float(wq(rho, p["attainment"]))),
            "occ": D * tbar / b, "b_mem": rl.b_mem(cbar), "pi": rl.n * p["price_usd_per_gpu_hr"]}


@pytest.mark.parametrize("name", ["default", "memory_bound", "memory_capped", "cb_tbt_stall", "kappa"])
def test_chunked_reported_point(cases, name):
    p, out = cases[name]
    assert out["feasible_co"] == 1.0
    b, rho = out["batch_co"], out["rho_co"]
    pt = chunked_point(p, b, rho)
    P, D = workload(p)
    assert out["chunk_co"] == pytest.approx(pt["chi"], rel=1e-12)
    assert out["tpot_co"] == pytest.approx(pt["t_it"], rel=1e-12)
    assert out["t_step_co"] == pytest.approx(pt["tbar"], rel=1e-12)
    assert out["t_prefill_co"] == pytest.approx(pt["s_c"], rel=1e-12)
    assert out["ttft_co"] == pytest.approx(pt["ttft"], rel=1e-9)
    assert out["cpm_co"] == pytest.approx(pt["pi"] * pt["occ"] / (P + D) * M, rel=1e-12)
    # the point meets every constraint
    assert pt["t_it"] <= p["tpot_slo_ms"] * (1 + 1e-9)
    assert pt["ttft"] <= p["ttft_slo_ms"] * (1 + 1e-9)
    assert 1 <= b <= min(pt["b_mem"], p["max_batch"]) * (1 + 1e-12)
    assert 0 < rho <= RHO_MAX


# --- §6 chunked prefill: the optimum against a brute-force grid ----------------------------


def brute_force_chunked(p, n_rho=1200, n_b=2400):
    """min over a dense (rho_c, b) grid of D tbar / b subject to MODEL.md §6 [instance-s/request].

    rho_c: uniform on [1e-3, 0.99]; b: geometric on [1, min(b_mem, b_max)]. Constraints:
    t_it <= TPOT, max(1, P/chi) t_it (1 + W_q(rho_c)) <= TTFT, b <= b_mem, b <= b_max.
    Returns (best, rho, b) or (inf, nan, nan).
    """
    P, D = workload(p)
    rl = Roofline(p, auto_gpus(p))
    cbar = P + D / 2
    b_hi = min(rl.b_mem(cbar), p["max_batch"])
    if b_hi < 1:
        return math.inf, math.nan, math.nan
    rho = np.linspace(1e-3, RHO_MAX, n_rho)[:, None]
    b = np.geomspace(1.0, b_hi, n_b)[None, :]
    w = wq(rho, np.full_like(rho, p["attainment"]))
    chi = b * P / (D * rho)
    t_it = rl.t_it(b, chi, P, cbar)
    tbar = rho * t_it + (1 - rho) * rl.t_step(b, cbar)
    s_c = np.maximum(1.0, P / chi) * t_it
    ok = (t_it <= p["tpot_slo_ms"]) & (s_c * (1 + w) <= p["ttft_slo_ms"])
    cost = np.where(ok, D * tbar / b, np.inf)
    i = np.unravel_index(np.argmin(cost), cost.shape)
    return float(cost[i]), float(rho[i[0], 0]), float(b[0, i[1]])


BRUTE = {
    "h100-mid-085": {},
    "h100-mid-020": {"alpha": 0.2},
    "h100-mid-050": {"alpha": 0.5},
    "h100-tight-097": {"alpha": 0.97, "slo": "paper-tight"},
    "a100-relaxed-085": {"hardware": "A100-SXM4-80GB", "slo": "paper-relaxed"},
    "h200-tight-050": {"hardware": "H200-SXM-141GB", "slo": "paper-tight", "alpha": 0.5},
    "h100-kappa-tbt": {"kappa": 0.25, "tpot_kind": "tbt", "ttft_slo_ms": 300},
    "h100-long-mem": {"alpha": 0.5, "request_tokens": 16000, "ttft_slo_ms": 5000},
    "llama13b-h100": {"model": "Llama-2-13B", "alpha": 0.7, "request_tokens": 3000, "slo": "paper-mid"},
}


@pytest.fixture(scope="module")
def brute_points():
    points = {name: si(**fixed) for name, fixed in BRUTE.items()}
    rows = evaluate_points(list(points.values()))
    return {name: (points[name], row) for name, row in zip(points, rows)}


@pytest.mark.parametrize("name", list(BRUTE))
def test_chunked_optimum_matches_brute_force(brute_points, name):
    p, out = brute_points[name]
    best, rho_b, b_b = brute_force_chunked(p)
    P, D = workload(p)
    if not math.isfinite(best):
        assert out["feasible_co"] == 0.0 and out["cpm_co"] == math.inf
        return
    assert out["feasible_co"] == 1.0
    pi = auto_gpus(p) * p["price_usd_per_gpu_hr"]
    occ_model = out["cpm_co"] * (P + D) / (pi * M)  # instance-seconds per request
    assert occ_model == pytest.approx(best, rel=0.01), (rho_b, b_b, out["rho_co"], out["batch_co"])
    # and the model's own point is feasible, so it cannot beat the true optimum
    pt = chunked_point(p, out["batch_co"], out["rho_co"])
    assert pt["occ"] == pytest.approx(occ_model, rel=1e-12)
    assert pt["t_it"] <= p["tpot_slo_ms"] * (1 + 1e-9)
    assert pt["ttft"] <= p["ttft_slo_ms"] * (1 + 1e-9)
    assert out["batch_co"] <= min(pt["b_mem"], p["max_batch"]) * (1 + 1e-12)


def test_brute_force_points_are_mostly_feasible(brute_points):
    # the comparison is not vacuous: chunked prefill is feasible at most of the points
    assert sum(out["feasible_co"] for _, out in brute_points.values()) >= len(BRUTE) - 2
