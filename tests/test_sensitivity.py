"""Sensitivities by forward-mode autodiff (MODEL.md §7; issue 5).

- first principles: every derivative against central finite differences in float64
  (relative error <= 1e-5 where the one-sided slopes agree, i.e. away from kinks);
- calibrated mode: the paper frame's derivatives are known in closed form
  (d CPM_PD / d c_prefill = alpha, d delta / d sigma_co = 1, ...);
- the crossover alpha*: its IFT sensitivity to B against alpha* recomputed at B +- h;
- rankings, and the ``frontier sensitivity`` command (netCDF out, clean errors).
"""
import numpy as np
import pytest
import xarray as xr

from frontier_jax import config, sensitivity, sweep
from frontier_jax.cli import main

FP_RAW = {
    "sweep": {"name": "sens-test", "mode": "first-principles"},
    "axes": {"alpha": [0.3, 0.5, 0.7, 0.85, 0.95], "kv_bandwidth_gbps": [5.0, 450.0]},
    "fixed": {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB", "slo": "paper-mid", "request_tokens": 1360,
              "kappa": 0.1, "step_overhead_ms": 0.5},
}

CAL_RAW = {
    "sweep": {"name": "sens-cal", "mode": "calibrated"},
    "axes": {"alpha": {"start": 0.2, "stop": 0.97, "num": 12}, "kv_bandwidth_gbps": [0.5, 2.0, 5.0]},
    "fixed": {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB", "tp_decode": 4, "eta": 0.5, "c_prefill": 0.33,
              "c_decode": 0.91, "decode_batch": 128, "sigma_co": 0.001, "request_tokens": 1360},
}


def _spec(raw):
    return config.from_dict(raw)


@pytest.fixture(scope="module")
def fd_check():
    return sensitivity.finite_difference_check(_spec(FP_RAW))


def test_first_principles_derivatives_match_central_differences(fd_check):
    smooth_total = finite_total = 0
    worst = []
    for (param, y), d in fd_check.items():
        finite = np.isfinite(d["fd"]) & np.isfinite(d["ad"])
        smooth = d["smooth"]
        smooth_total += int(smooth.sum())
        finite_total += int(finite.sum())
        err = d["rel_err"][smooth]
        if err.size and np.nanmax(err) > 1e-5:
            worst.append((param, y, float(np.nanmax(err))))
        # gradients are finite wherever the output is
        assert np.all(np.isfinite(d["ad"][smooth])), (param, y)
    assert not worst, worst
    # the check is not vacuous: most (parameter, output, point) triples are smooth
    assert smooth_total >= 0.7 * finite_total, (smooth_total, finite_total)
    assert smooth_total > 500


def test_price_elasticity_is_one_everywhere():
    ds = sensitivity.compute(_spec(FP_RAW), crossover=False)
    for y in ("cpm_pd", "cpm_co", "cpm_cb"):
        e = ds[f"elasticity_{y}"].sel(parameter="price_usd_per_gpu_hr").values
        v = ds[y].values
        assert np.isfinite(v).any()
        np.testing.assert_allclose(e[np.isfinite(v)], 1.0, rtol=1e-12)
        assert np.all(np.isnan(e[~np.isfinite(v)])), "no elasticity where the CPM is infinite"


def test_calibrated_derivatives_in_closed_form():
    spec = _spec(CAL_RAW)
    ds = sensitivity.compute(spec)
    alpha = ds["alpha"].values[:, None]
    d = lambda y, p: ds[f"d_{y}"].sel(parameter=p).values  # noqa: E731
    np.testing.assert_allclose(d("cpm_pd", "c_prefill"), np.broadcast_to(alpha, ds["cpm_pd"].shape), rtol=1e-12)
    np.testing.assert_allclose(d("cpm_co", "c_decode"), np.broadcast_to(1 - alpha, ds["cpm_co"].shape), rtol=1e-12)
    np.testing.assert_allclose(d("delta_cpm", "sigma_co"), 1.0, rtol=1e-12)
    np.testing.assert_allclose(d("delta_cpm", "c_prefill"), 0.0, atol=1e-12)
    # tau_KV ~ 1/B at fixed everything else: d delta/d ln B = +tau_KV
    tau = np.asarray(sweep.run(spec)["tau_kv"], dtype=float)
    b = ds["kv_bandwidth_gbps"].values[None, :]
    np.testing.assert_allclose(d("delta_cpm", "kv_bandwidth_gbps") * b, tau, rtol=1e-10)
    # tau_KV is linear in (1 - eta): d CPM_PD / d eta = -tau/(1 - eta)
    np.testing.assert_allclose(d("cpm_pd", "eta"), -tau / (1 - 0.5), rtol=1e-10)


