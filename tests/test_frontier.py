"""Break-even roots and the Pareto envelope (MODEL.md §7; frontier_jax.frontier).

* Root finder on hand-built g: known crossings, several crossings on one curve, curves
  without a sign change (reported as no crossing, never a spurious root), a jump of g
  (a sign change without a zero), NaN where one side is infeasible.
* The real model (calibrated mode, MODEL.md §3): with a given sigma_co the break-even is
  tau_KV(alpha*, B) = sigma_co, and tau_KV is proportional to alpha/B, so
  alpha* = sigma_co·B/K and d alpha*/dB = alpha*/B exactly. The refined root, the
  implicit-function-theorem slope from ``jax.grad`` and central finite differences of the
  re-solved root must all agree (STYLE.md kinds 1 and 3).
* Pareto envelope on hand-built points: dominated points removed, ties kept, inf/NaN
  (infeasible) points never on it and never dominating; checked against a brute-force
  O(n²) definition on random draws.

One calibrated compile of the shared point evaluator and one of its gradient serve every
model test (module-scoped fixtures).
"""
import math

import numpy as np
import pytest

from frontier_jax import config, frontier

# ---------------------------------------------------------------------------------------
# root finder on hand-built g


def _solve(g_fun, grid, curves):
    """Brackets on the grid, refined with ``g_fun(curve, x)``; returns (curve, roots)."""
    g = np.array([[g_fun(c, x) for x in grid] for c in curves])
    (bc, bj), (zc, zj) = frontier.find_brackets(g)
    cs = np.asarray(curves)[bc]

    def fun(x):
        return np.array([g_fun(c, xi) for c, xi in zip(cs, x)])

    roots = frontier.refine_brackets(fun, grid[bj], grid[bj + 1], g[bc, bj], g[bc, bj + 1])
    return g, (bc, bj), (zc, zj), roots


def test_known_crossings_are_found_to_tolerance():
    grid = np.linspace(0.2, 0.97, 12)
    targets = [0.25, 0.4137, 0.5, 0.9123]  # one per curve, on and between grid points

    def g(c, x):  # a nonlinear, monotone g with its zero at targets[c]
        return math.log((1.0 + 3.0 * x) / (1.0 + 3.0 * targets[c]))

    _, (bc, _), (zc, _), r = _solve(g, grid, range(len(targets)))
    assert len(zc) == 0  # no target sits exactly on the grid
    assert sorted(bc.tolist()) == [0, 1, 2, 3]
    assert np.all(r.kind == frontier.KIND_ROOT)
    np.testing.assert_allclose(r.x, np.asarray(targets)[bc], atol=1e-10)
    assert np.all(np.abs(r.g) <= 1e-9)


def test_several_crossings_on_one_curve():
    grid = np.linspace(0.0, 1.0, 41)
    zeros = np.arange(0, 6) * np.pi / 16.0 + 0.013  # the six zeros of sin(16 (x - 0.013)) in [0, 1]

    def g(c, x):
        return math.sin(16.0 * (x - 0.013))

    gv, (bc, bj), _, r = _solve(g, grid, [0])
    assert len(bc) == len(zeros) == 6
    order = np.argsort(r.x)
    np.testing.assert_allclose(r.x[order], zeros, atol=1e-10)
    assert np.all(r.kind == frontier.KIND_ROOT)
    # every refined root stays inside its own bracket
    assert np.all((r.x >= grid[bj]) & (r.x <= grid[bj + 1]))


def test_no_crossing_is_no_root():
    grid = np.linspace(0.2, 0.97, 20)
    curves = {
        0: lambda x: 0.3 + x,  # one side wins everywhere (g > 0)
        1: lambda x: -1e-6 - x**2,  # the other side wins everywhere, close to 0
        2: lambda x: (x - 0.6) ** 2,  # touches 0 at a tangent without changing sign
    }
    g = np.array([[curves[c](x) for x in grid] for c in curves])
    (bc, _), (zc, _) = frontier.find_brackets(g)
    assert len(bc) == 0 and len(zc) == 0
    r = frontier.refine_brackets(lambda x: x, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))
    assert r.x.size == 0


def test_grid_zero_counts_once():
    grid = np.array([0.1, 0.2, 0.3, 0.4])
    g = (grid - 0.3)[None, :]
    (bc, _), (zc, zj) = frontier.find_brackets(g)
    assert len(bc) == 0  # 0 is not a sign of either neighbour's bracket
    assert zc.tolist() == [0] and grid[zj].tolist() == [0.3]


def test_nan_breaks_brackets():
    """No bracket across a point where g is undefined (one side infeasible)."""
    g = np.array([[-1.0, np.nan, 1.0, 2.0], [-1.0, -0.5, np.nan, np.nan]])
    (bc, bj), (zc, _) = frontier.find_brackets(g)
    assert len(bc) == 0 and len(zc) == 0


