"""The paper frame (MODEL.md §3; paper §2-§4 with its units corrected), pure JAX.

    alpha  = P / (P + D)
    KV_req = k P + state                                  [B]
    t_KV   = KV_req / B                                   [s]
    CPM_PD = alpha c_prefill + (1 - alpha) c_decode + tau_KV
    CPM_co = alpha c_prefill + (1 - alpha) c_decode + sigma_co
    dCPM   = CPM_co - CPM_PD = sigma_co - tau_KV          (> 0: disaggregation cheaper)

Costs are USD per 1e6 tokens; c_prefill per prefill token, c_decode per decode token,
tau_KV and sigma_co per served token (P + D).
"""
from __future__ import annotations

import jax.numpy as jnp

from .roofline import kv_bytes_per_token

PER_MILLION = 1e6


def alpha(prompt, output):
    """Prefill share alpha = P/(P+D) [1]."""
    return prompt / (prompt + output)


def lengths(alpha_, request_tokens):
    """(P, D) = (alpha T, (1 - alpha) T) [tokens]."""
    return alpha_ * request_tokens, (1.0 - alpha_) * request_tokens


def kv_bytes_per_request(prompt, p):
    """KV_req = k P + state [B]: bytes moved prefill -> decode (hybrids add constant state)."""
    return kv_bytes_per_token(p) * prompt + p["state_bytes_per_seq"]


def transfer_time(kv_req, bandwidth):
    """t_KV = KV_req / B [s], with B the pair bandwidth [B/s]."""
    return kv_req / bandwidth


def cpm_from_goodput(price_per_gpu_s, goodput):
    """CPM = c / G * 1e6 [USD/Mtok] for price c [USD/GPU-s] and goodput G [tokens/s/GPU].

    At the edge this is c_hr / (3600 G) 1e6 (MODEL.md §1; the paper drops the 3600).
    """
    return price_per_gpu_s / goodput * PER_MILLION


def phase_cost(alpha_, c_prefill, c_decode):
    """alpha c_prefill + (1 - alpha) c_decode [USD/Mtok]."""
    return alpha_ * c_prefill + (1.0 - alpha_) * c_decode


def tau_kv_calibrated(instance_price, eta, t_kv, decode_batch, served_tokens):
    """Calibrated tax tau_KV = pi_d (1 - eta) t_KV / (b_dec (P + D)) 1e6 [USD/Mtok].

    The paper's §4.3 formula in the regime where transfers keep up, with the missing
    1/3600 restored (``instance_price`` is already USD per instance-second, pi_d) and the
    whole decode instance's price (MODEL.md §3).
    """
    return instance_price * (1.0 - eta) * t_kv / (decode_batch * served_tokens) * PER_MILLION


def sigma_from_loss(loss, phase):
    """sigma_co for a colocated capacity loss l: l/(1-l) times the phase cost [USD/Mtok]."""
    return loss / (1.0 - loss) * phase


def frame(alpha_, c_prefill, c_decode, tau_kv, sigma_co):
    """The four-term decomposition: (CPM_PD, CPM_co, dCPM) [USD/Mtok], exact identities."""
    base = phase_cost(alpha_, c_prefill, c_decode)
    cpm_pd = base + tau_kv
    cpm_co = base + sigma_co
    return cpm_pd, cpm_co, sigma_co - tau_kv


def calibrated(p, prompt, output, n_decode, bandwidth):
    """Calibrated mode (the paper's re-derivation mode), MODEL.md §3.

    Parameters
    ----------
    p : dict
        SI inputs; uses c_prefill, c_decode [USD/Mtok], sigma_co [USD/Mtok] or
        sigma_co_loss [1] (NaN when unset), decode_batch [sequences], eta [1],
        price_usd_per_gpu_hr [USD/GPU-s].
    prompt, output : array
        P, D [tokens].
    n_decode : array
        GPUs per decode instance N_d [GPUs].
    bandwidth : array
        Pair bandwidth B [B/s].

    Returns
    -------
    dict of arrays: kv_bytes_per_request [B], t_kv [s], c_prefill, c_decode, tau_kv,
    sigma_co, cpm_pd, cpm_co, delta_cpm [USD/Mtok].
    """
    a = alpha(prompt, output)
    kv_req = kv_bytes_per_request(prompt, p)
    t_kv = transfer_time(kv_req, bandwidth)
    pi_d = n_decode * p["price_usd_per_gpu_hr"]
    tau = tau_kv_calibrated(pi_d, p["eta"], t_kv, p["decode_batch"], prompt + output)
    base = phase_cost(a, p["c_prefill"], p["c_decode"])
    loss = p["sigma_co_loss"]
    sigma = jnp.where(jnp.isnan(loss), p["sigma_co"], sigma_from_loss(jnp.where(jnp.isnan(loss), 0.0, loss), base))
    cpm_pd, cpm_co, delta = frame(a, p["c_prefill"], p["c_decode"], tau, sigma)
    return {
        "kv_bytes_per_request": kv_req,
        "t_kv": t_kv,
        "c_prefill": p["c_prefill"],
        "c_decode": p["c_decode"],
        "tau_kv": tau,
        "sigma_co": sigma,
        "cpm_pd": cpm_pd,
        "cpm_co": cpm_co,
        "delta_cpm": delta,
    }