def test_crossover_slope_matches_recomputed_crossover():
    """d alpha*/dB by the implicit function theorem vs alpha* recomputed at B(1 +- h)."""
    base = _spec(CAL_RAW)
    ds = sensitivity.compute(base)
    a0 = ds["alpha_star"].values
    assert np.isfinite(a0).any(), "the calibrated grid should cross somewhere"
    h = 1e-6
    shifted = []
    for s in (1 + h, 1 - h):
        raw = {**CAL_RAW, "axes": {**CAL_RAW["axes"], "kv_bandwidth_gbps": [b * s for b in CAL_RAW["axes"]["kv_bandwidth_gbps"]]}}
        shifted.append(sensitivity.compute(_spec(raw))["alpha_star"].values)
    b = ds["kv_bandwidth_gbps"].values
    fd = (shifted[0] - shifted[1]) / (2 * h * b)
    ift = ds["d_alpha_star"].sel(parameter="kv_bandwidth_gbps").values
    ok = np.isfinite(a0)
    np.testing.assert_allclose(ift[ok], fd[ok], rtol=1e-4)
    st = ds["crossover_status"].values
    assert np.all((st[~ok] & sensitivity.CROSSOVER_STATUS["no_crossover"]) > 0)


def test_rankings_sorted_by_median_abs_elasticity():
    ds = sensitivity.compute(_spec(FP_RAW), crossover=False)
    for r in ds["region"].values:
        rank = ds.attrs[f"ranking_{r}"].split()
        if int(ds["region_points"].sel(region=r)) == 0:
            assert rank == []
            continue
        med = [float(ds["median_abs_elasticity"].sel(region=r, parameter=p)) for p in rank]
        assert med == sorted(med, reverse=True)
        assert "price_usd_per_gpu_hr" in rank
    assert int(ds["region_points"].sum()) == int((ds["best_arch"].values >= 0).sum())


def test_cli_sensitivity_writes_netcdf(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        '[sweep]\nname = "s"\nmode = "calibrated"\n[axes]\nalpha = {start = 0.2, stop = 0.97, num = 6}\n'
        'kv_bandwidth_gbps = [3, 450]\n[fixed]\nmodel = "Llama-2-70B"\nhardware = "H100-SXM5-80GB"\n'
        'c_prefill = 0.33\nc_decode = 0.91\ndecode_batch = 128\nsigma_co = 0.02\n')
    out = tmp_path / "s.nc"
    assert main(["sensitivity", str(cfg), "-o", str(out), "--params", "alpha,eta,kv_bandwidth_gbps,sigma_co"]) == 0
    ds = xr.open_dataset(out)
    assert list(ds["parameter"].values) == ["alpha", "eta", "kv_bandwidth_gbps", "sigma_co"]
    assert ds["elasticity_delta_cpm"].dims == ("parameter", "alpha", "kv_bandwidth_gbps")
    assert "alpha_star" in ds and ds["d_cpm_pd"].attrs["units"].startswith("USD/Mtok")
    ds.close()
    assert "largest median |elasticity|" in capsys.readouterr().out
    bad = tmp_path / "b.nc"
    assert main(["sensitivity", str(cfg), "-o", str(bad), "--params", "alpha,warp"]) == 2
    assert "'warp' is not a continuous input" in capsys.readouterr().err
    assert not bad.exists()
    cfg.write_text(cfg.read_text().replace('mode = "calibrated"', 'mode = "calibrated"\nminimize = ["alpha"]'))
    assert main(["sensitivity", str(cfg), "-o", str(bad)]) == 2
    assert "minimize" in capsys.readouterr().err
    assert not bad.exists()
