"""The paper frame (MODEL.md §3): test vectors of MODEL.md §8 and the four-term identities.

Published values cite MODEL.md §8 (the paper's numbers with its units corrected; the
paper's own "1.31 GB" is the KiB/GB slip listed in MODEL.md §9 and paper_claims.csv
"kv-1.31gb").
"""
import hypothesis.strategies as st
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from frontier_jax import config, sweep
from frontier_jax.model import terms
from frontier_jax.model.evaluate import evaluate
from frontier_jax.variables import INPUTS

PAPER_FIXED = {
    # sweeps/paper_breakeven.toml: Llama-2-70B / H100, decode instances of 4 GPUs
    "model": "Llama-2-70B",
    "hardware": "H100-SXM5-80GB",
    "tp_decode": 4,
    "eta": 0.5,
    "request_tokens": 1360,
    "c_prefill": 0.33,
    "c_decode": 0.91,
    "decode_batch": 128,
}


def si_inputs(fixed=None, mode="first-principles"):
    """SI input dict at the registry defaults plus ``fixed`` (edge units), as a sweep builds it."""
    base = {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB"}
    spec = config.from_dict({"sweep": {"mode": mode}, "fixed": {**base, **(fixed or {})}})
    _, p = sweep.inputs(spec)
    return p


@pytest.fixture(scope="module")
def p70():
    return si_inputs()


def close(a, b, *terms_):
    """|a - b| within rounding of the terms that were summed to get them."""
    scale = sum(abs(float(x)) for x in terms_) or 1.0
    return abs(float(a) - float(b)) <= 1e-12 * scale


# --- MODEL.md §8 test vectors ------------------------------------------------------------


def test_kv_per_request(p70):
    # MODEL.md §8: KV_req at P = 4096 / 16384 = 1,342,177,280 B / 5,368,709,120 B.
    assert float(terms.kv_bytes_per_request(4096.0, p70)) == 1_342_177_280.0
    assert float(terms.kv_bytes_per_request(16384.0, p70)) == 5_368_709_120.0


@pytest.mark.parametrize("gb_s, ms", [(900.0, 1.491), (50.0, 26.84), (25.0, 53.69)])
def test_transfer_time_at_4096(p70, gb_s, ms):
    # MODEL.md §8: t_KV at P = 4096 over 900 / 50 / 25 GB/s = 1.491 / 26.84 / 53.69 ms
    # (1 GB = 1e9 B, MODEL.md §1).
    t = terms.transfer_time(terms.kv_bytes_per_request(4096.0, p70), gb_s * INPUTS["kv_bandwidth_gbps"].si)
    assert float(t) * 1e3 == pytest.approx(ms, abs=0.0005 if ms < 10 else 0.005)


def test_alpha_conversation_example():
    # MODEL.md §8 (the paper's conversation example): alpha for P = 1150, D = 210 = 0.8456.
    assert float(terms.alpha(1150.0, 210.0)) == pytest.approx(0.8456, abs=5e-5)


@settings(max_examples=50, deadline=None)
@given(prompt=st.floats(1.0, 1e6), gb_s=st.floats(0.1, 1e4))
def test_fp8_kv_halves_kv_and_transfer_exactly(prompt, gb_s):
    # MODEL.md §8: FP8 KV (b_kv = 1) halves KV_req and t_KV exactly.
    bf16, fp8 = si_inputs(), si_inputs({"kv_bytes": 1})
    bw = gb_s * INPUTS["kv_bandwidth_gbps"].si
    kv16 = terms.kv_bytes_per_request(prompt, bf16)
    kv8 = terms.kv_bytes_per_request(prompt, fp8)
    assert float(kv8) == 0.5 * float(kv16)
    assert float(terms.transfer_time(kv8, bw)) == 0.5 * float(terms.transfer_time(kv16, bw))


def test_hybrid_state_is_added_to_each_request():
    # MODEL.md §2: a hybrid's state_bytes_per_seq adds a constant to each request's transfer.
    # Jamba-v0.1 (models.csv): 4 attention layers, 8 KV heads, d = 128, state 16,040,000 B.
    p = si_inputs({"model": "Jamba-v0.1"})
    assert float(terms.kv_bytes_per_request(1000.0, p)) == 2 * 4 * 8 * 128 * 2 * 1000 + 16_040_000


def test_cpm_from_goodput_published_example():
    # MODEL.md §1 / §8: CPM = c / (3600 G) 1e6. H100 at the hardware.csv default price
    # 4.916 USD/GPU-h serving 1000 tokens/s/GPU: 4.916 / 3.6 = 1.365555... USD/Mtok.
    c = 4.916 * INPUTS["price_usd_per_gpu_hr"].si  # USD/GPU-s
    assert float(terms.cpm_from_goodput(c, 1000.0)) == pytest.approx(4.916 / 3.6, rel=1e-14)


@settings(max_examples=100, deadline=None)
@given(c_hr=st.floats(0.01, 1e3), goodput=st.floats(1e-3, 1e7))
def test_cpm_from_goodput_exact(c_hr, goodput):
    # MODEL.md §8: "CPM of any architecture at one GPU type and price c = c/(3600 goodput) 1e6, exactly".
    c = c_hr * INPUTS["price_usd_per_gpu_hr"].si
    assert float(terms.cpm_from_goodput(c, goodput)) == pytest.approx(c_hr / (3600.0 * goodput) * 1e6, rel=1e-14)


# --- MODEL.md §3 identities, calibrated mode ---------------------------------------------


def test_tau_kv_calibrated_by_hand():
    # MODEL.md §3: tau_KV = pi_d (1 - eta) t_KV / (b_dec (P + D)) 1e6, worked by hand for
    # the paper's break-even config at alpha = 0.85, B = 50 GB/s, paper-mid bin:
    #   P = 0.85 * 1360 = 1156, D = 204, KV_req = 327,680 * 1156 = 378,798,080 B
    #   t_KV = 378,798,080 / 50e9 = 7.5759616 ms
    #   pi_d = 4 GPUs * 4.916 USD/GPU-h / 3600 = 0.0054622222... USD/s
    #   tau  = 0.0054622222 * 0.5 * 7.5759616e-3 / (128 * 1360) * 1e6 = 1.18858...e-4 USD/Mtok
    #   base = 0.85 * 0.33 + 0.15 * 0.91 = 0.417 USD/Mtok
    #   sigma_co from the paper-mid capacity loss 0.15 (paper_calibration.csv):
    #        0.15 / 0.85 * 0.417 = 0.0735882... USD/Mtok
    p = si_inputs({**PAPER_FIXED, "alpha": 0.85, "kv_bandwidth_gbps": 50, "slo": "paper-mid"}, mode="calibrated")
    out = evaluate(p, "calibrated")
    t_kv = 378_798_080 / 50e9
    pi_d = 4 * 4.916 / 3600
    tau = pi_d * 0.5 * t_kv / (128 * 1360) * 1e6
    assert float(out["kv_bytes_per_request"]) == pytest.approx(378_798_080, rel=1e-12)
    assert float(out["t_kv"]) == pytest.approx(7.5759616e-3, rel=1e-12)
    assert float(out["tau_kv"]) == pytest.approx(tau, rel=1e-12)
    assert tau == pytest.approx(1.18858e-4, rel=1e-5)
    assert float(out["sigma_co"]) == pytest.approx(0.15 / 0.85 * 0.417, rel=1e-12)
    assert float(out["cpm_pd"]) == pytest.approx(0.417 + tau, rel=1e-12)
    assert float(out["cpm_co"]) == pytest.approx(0.417 + 0.15 / 0.85 * 0.417, rel=1e-12)
    assert int(out["best_arch"]) == 0  # sigma_co > tau_KV: disaggregation is cheaper


# No subnormal draws: XLA on CPU flushes subnormals to zero (a cost of 1e-308 USD/Mtok comes
# out as 0), which is the arithmetic's contract, not the model's; such a price means nothing.
calibrated_draws = dict(
    alpha=st.floats(0.01, 0.99),
    request_tokens=st.floats(10.0, 1e5),
    gb_s=st.floats(0.5, 2000.0),
    eta=st.floats(0.0, 1.0, allow_subnormal=False),
    c_prefill=st.floats(0.0, 20.0, allow_subnormal=False),
    c_decode=st.floats(0.0, 20.0, allow_subnormal=False),
    decode_batch=st.floats(1.0, 512.0),
    tp_decode=st.sampled_from([1, 2, 4, 8]),
    sigma=st.one_of(st.floats(-5.0, 5.0, allow_subnormal=False),
                    st.sampled_from(["paper-tight", "paper-mid", "paper-relaxed"])),
)


@settings(max_examples=50, deadline=None)
@given(**calibrated_draws)
def test_calibrated_identities_on_random_draws(alpha, request_tokens, gb_s, eta, c_prefill, c_decode,
                                               decode_batch, tp_decode, sigma):
    # MODEL.md §3: CPM_PD = a c_p + (1-a) c_d + tau_KV, CPM_co = ... + sigma_co,
    # dCPM = sigma_co - tau_KV, and the calibrated tau_KV formula.
    fixed = {**PAPER_FIXED, "alpha": alpha, "request_tokens": request_tokens, "kv_bandwidth_gbps": gb_s,
             "eta": eta, "c_prefill": c_prefill, "c_decode": c_decode, "decode_batch": decode_batch,
             "tp_decode": tp_decode}
    if isinstance(sigma, str):
        fixed["slo"] = sigma
    else:
        fixed["sigma_co"] = sigma
    p = si_inputs(fixed, mode="calibrated")
    o = {k: float(v) for k, v in evaluate(p, "calibrated").items()}

    P, D = o["prompt_tokens"], o["output_tokens"]
    assert P + D == pytest.approx(request_tokens, rel=1e-12)
    a = P / (P + D)
    assert a == pytest.approx(alpha, rel=1e-12)
    base = a * o["c_prefill"] + (1 - a) * o["c_decode"]
    assert close(o["cpm_pd"], base + o["tau_kv"], base, o["tau_kv"])
    assert close(o["cpm_co"], base + o["sigma_co"], base, o["sigma_co"])
    assert close(o["delta_cpm"], o["sigma_co"] - o["tau_kv"], o["sigma_co"], o["tau_kv"])
    assert close(o["delta_cpm"], o["cpm_co"] - o["cpm_pd"], o["cpm_co"], o["cpm_pd"])
    assert o["best_arch"] == (0 if o["delta_cpm"] >= 0 else 1)

    # hand formula, edge units converted here and nowhere else
    kv = 327_680 * alpha * request_tokens
    t_kv = kv / (gb_s * 1e9)
    assert o["kv_bytes_per_request"] == pytest.approx(kv, rel=1e-12)
    assert o["t_kv"] == pytest.approx(t_kv, rel=1e-12)
    pi_d = tp_decode * 4.916 / 3600.0
    assert o["tau_kv"] == pytest.approx(pi_d * (1 - eta) * t_kv / (decode_batch * request_tokens) * 1e6,
                                        rel=1e-12, abs=1e-300)
    if isinstance(sigma, str):
        loss = {"paper-tight": 0.32, "paper-mid": 0.15, "paper-relaxed": 0.05}[sigma]  # paper_calibration.csv
        assert o["sigma_co"] == pytest.approx(loss / (1 - loss) * base, rel=1e-12, abs=1e-15)
    else:
        assert o["sigma_co"] == sigma


def test_frame_identities_exact_on_arrays():
    # MODEL.md §3 on arrays (the pure frame function): the terms add up to the CPMs.
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.uniform(0.01, 0.99, 1000))
    c_p, c_d = jnp.asarray(rng.uniform(0, 5, 1000)), jnp.asarray(rng.uniform(0, 5, 1000))
    tau, sig = jnp.asarray(rng.uniform(0, 1, 1000)), jnp.asarray(rng.uniform(-1, 1, 1000))
    pd, co, delta = terms.frame(a, c_p, c_d, tau, sig)
    base = a * c_p + (1 - a) * c_d
    np.testing.assert_allclose(pd, base + tau, rtol=0, atol=1e-14)
    np.testing.assert_allclose(co, base + sig, rtol=0, atol=1e-14)
    np.testing.assert_allclose(delta, sig - tau, rtol=0, atol=0)
    np.testing.assert_allclose(delta, co - pd, rtol=0, atol=1e-14)