def test_jump_is_not_a_root():
    """A sign change across a discontinuity is reported as a jump, not a zero."""
    grid = np.linspace(0.0, 1.0, 11)

    def g(c, x):
        return 0.5 if x > 0.537 else -0.7

    _, (bc, _), _, r = _solve(g, grid, [0])
    assert len(bc) == 1
    assert r.kind.tolist() == [frontier.KIND_JUMP]
    assert abs(r.x[0] - 0.537) < 1e-9 and r.width[0] < 1e-9


def test_undefined_inside_bracket():
    grid = np.linspace(0.0, 1.0, 3)

    def g(c, x):  # finite on the grid, NaN in (0.6, 0.9)
        return np.nan if 0.6 < x < 0.9 else x - 0.75

    _, (bc, _), _, r = _solve(g, grid, [0])
    assert r.kind.tolist() == [frontier.KIND_UNDEFINED]


def test_ift_slope_flags_zero_derivative():
    s, ok = frontier.ift_slope([2.0, 0.0, np.nan], [1.0, 1.0, 1.0])
    assert s[0] == -0.5 and ok.tolist() == [True, False, False]
    assert np.isnan(s[1]) and np.isnan(s[2])


# ---------------------------------------------------------------------------------------
# the real model: calibrated mode with a given sigma_co

FIXED = {
    "model": "Llama-2-70B",
    "hardware": "H100-SXM5-80GB",
    "tp_decode": 4,
    "eta": 0.5,
    "request_tokens": 1360,
    "c_prefill": 0.33,
    "c_decode": 0.91,
    "decode_batch": 1,  # a small decode batch makes the tax large enough to cross sigma_co
    "sigma_co": 0.01,
}
ALPHA = {"start": 0.2, "stop": 0.97, "num": 12}
B = [25.0, 40.0, 60.0, 900.0]


def _spec(fixed=None, b=B):
    return config.from_dict({"sweep": {"name": "t-frontier", "mode": "calibrated"},
                             "axes": {"alpha": dict(ALPHA), "kv_bandwidth_gbps": list(b)},
                             "fixed": {**FIXED, **(fixed or {})}})


@pytest.fixture(scope="module")
def model_case():
    spec = _spec()
    ds = frontier.run_spec(spec)
    cx = frontier.breakeven(ds, spec, "co")
    # K: tau_KV = K * alpha / B, read off the model at one point
    t = ds["tau_kv"].isel(alpha=3, kv_bandwidth_gbps=0)
    k = float(t) * float(t["kv_bandwidth_gbps"]) / float(t["alpha"])
    return spec, ds, cx, k


def test_model_tau_is_proportional_to_alpha_over_b(model_case):
    """The premise of the analytic root: tau_KV * B / alpha is one constant."""
    _, ds, _, k = model_case
    ratio = ds["tau_kv"] * ds["kv_bandwidth_gbps"] / ds["alpha"]
    np.testing.assert_allclose(ratio.values, k, rtol=1e-12)


def test_model_crossings_match_the_analytic_root(model_case):
    spec, ds, cx, k = model_case
    a_lo, a_hi = ALPHA["start"], ALPHA["stop"]
    for b in B:
        c = cx.sel(kv_bandwidth_gbps=b)
        expect = FIXED["sigma_co"] * b / k
        if a_lo < expect < a_hi:
            assert int(c["n_crossings"]) == 1
            assert int(c["kind"][0]) == frontier.KIND_ROOT
            assert float(c["alpha_star"][0]) == pytest.approx(expect, rel=1e-9)
            # tau grows with alpha: disaggregation is cheaper *below* alpha*
            assert int(c["direction"][0]) == -1
        else:
            # no crossing in range: reported as such, with the same winner at both ends
            assert int(c["n_crossings"]) == 0
            assert np.all(np.isnan(c["alpha_star"].values))
            assert int(c["winner_at_min"]) == int(c["winner_at_max"])
    # the case needs both kinds of curve
    inside = [a_lo < FIXED["sigma_co"] * b / k < a_hi for b in B]
    assert any(inside) and not all(inside)


def test_model_no_crossing_reports_the_winner():
    """sigma_co far above any tax: pd is cheaper on the whole range, and no root is invented."""
    spec = _spec({"sigma_co": 50.0}, b=[25.0, 900.0])
    ds = frontier.run_spec(spec)
    cx = frontier.breakeven(ds, spec, "co", slopes=False)
    assert cx["n_crossings"].values.tolist() == [0, 0]
    assert np.all(np.isnan(cx["alpha_star"].values))
    assert cx["winner_at_min"].values.tolist() == [frontier.WIN_PD] * 2
    assert cx["winner_at_max"].values.tolist() == [frontier.WIN_PD] * 2
    segs = frontier.segments(ds, cx, "co", kv_bandwidth_gbps=25.0)
    assert segs == [(ALPHA["start"], ALPHA["stop"], frontier.WIN_PD, "end")]


