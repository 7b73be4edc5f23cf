"""Per-operator roofline (MODEL.md §4): published test vectors and invariants.

The §8 values are those of the reference specification, MODEL.md §8 ("§4 at the
defaults, Llama-2-70B, H100, N = 4"); the inputs come from the package's own catalogs
(models.csv, hardware.csv) and registry defaults (u_F = 0.6, u_W = 0.8, t_0 = 0,
a_ar = 10 us, m_f = 0.9), exactly as a sweep would build them.
"""
import math

import hypothesis.strategies as st
import jax.numpy as jnp
import pytest
from hypothesis import given, settings

from frontier_jax import config, sweep
from frontier_jax.model import roofline
from frontier_jax.model.roofline import Affine


def si_inputs(fixed=None):
    """SI input dict at the registry defaults plus ``fixed`` (edge units), as a sweep builds it."""
    spec = config.from_dict(
        {"fixed": {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB", **(fixed or {})}}
    )
    _, p = sweep.inputs(spec)
    return p


@pytest.fixture(scope="module")
def p70():
    return si_inputs()


# --- published values (MODEL.md §8) -----------------------------------------------------


def test_kv_bytes_per_token_llama2_70b(p70):
    # MODEL.md §8: L=80, h_kv=8, d=128, BF16 -> 327,680 B per token (2*80*8*128*2).
    assert float(roofline.kv_bytes_per_token(p70)) == 327_680.0


def test_auto_gpus_per_instance():
    # MODEL.md §2 defaults: "4 for a 70B model on 80 GB GPUs, 1 for a 7B model".
    assert float(roofline.auto_gpus(si_inputs())) == 4.0
    assert float(roofline.auto_gpus(si_inputs({"model": "Llama-2-7B"}))) == 1.0


def test_prefill_time_defaults(p70):
    # MODEL.md §8: t_pre(1150) = 79.19 ms, t_pre(4096) = 284.63 ms (N = 4, defaults).
    n = roofline.auto_gpus(p70)
    assert float(roofline.prefill_time(n, 1150.0, p70)) * 1e3 == pytest.approx(79.19, abs=0.005)
    assert float(roofline.prefill_time(n, 4096.0, p70)) * 1e3 == pytest.approx(284.63, abs=0.005)


def test_decode_step_time_defaults(p70):
    # MODEL.md §8: t_step at cbar = 1300 for b = 1 / b = 128 = 14.52 ms / 20.68 ms.
    assert float(roofline.step_time(4.0, 1.0, 1300.0, p70)) * 1e3 == pytest.approx(14.52, abs=0.005)
    assert float(roofline.step_time(4.0, 128.0, 1300.0, p70)) * 1e3 == pytest.approx(20.68, abs=0.005)


def test_memory_batch_defaults(p70):
    # MODEL.md §8: b_mem at cbar = 1300 = 352.2 sequences.
    assert float(roofline.memory_batch(4.0, 1300.0, p70)) == pytest.approx(352.2, abs=0.05)


def test_single_stream_decode_bound():
    # MODEL.md §8 and paper_claims.csv "decode-24tps": 140 GB of weights at 3.35 TB/s
    # bound one stream at 3.35e12 / 140e9 = 23.9 tokens/s per H100. One GPU, the full HBM
    # bandwidth (u_W = 1), no attention bytes (L_attn = 0): a step reads only the weights.
    p = si_inputs({"params_b": 70.0, "active_params_b": 70.0, "mbu": 1.0, "attention_layers": 0})
    t = float(roofline.step_time(1.0, 1.0, 0.0, p))
    assert t == pytest.approx(140e9 / 3.35e12, rel=1e-12)
    assert 1.0 / t == pytest.approx(23.9, abs=0.05)


# --- Affine: closed-form inverse -----------------------------------------------------------

slopes = st.floats(1e-3, 1e3)
icpts = st.floats(-1.0, 1.0, allow_subnormal=False)


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(st.tuples(st.one_of(slopes, st.just(0.0)), icpts), min_size=1, max_size=5),
    t=st.floats(-1.0, 10.0, allow_subnormal=False),
)
def test_affine_inverse_is_the_largest_feasible_b(pieces, t):
    f = Affine(tuple(jnp.asarray(a) for a, _ in pieces), tuple(jnp.asarray(c) for _, c in pieces))
    b = float(f.inverse(jnp.asarray(t)))
    flat = [c for a, c in pieces if a == 0.0]
    if b == -math.inf:
        # only a constant piece above t makes every b infeasible
        assert flat and max(flat) > t
    elif b == math.inf:
        assert all(a == 0.0 for a, _ in pieces) and max(flat) <= t
    else:
        assert float(f(jnp.asarray(b))) == pytest.approx(t, rel=1e-12, abs=1e-12)
        step = 1e-6 * (1.0 + abs(b))
        assert float(f(jnp.asarray(b + step))) > t


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(st.tuples(slopes, icpts), min_size=1, max_size=5), b=st.floats(-10.0, 1e4, allow_subnormal=False))
def test_affine_inverse_round_trips_increasing(pieces, b):
    f = Affine(tuple(jnp.asarray(a) for a, _ in pieces), tuple(jnp.asarray(c) for _, c in pieces))
    back = float(f.inverse(f(jnp.asarray(b))))
    assert back == pytest.approx(b, rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(b=st.floats(1.0, 2048.0), cbar=st.floats(1.0, 32768.0), n=st.sampled_from([1.0, 2.0, 4.0, 8.0]))
def test_step_affine_inverse_round_trips(p70, b, cbar, n):
    f = roofline.step_affine(jnp.asarray(n), jnp.asarray(cbar), p70)
    t = f(jnp.asarray(b))
    assert float(f.inverse(t)) == pytest.approx(b, rel=1e-9)


# --- the affine pieces equal the §4 pass formula -----------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    b=st.floats(1.0, 1024.0),
    cbar=st.floats(1.0, 32768.0),
    n=st.sampled_from([1.0, 2.0, 4.0, 8.0]),
    t0_ms=st.floats(0.0, 5.0, allow_subnormal=False),
)
def test_step_time_is_the_section4_pass(b, cbar, n, t0_ms):
    # MODEL.md §4 table: decode step, n_tok = b, A_flops = 4 L_attn d_m cbar b,
    # A_bytes = b (cbar + 1) k.
    p = si_inputs({"step_overhead_ms": t0_ms})
    k = roofline.kv_bytes_per_token(p)
    la_dm = p["attention_layers"] * p["hidden"]
    want = roofline.pass_time(n, b, 4.0 * la_dm * cbar * b, b * (cbar + 1.0) * k, p)
    got = roofline.step_time(n, b, cbar, p)
    assert float(got) == pytest.approx(float(want), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    b=st.floats(1.0, 512.0),
    cbar=st.floats(1.0, 16384.0),
    prompt=st.floats(16.0, 16384.0),
    beta=st.floats(0.01, 64.0),
    kappa=st.floats(0.0, 1.0, allow_subnormal=False),
    n=st.sampled_from([1.0, 4.0]),
)
def test_chunked_affine_is_the_section4_mixed_pass(b, cbar, prompt, beta, kappa, n):
    # MODEL.md §4 table: chunked iteration, n_tok = b + chi, A_flops = 4 L_attn d_m cbar b
    # + 2 L_attn d_m chi P, A_bytes = (b (cbar+1) + max(P - chi, 0)/2 + chi) k, inflated
    # by (1 + kappa).
    p = si_inputs({"kappa": kappa})
    chi = beta * b
    k = roofline.kv_bytes_per_token(p)
    la_dm = p["attention_layers"] * p["hidden"]
    a_flops = 4.0 * la_dm * cbar * b + 2.0 * la_dm * chi * prompt
    a_bytes = (b * (cbar + 1.0) + max(prompt - chi, 0.0) / 2.0 + chi) * k
    want = (1.0 + kappa) * roofline.pass_time(n, b + chi, a_flops, a_bytes, p)
    got = roofline.chunked_affine(jnp.asarray(n), jnp.asarray(cbar), jnp.asarray(prompt), jnp.asarray(beta), p)(b)
    assert float(got) == pytest.approx(float(want), rel=1e-12)


def test_single_gpu_has_no_allreduce(p70):
    # MODEL.md §4: t_comm = [N > 1] ...; with N = 1 a pass is exactly the two rooflines.
    k = float(roofline.kv_bytes_per_token(p70))
    w_b = float(roofline.weight_bytes(p70))
    w_e = float(p70["hbm_tb_s"] * p70["mbu"])
    want = w_b / w_e + (1300.0 + 1.0) * k / w_e  # one sequence: both memory-bound
    assert float(roofline.step_time(1.0, 1.0, 1300.0, p70)) == pytest.approx(want, rel=1e-12)
