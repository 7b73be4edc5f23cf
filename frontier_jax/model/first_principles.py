"""First-principles mode: every output of MODEL.md §2 derived from hardware, model, SLO, load.

Costs (MODEL.md §5-§7), with pi = N c the instance price [USD/s]:

    CPM_PD = (pi_p occ_p + pi_d occ_d) / (P + D) 1e6
    CPM_co = pi_c occ_c / (P + D) 1e6,  CPM_cb likewise

where occ is the instance-seconds each request occupies: 1/rate in the fluid limit
(arrival_rate = inf), ceil(Lambda/rate)/Lambda with whole instances at an offered rate
Lambda (MODEL.md §7; the gap is the partitioning slack). The four paper terms are exact
differences of computed costs (MODEL.md §3):

    alpha c_prefill + (1 - alpha) c_decode = CPM_PD(B = inf)
    tau_KV = CPM_PD(B) - CPM_PD(inf),   sigma_co = CPM_co - CPM_PD(inf)

A term that needs an infeasible architecture is NaN (masked) and sets ``term_undefined``
in the status of that architecture; an infeasible architecture's CPM is +inf.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..variables import STATUS_BITS
from . import terms
from .architectures import chunked, continuous, disaggregated

UNDEF = STATUS_BITS["term_undefined"]
M = terms.PER_MILLION


def occupancy(rate, arrival, feasible):
    """Instance-seconds per request [s]: 1/rate (fluid) or ceil(Lambda/rate)/Lambda.

    Returns (occ, instances); instances is NaN in the fluid limit.
    """
    r = jnp.where(feasible, rate, 1.0)
    fluid = jnp.isinf(arrival)
    lam = jnp.where(fluid, 1.0, arrival)
    n = jnp.ceil(lam / r)
    occ = jnp.where(fluid, 1.0 / r, n / lam)
    return jnp.where(feasible, occ, jnp.inf), jnp.where(fluid | ~feasible, jnp.nan, n)


def first_principles(p, prompt, output, n_p, n_d, n_c, bandwidth):
    """All first-principles outputs at one point (SI; costs in USD/Mtok)."""
    price = p["price_usd_per_gpu_hr"]  # SI: USD per GPU-second
    lam = p["arrival_rate"]
    served = prompt + output
    pd = disaggregated(p, prompt, output, n_p, n_d, bandwidth, link=True)
    iso = disaggregated(p, prompt, output, n_p, n_d, bandwidth, link=False)
    co = chunked(p, prompt, output, n_c)
    cb = continuous(p, prompt, output, n_c)

    def pd_cost(r):
        occ_p, n_pp = occupancy(r["lam_p"], lam, r["feasible"])
        occ_d, n_dd = occupancy(r["r_d"], lam, r["feasible"])
        pre = n_p * price * occ_p
        dec = n_d * price * occ_d
        return pre, dec, n_pp + n_dd

    pre, dec, inst_pd = pd_cost(pd)
    pre0, dec0, _ = pd_cost(iso)
    cpm_pd = jnp.where(pd["feasible"], (pre + dec) / served * M, jnp.inf)
    iso_ok = iso["feasible"]
    cpm_iso = jnp.where(iso_ok, (pre0 + dec0) / served * M, jnp.nan)

    occ_co, inst_co = occupancy(co["rate"], lam, co["feasible"])
    occ_cb, inst_cb = occupancy(cb["rate"], lam, cb["feasible"])
    cpm_co = jnp.where(co["feasible"], n_c * price * occ_co / served * M, jnp.inf)
    cpm_cb = jnp.where(cb["feasible"], n_c * price * occ_cb / served * M, jnp.inf)

    c_prefill = jnp.where(iso_ok, pre0 / prompt * M, jnp.nan)
    c_decode = jnp.where(iso_ok, dec0 / output * M, jnp.nan)
    tau = jnp.where(iso_ok & pd["feasible"], cpm_pd - jnp.where(iso_ok, cpm_iso, 0.0), jnp.nan)
    sigma = jnp.where(iso_ok & co["feasible"], cpm_co - jnp.where(iso_ok, cpm_iso, 0.0), jnp.nan)

    def delta(a, b_feas, b):
        both = pd["feasible"] & b_feas
        d = jnp.where(both, a - jnp.where(both, cpm_pd, 0.0), 0.0)
        return jnp.where(both, d, jnp.where(pd["feasible"], jnp.inf, jnp.where(b_feas, -jnp.inf, jnp.nan)))

    best_co = jnp.minimum(cpm_co, cpm_cb)
    delta_cpm = delta(jnp.where(co["feasible"], cpm_co, 0.0), co["feasible"], None)
    delta_best = delta(jnp.where(co["feasible"] | cb["feasible"], best_co, 0.0), co["feasible"] | cb["feasible"], None)

    stack = jnp.stack([cpm_pd, cpm_co, cpm_cb])
    best = jnp.argmin(stack).astype(jnp.int8)  # first minimum: ties go pd, co, cb
    best = jnp.where(jnp.all(jnp.isinf(stack)), jnp.int8(-1), best)

    # hybrid of paper §7.4: fraction f through pd, the rest through chunked colocation
    f = p["hybrid_fraction"]
    fluid = jnp.isinf(lam)
    lam_s = jnp.where(fluid, 1.0, lam)
    rate_p = jnp.where(pd["feasible"], pd["lam_p"], 1.0)
    rate_d = jnp.where(pd["feasible"], pd["r_d"], 1.0)
    rate_c = jnp.where(co["feasible"], co["rate"], 1.0)
    hyb_whole = (
        n_p * price * jnp.ceil(f * lam_s / rate_p)
        + n_d * price * jnp.ceil(f * lam_s / rate_d)
        + n_c * price * jnp.ceil((1.0 - f) * lam_s / rate_c)
    ) / (lam_s * served) * M
    hyb_fluid = f * jnp.where(pd["feasible"], cpm_pd, 0.0) + (1.0 - f) * jnp.where(co["feasible"], cpm_co, 0.0)
    hyb_ok = ((f == 0) | pd["feasible"]) & ((f == 1) | co["feasible"])
    cpm_hybrid = jnp.where(hyb_ok, jnp.where(fluid, hyb_fluid, hyb_whole), jnp.inf)

    kv_req = terms.kv_bytes_per_request(prompt, p)
    undefined_pd = ~iso_ok
    out = {
        "kv_bytes_per_request": kv_req,
        "t_kv": pd["t_kv"],
        "c_prefill": c_prefill,
        "c_decode": c_decode,
        "tau_kv": tau,
        "sigma_co": sigma,
        "cpm_pd": cpm_pd,
        "cpm_co": cpm_co,
        "cpm_cb": cpm_cb,
        "delta_cpm": delta_cpm,
        "delta_cpm_best_co": delta_best,
        "best_arch": best,
        "cpm_hybrid": cpm_hybrid,
        "chunk_co": jnp.where(co["feasible"], co["chunk"], jnp.nan),
        "rho_co": jnp.where(co["feasible"], co["rho"], jnp.nan),
        "rho_pd": jnp.where(pd["feasible"], pd["rho_p"], jnp.nan),
        "link_utilization": jnp.where(pd["feasible"], pd["rho_link"], jnp.nan),
    }
    gpus_per_req = {
        "pd": None,
        "co": n_c * occ_co,
        "cb": n_c * occ_cb,
    }
    for a, r, cpm, inst in (("pd", pd, cpm_pd, inst_pd), ("co", co, cpm_co, inst_co), ("cb", cb, cpm_cb, inst_cb)):
        ok = r["feasible"]
        if a == "pd":
            gsec = (pre + dec) / price  # GPU-seconds per request
        else:
            gsec = gpus_per_req[a]
        nan = jnp.nan
        status = r["status"]
        if a == "pd":
            status = status | jnp.where(undefined_pd, jnp.int32(UNDEF), jnp.int32(0))
        if a == "co":
            status = status | jnp.where(~iso_ok & ok, jnp.int32(UNDEF), jnp.int32(0))
        out.update({
            f"ttft_{a}": jnp.where(ok, r["ttft"], nan),
            f"tpot_{a}": jnp.where(ok, r["tpot"], nan),
            f"goodput_{a}": jnp.where(ok, served / jnp.where(ok, gsec, 1.0), 0.0),
            f"batch_{a}": jnp.where(ok, r["batch"], nan),
            f"t_prefill_{a}": r["t_prefill"],
            f"t_step_{a}": jnp.where(ok, r["t_step"], nan),
            f"feasible_{a}": ok,
            f"status_{a}": status.astype(jnp.int16),
            f"cpm_output_{a}": cpm * served / output,
            f"instances_{a}": inst,
        })
    return out