def test_model_ift_slope_matches_finite_differences(model_case):
    """d alpha*/dB by the IFT (jax.grad) = central FD of the re-solved root = alpha*/B."""
    spec, ds, cx, k = model_case
    b0 = 40.0
    c = cx.sel(kv_bandwidth_gbps=b0)
    a_star = float(c["alpha_star"][0])
    assert bool(c["slope_defined"][0])
    slope = float(c["dalpha_dB"][0])  # [1/(GB/s)]
    # re-solve the root on the model at B +- h
    h = 0.5
    spec_fd = _spec(b=[b0 - h, b0 + h])
    cx_fd = frontier.breakeven(frontier.run_spec(spec_fd), spec_fd, "co", slopes=False)
    lo, hi = (float(cx_fd.sel(kv_bandwidth_gbps=b)["alpha_star"][0]) for b in (b0 - h, b0 + h))
    fd = (hi - lo) / (2 * h)
    assert slope == pytest.approx(fd, rel=1e-7)
    assert slope == pytest.approx(a_star / b0, rel=1e-8)
    # the partials themselves: dg/dalpha < 0 (tau rises with alpha), dg/dB > 0
    assert float(c["dg_dalpha"][0]) < 0 < float(c["dg_dB"][0])


def test_breakeven_needs_alpha():
    spec = config.from_dict({"sweep": {"name": "t", "mode": "calibrated"},
                             "axes": {"kv_bandwidth_gbps": [25.0, 50.0]}, "fixed": {**FIXED, "alpha": 0.5}})
    import xarray as xr

    ds = xr.Dataset({"cpm_pd": ("kv_bandwidth_gbps", [1.0, 1.0]), "cpm_co": ("kv_bandwidth_gbps", [1.0, 1.0])},
                    coords={"kv_bandwidth_gbps": [25.0, 50.0]})
    with pytest.raises(ValueError, match="'alpha' dim"):
        frontier.breakeven(ds, spec)


# ---------------------------------------------------------------------------------------
# Pareto envelope


def test_pareto_removes_dominated_points():
    x = [1, 2, 3, 4, 2.5]
    y = [5, 3, 4, 1, 3.5]  # (3, 4) is dominated by (2, 3); (2.5, 3.5) too
    assert frontier.pareto_mask(x, y).tolist() == [True, True, False, True, False]


def test_pareto_ties():
    # equal points both stay; same x: only the lower y; same y: only the lower x
    x = [1, 1, 2, 2, 3, 4]
    y = [5, 5, 3, 4, 2, 2]
    assert frontier.pareto_mask(x, y).tolist() == [True, True, True, False, True, False]


def test_pareto_infeasible_points():
    inf, nan = np.inf, np.nan
    x = [1.0, 0.5, 2.0, nan, 3.0, 0.1]
    y = [3.0, inf, 2.0, 0.1, 1.0, nan]  # inf CPM (infeasible) and NaN never on it, never dominate
    assert frontier.pareto_mask(x, y).tolist() == [True, False, True, False, True, False]
    assert not frontier.pareto_mask([inf, nan], [1.0, inf]).any()
    assert frontier.pareto_mask([], []).shape == (0,)
    with pytest.raises(ValueError, match="same shape"):
        frontier.pareto_mask([1, 2], [1])


def test_pareto_equals_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 40))
        x = rng.integers(0, 8, n).astype(float)  # many ties
        y = rng.integers(0, 8, n).astype(float)
        x[rng.random(n) < 0.1] = np.inf
        y[rng.random(n) < 0.1] = np.nan
        ok = np.isfinite(x) & np.isfinite(y)
        brute = np.array([ok[j] and not any(ok[i] and x[i] <= x[j] and y[i] <= y[j] and (x[i] < x[j] or y[i] < y[j])
                                            for i in range(n)) for j in range(n)])
        assert frontier.pareto_mask(x, y).tolist() == brute.tolist()
        m2 = frontier.pareto_mask(x.reshape(1, -1), y.reshape(1, -1))  # shape is kept
        assert m2.shape == (1, n) and m2.ravel().tolist() == brute.tolist()


def test_envelope_labels_architectures():
    pts = {
        "pd": {"ttft_ms": np.array([100.0, 300.0, 1000.0]), "cpm": np.array([2.0, 1.0, 0.9])},
        "co": {"ttft_ms": np.array([150.0, 400.0, 900.0]), "cpm": np.array([1.5, 0.95, 0.7])},
        "cb": {"ttft_ms": np.array([500.0]), "cpm": np.array([np.inf])},
    }
    env = frontier.envelope(pts)
    # pd at 1000 ms is dominated by co at 900 ms; every other point is a trade-off
    assert env["ttft_ms"].tolist() == [100.0, 150.0, 300.0, 400.0, 900.0]
    assert env["arch"].tolist() == ["pd", "co", "pd", "co", "co"]
    assert env["on_envelope"]["pd"].tolist() == [True, True, False]
    assert env["on_envelope"]["co"].tolist() == [True, True, True]
    assert env["on_envelope"]["cb"].tolist() == [False]
    assert np.all(np.diff(env["cpm"]) < 0)  # a frontier: cost falls as TTFT loosens
