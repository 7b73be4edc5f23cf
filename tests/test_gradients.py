"""Gradients of the first-principles costs against central finite differences (float64).

STYLE.md "Tests", kind 3; MODEL.md §6 "The optimum and its gradients": the optima sit where
a constraint binds, and derivatives must carry that constraint's term, matching central
finite differences away from kinks.

Every derivative here is a forward-mode JVP of :func:`frontier_jax.model.evaluate.evaluate`
along one input direction; all (point, direction) pairs and all finite-difference stencil
points go through one compiled, vmapped function in one call (the primal outputs of the
JVP serve as the function values of the stencil).

Kinks: a stencil x - h, x, x + h that straddles a kink (a change of binding constraint, of
roofline piece or of M/D/1 branch) is detected by comparing the one-sided differences
(f(x+h) - f(x))/h and (f(x) - f(x-h))/h, and by requiring the same status and feasibility at
the three points; such stencils are skipped, and the test asserts that most were checked.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frontier_jax import config, sweep
from frontier_jax.model.evaluate import evaluate

FP = "first-principles"
GRAD_IN = ("alpha", "request_tokens", "kv_bandwidth_gbps", "ttft_slo_ms", "tpot_slo_ms", "attainment", "eta",
           "mfu", "mbu", "peak_tflops", "hbm_tb_s", "price_usd_per_gpu_hr", "kappa", "step_overhead_ms")
GRAD_OUT = ("cpm_pd", "cpm_co", "cpm_cb", "tau_kv", "sigma_co")
# primal-only outputs that identify the branch at each stencil point
BRANCH = ("status_pd", "status_co", "status_cb", "feasible_pd", "feasible_co", "feasible_cb")
ROWS = 576  # fixed batch shape (3 x 14 x 13 = 546 rows used): one compilation
REL_STEP = 1e-6
RTOL = 1e-5

FEASIBLE = {
    "defaults+kappa": {"kappa": 0.1, "step_overhead_ms": 0.5},
    "alpha0.3-tpot30": {"alpha": 0.3, "tpot_slo_ms": 30, "kappa": 0.05, "step_overhead_ms": 0.2},
    "link-bound": {"kv_bandwidth_gbps": 3, "eta": 0.3, "kappa": 0.1, "step_overhead_ms": 0.1},
    "tbt-stall": {"tpot_kind": "tbt", "tpot_slo_ms": 100, "ttft_slo_ms": 3000, "kappa": 0.2, "step_overhead_ms": 0.3},
    "a100-relaxed": {"hardware": "A100-SXM4-80GB", "slo": "paper-relaxed", "kappa": 0.1, "step_overhead_ms": 0.5},
    "h200-tight": {"hardware": "H200-SXM-141GB", "slo": "paper-tight", "alpha": 0.5, "kappa": 0.1,
                   "step_overhead_ms": 0.5},
    "long-memory": {"alpha": 0.5, "request_tokens": 16000, "ttft_slo_ms": 5000, "kappa": 0.1, "step_overhead_ms": 0.5},
    # D = 41 tokens < 1/(1-q): the first gap counts in pd's TBT quantile; TPOT 150 ms lets
    # continuous batching absorb a whole-prompt stall (about 100 ms here), so all three are feasible
    "tbt-first-gap": {"tpot_kind": "tbt", "alpha": 0.97, "tpot_slo_ms": 150, "kappa": 0.1, "step_overhead_ms": 0.2},
    "13b-q0.9": {"model": "Llama-2-13B", "attainment": 0.9, "eta": 0.3, "request_tokens": 3000, "alpha": 0.7,
                 "kappa": 0.1, "step_overhead_ms": 0.5},
}
INFEASIBLE = {
    "ttft-unattainable": {"ttft_slo_ms": 50, "kappa": 0.1, "step_overhead_ms": 0.5},
    "tpot-unattainable": {"tpot_slo_ms": 10, "kappa": 0.1, "step_overhead_ms": 0.5},
    "out-of-memory": {"tp_prefill": 1, "tp_decode": 1, "tp_colocated": 1, "kappa": 0.1, "step_overhead_ms": 0.5},
    "cb-infeasible": {"tpot_kind": "tbt", "alpha": 0.97, "tpot_slo_ms": 30, "kappa": 0.1, "step_overhead_ms": 0.5},
}


def si(**fixed):
    base = {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB"}
    base.update(fixed)
    _, p = sweep.inputs(config.from_dict({"sweep": {"mode": FP}, "fixed": base}))
    return {k: float(v) for k, v in p.items()}


def _outputs(x, p):
    q = dict(p)
    q.update({n: x[i] for i, n in enumerate(GRAD_IN)})
    out = evaluate(q, FP)
    return jnp.stack([out[k] for k in GRAD_OUT]), jnp.stack([out[k].astype(jnp.float64) for k in BRANCH])


def _jvp(x, v, p):
    (y, branch), (dy, _) = jax.jvp(lambda x: _outputs(x, p), (x,), (v,))
    return y, dy, branch


JVP = jax.jit(jax.vmap(_jvp))


@pytest.fixture(scope="module")
def derivatives():
    """AD and finite differences for every (point, input) pair, in one call."""
    names = list(FEASIBLE) + list(INFEASIBLE)
    pts = [si(**v) for v in list(FEASIBLE.values()) + list(INFEASIBLE.values())]
    n_in = len(GRAD_IN)
    xs, vs, ps = [], [], []
    steps = np.zeros((len(pts), n_in))
    for k, p in enumerate(pts):
        x0 = np.asarray([p[n] for n in GRAD_IN])
        for i in range(n_in):
            h = REL_STEP * abs(x0[i])
            steps[k, i] = h
            e = np.zeros(n_in)
            e[i] = 1.0
            # AD at x0 along e_i, then the stencil x0 + h e_i, x0 - h e_i (tangent unused)
            for x, v in ((x0, e), (x0 + h * e, e), (x0 - h * e, e)):
                xs.append(x)
                vs.append(v)
                ps.append(p)
    n = len(xs)
    assert n <= ROWS
    xs += [xs[-1]] * (ROWS - n)
    vs += [vs[-1]] * (ROWS - n)
    ps += [ps[-1]] * (ROWS - n)
    batch = {k: jnp.asarray([p[k] for p in ps]) for k in ps[0]}
    y, dy, branch = (np.asarray(a)[:n] for a in JVP(jnp.asarray(np.stack(xs)), jnp.asarray(np.stack(vs)), batch))
    shape = (len(pts), n_in, 3)
    y = y.reshape(shape + (len(GRAD_OUT),))
    dy = dy.reshape(shape + (len(GRAD_OUT),))
    branch = branch.reshape(shape + (len(BRANCH),))
    return {"names": names, "x0": np.asarray([[p[g] for g in GRAD_IN] for p in pts]), "h": steps,
            "f0": y[:, :, 0], "fp": y[:, :, 1], "fm": y[:, :, 2], "ad": dy[:, :, 0],
            "branch": branch}


def _compare(d, k):
    """Checked and skipped (input, output) pairs of point k; raises on a mismatch."""
    f0, fp, fm, ad, h = d["f0"][k], d["fp"][k], d["fm"][k], d["ad"][k], d["h"][k]
    checked, skipped, bad = 0, [], []
    for i, name in enumerate(GRAD_IN):
        same_branch = np.array_equal(d["branch"][k, i, 0], d["branch"][k, i, 1]) and np.array_equal(
            d["branch"][k, i, 0], d["branch"][k, i, 2])
        for j, out in enumerate(GRAD_OUT):
            if not np.isfinite(f0[i, j]):
                continue
            fwd = (fp[i, j] - f0[i, j]) / h[i]
            bwd = (f0[i, j] - fm[i, j]) / h[i]
            central = 0.5 * (fwd + bwd)
            # natural scale of a derivative: |f| / |x| (an elasticity of 1)
            scale = max(abs(f0[i, j]), abs(d["f0"][k][i, 0])) / abs(d["x0"][k, i])
            smooth = same_branch and np.isfinite(fwd) and np.isfinite(bwd) and abs(fwd - bwd) <= 1e-4 * abs(central) + 1e-7 * scale
            if not smooth:
                skipped.append((name, out))
                continue
            checked += 1
            if not abs(ad[i, j] - central) <= RTOL * abs(central) + 1e-8 * scale:
                bad.append((name, out, float(ad[i, j]), float(central)))
    return checked, skipped, bad


@pytest.mark.parametrize("k", range(len(FEASIBLE)), ids=list(FEASIBLE))
def test_gradients_match_central_differences(derivatives, k):
    d = derivatives
    assert np.all(np.isfinite(d["f0"][k][0, :3])), "the point should be feasible in every architecture"
    assert np.all(np.isfinite(d["ad"][k])), "gradient not finite at a feasible point"
    checked, skipped, bad = _compare(d, k)
    assert not bad, bad
    # most stencils are smooth: the comparison is not vacuous
    assert checked >= 0.8 * (checked + len(skipped)), skipped


@pytest.mark.parametrize("k", range(len(FEASIBLE), len(FEASIBLE) + len(INFEASIBLE)), ids=list(INFEASIBLE))
def test_no_nan_gradients_at_infeasible_points(derivatives, k):
    d = derivatives
    assert not np.all(np.isfinite(d["f0"][k][0, :3])), "the point should be infeasible somewhere"
    assert np.all(np.isfinite(d["ad"][k])), "gradient NaN or inf at an infeasible point"
    # where an architecture is feasible its derivatives still match finite differences
    _, _, bad = _compare(d, k)
    assert not bad, bad


def test_price_gradient_is_exact(derivatives):
    """CPM is linear in the price: dCPM/dc = CPM / c exactly (AD, no finite differences).

    tau_KV and sigma_co are differences of CPMs of order one: rounding is relative to the
    CPMs they are taken from, not to the (small) difference.
    """
    d = derivatives
    i = GRAD_IN.index("price_usd_per_gpu_hr")
    for k in range(len(FEASIBLE)):
        f0, ad, c = d["f0"][k][i], d["ad"][k][i], d["x0"][k, i]
        scale = np.max(np.abs(f0[:3]))
        np.testing.assert_allclose(ad * c, f0, rtol=1e-12, atol=1e-12 * scale)
