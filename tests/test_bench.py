"""The benchmark's NumPy baseline (bench/numpy_model.py) computes what the JAX model computes.

A baseline that computed something else would make the speed ratios of bench/run.py
meaningless, so its CPMs are compared with the sweep engine's on a grid that crosses
every branch the benchmark grid reaches: feasible and infeasible points of each
architecture, link-bound and not, tight and loose TTFT/TPOT, both TPOT kinds, fluid and
whole-instance pools.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from frontier_jax import config, sweep

ROOT = Path(__file__).resolve().parents[1]


def _numpy_model():
    spec = importlib.util.spec_from_file_location("numpy_model", ROOT / "bench" / "numpy_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _si_grid(spec):
    dim_inputs, fixed = sweep.inputs(spec)
    p = {k: np.asarray(v) for k, v in fixed.items()}
    for i, d in enumerate(dim_inputs):
        for n, v in d.items():
            shape = [1] * len(dim_inputs)
            shape[i] = -1
            p[n] = np.broadcast_to(np.asarray(v).reshape(shape), spec.shape)
    return p


NAMES = ("cpm_pd", "cpm_co", "cpm_cb", "delta_cpm", "best_arch")


@pytest.fixture(scope="module")
def both():
    spec = config.from_dict({
        "sweep": {"name": "bench-check", "mode": "first-principles", "dtype": "float64"},
        "axes": {
            "alpha": [0.3, 0.85, 0.97],
            "kv_bandwidth_gbps": [2.0, 450.0],
            "ttft_slo_ms": [150.0, 500.0, 3000.0],
            "tpot_slo_ms": [12.0, 50.0, 200.0],
            "tpot_kind": ["mean", "tbt"],
            "arrival_rate": [float("inf"), 7.0],
        },
        "fixed": {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB"},
    })
    ref = sweep.run(spec, names=NAMES)
    got = _numpy_model().evaluate(_si_grid(spec), np.float64)
    return spec, ref, got


def _compare(spec, ref, got, k, rtol):
    a, b = ref[k], np.broadcast_to(got[k], spec.shape)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=k)
    np.testing.assert_array_equal(np.isinf(a) & (a > 0), np.isinf(b) & (b > 0), err_msg=k)
    fin = np.isfinite(a)
    np.testing.assert_allclose(b[fin], a[fin], rtol=rtol, err_msg=k)


@pytest.mark.slow
@pytest.mark.parametrize("k", ["cpm_pd", "cpm_cb"])
def test_numpy_baseline_equals_engine(both, k):
    spec, ref, got = both
    _compare(spec, ref, got, k, 1e-9)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "chunked prefill: where the optimum is pinned by the multi-chunk TTFT limit ('edge'), the pinning "
    "residual log s_c - log S* is exactly 0 on the whole-prompt side of the crossing, so the bisection's "
    "answer depends on rounding: NumPy lands on the bracket's lower end (rho_c 1 % low, CPM_co up to "
    "0.7 % high) where the JAX model finds the crossing. See the report of issue 6."))
@pytest.mark.parametrize("k", ["cpm_co", "delta_cpm"])
def test_numpy_baseline_equals_engine_chunked(both, k):
    spec, ref, got = both
    _compare(spec, ref, got, k, 1e-9)


@pytest.mark.slow
def test_numpy_baseline_chunked_within_one_percent(both):
    """The same work, the same feasibility, and CPM_co within 1 % (see the xfail above for why not exact)."""
    spec, ref, got = both
    _compare(spec, ref, got, "cpm_co", 1e-2)


@pytest.mark.slow
def test_grid_reaches_every_feasibility_case(both):
    """The comparison above is not vacuous: each architecture is feasible and infeasible somewhere."""
    _, ref, _ = both
    for k in ("cpm_pd", "cpm_co", "cpm_cb"):
        fin = np.isfinite(ref[k])
        assert fin.any() and (~fin).any(), k
    assert set(np.unique(ref["best_arch"])) >= {0, 1}
