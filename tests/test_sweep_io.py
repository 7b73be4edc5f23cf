"""The sweep engine (jit of nested vmap) and the labeled netCDF layer.

Transform checks (STYLE.md "Tests", kind 3): the vmapped grid equals a plain Python loop
over :func:`frontier_jax.model.evaluate.evaluate`; a second sweep of the same shape does
not recompile. I/O: values, dtypes, CF attributes and catalog labels survive a netCDF
round trip, and a failed write leaves nothing behind.
"""
import itertools
import logging
import os
import stat

import hypothesis.strategies as st
import jax
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings

from frontier_jax import config, io, sweep
from frontier_jax.model.evaluate import evaluate
from frontier_jax.variables import OUTPUTS, STATUS_BITS

FIXED = {
    # sweeps/paper_breakeven.toml
    "model": "Llama-2-70B",
    "hardware": "H100-SXM5-80GB",
    "tp_decode": 4,
    "eta": 0.5,
    "request_tokens": 1360,
    "c_prefill": 0.33,
    "c_decode": 0.91,
    "decode_batch": 128,
}


def calibrated_spec(alpha=(0.3, 0.6, 0.9), gb_s=(25.0, 900.0), slo=("paper-tight", "paper-mid", "paper-relaxed"),
                    fixed=None, **sweep_opts):
    return config.from_dict(
        {
            "sweep": {"name": "t", "mode": "calibrated", **sweep_opts},
            "axes": {"alpha": list(alpha), "kv_bandwidth_gbps": list(gb_s), "slo": list(slo)},
            "fixed": {**FIXED, **(fixed or {})},
        }
    )


# --- vmap equals a Python loop --------------------------------------------------------------


def test_vmap_grid_equals_python_loop():
    spec = calibrated_spec(alpha=(0.2, 0.55, 0.97), gb_s=(3.125, 50.0), fixed={"tp_decode": 8, "eta": 0.2})
    grid = sweep.run(spec)
    dim_inputs, fixed = sweep.inputs(spec)
    assert grid["cpm_pd"].shape == spec.shape == (3, 2, 3)
    for idx in itertools.product(*(range(n) for n in spec.shape)):
        p = dict(fixed)
        for d, i in zip(dim_inputs, idx):
            p.update({name: values[i] for name, values in d.items()})
        point = evaluate(p, "calibrated")
        for name in sweep.output_names("calibrated"):
            want = np.asarray(point[name])
            if want.dtype.kind in "iub":
                assert grid[name][idx] == want, (name, idx)
            else:
                np.testing.assert_allclose(grid[name][idx], want, rtol=1e-13, atol=0, err_msg=f"{name} at {idx}")
    # the catalog axis really varies sigma_co (one capacity loss per SLO bin)
    assert len(np.unique(np.round(grid["sigma_co"][0, 0, :], 12))) == 3


# --- no recompilation for a second sweep of the same shape ---------------------------------


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def compile_log():
    """Messages JAX logs under ``jax.log_compiles``; count XLA compilations."""
    logger = logging.getLogger("jax")
    handler, old_level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            yield lambda: sum(m.startswith("Finished XLA compilation") for m in handler.messages)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_second_sweep_of_same_shape_does_not_recompile(compile_log):
    first = calibrated_spec(alpha=(0.31, 0.62, 0.93), gb_s=(11.0, 222.0))
    second = calibrated_spec(alpha=(0.2, 0.5, 0.8), gb_s=(7.0, 450.0), slo=("paper-mid", "paper-relaxed", "paper-tight"),
                             fixed={"eta": 0.9, "c_prefill": 1.0, "decode_batch": 64})
    assert sweep.structure(first) == sweep.structure(second)
    fn = sweep.make_sweep("calibrated", sweep.structure(first), sweep.output_names("calibrated"))

    a = sweep.run(first)
    compiles, cache = compile_log(), fn._cache_size()
    b = sweep.run(second)
    timings = {}
    c = sweep.run(calibrated_spec(alpha=(0.1, 0.4, 0.7), gb_s=(1.0, 2.0)), timings=timings)  # the CLI's path
    assert compile_log() == compiles
    assert fn._cache_size() == cache
    assert not np.allclose(a["cpm_pd"], b["cpm_pd"]) and not np.allclose(b["cpm_pd"], c["cpm_pd"])

    # control: the counter does see a compilation when the shape changes
    sweep.run(calibrated_spec(alpha=(0.1, 0.4, 0.7, 0.8), gb_s=(1.0, 2.0)))
    assert compile_log() > compiles
    assert fn._cache_size() == cache + 1


# --- MODEL.md §3 identities through a whole sweep's Dataset --------------------------------

unique3 = st.lists(st.floats(0.01, 0.99), min_size=3, max_size=3, unique=True)
unique2 = st.lists(st.floats(0.5, 2000.0), min_size=2, max_size=2, unique=True)


@settings(max_examples=25, deadline=None)
@given(
    alpha=unique3,
    gb_s=unique2,
    eta=st.floats(0.0, 1.0),
    c_prefill=st.floats(0.0, 20.0),
    c_decode=st.floats(0.0, 20.0),
    decode_batch=st.floats(1.0, 512.0),
    sigma=st.one_of(st.none(), st.floats(-5.0, 5.0)),
)
def test_identities_hold_in_a_calibrated_dataset(alpha, gb_s, eta, c_prefill, c_decode, decode_batch, sigma):
    fixed = {"eta": eta, "c_prefill": c_prefill, "c_decode": c_decode, "decode_batch": decode_batch}
    if sigma is not None:
        fixed["sigma_co"] = sigma  # else each SLO bin's capacity loss (paper_calibration.csv)
    spec = calibrated_spec(alpha=alpha, gb_s=gb_s, fixed=fixed)
    ds = io.to_dataset(spec, sweep.run(spec))
    P, D = ds["prompt_tokens"], ds["output_tokens"]
    a = P / (P + D)
    base = a * ds["c_prefill"] + (1 - a) * ds["c_decode"]
    scale = 1e-12 * (abs(base) + abs(ds["tau_kv"]) + abs(ds["sigma_co"]) + 1e-300)
    assert (abs(ds["cpm_pd"] - (base + ds["tau_kv"])) <= scale).all()
    assert (abs(ds["cpm_co"] - (base + ds["sigma_co"])) <= scale).all()
    assert (abs(ds["delta_cpm"] - (ds["sigma_co"] - ds["tau_kv"])) <= scale).all()
    assert (abs(ds["delta_cpm"] - (ds["cpm_co"] - ds["cpm_pd"])) <= scale).all()
    np.testing.assert_array_equal(ds["best_arch"], np.where(ds["delta_cpm"] >= 0, 0, 1))
    # t_kv [ms] = KV_req [B] / (B [GB/s] 1e9) * 1e3, along the bandwidth coordinate
    t_kv = ds["kv_bytes_per_request"] / (ds["kv_bandwidth_gbps"] * 1e9) * 1e3
    np.testing.assert_allclose(ds["t_kv"], t_kv.transpose(*ds["t_kv"].dims), rtol=1e-13)
    prompt, want = xr.broadcast(ds["prompt_tokens"], ds["alpha"] * 1360.0)
    np.testing.assert_allclose(prompt, want.transpose(*prompt.dims), rtol=1e-13)


def test_calibrated_minimize_keeps_identities_and_best_arch():
    # MODEL.md §7 "Optimizing over a dimension": the minimum and the argmin are kept, and
    # the identities of §3 still hold on the selected points.
    raw = {
        "sweep": {"mode": "calibrated"},
        "axes": {"alpha": [0.3, 0.8], "tp_decode": [2, 1, 4], "slo": ["paper-mid", "paper-tight"]},
        "fixed": {**{k: v for k, v in FIXED.items() if k != "tp_decode"}, "kv_bandwidth_gbps": 5},
    }
    full_spec = config.from_dict(raw)
    spec = config.from_dict({**raw, "sweep": {"mode": "calibrated", "minimize": ["tp_decode"]}})
    full = io.to_dataset(full_spec, sweep.run(full_spec))
    ds = io.to_dataset(spec, sweep.run(spec))
    assert "tp_decode" not in ds.dims and ds.attrs["minimized_over"] == "tp_decode"
    # tau_KV grows with the decode instance's price (pi_d = N_d c): the cheapest P/D has N_d = 1
    np.testing.assert_array_equal(ds["argmin_tp_decode_pd"], 1.0)
    xr.testing.assert_allclose(ds["cpm_pd"], full["cpm_pd"].min("tp_decode"))
    xr.testing.assert_allclose(ds["cpm_co"], full["cpm_co"].min("tp_decode"))
    for name in ("prompt_tokens", "output_tokens", "best_arch", "delta_cpm", "sigma_co", "tau_kv"):
        assert name in ds, name
    a = ds["prompt_tokens"] / (ds["prompt_tokens"] + ds["output_tokens"])
    base = a * ds["c_prefill"] + (1 - a) * ds["c_decode"]
    xr.testing.assert_allclose(ds["cpm_pd"], base + ds["tau_kv"], rtol=1e-13)
    xr.testing.assert_allclose(ds["cpm_co"], base + ds["sigma_co"], rtol=1e-13)
    xr.testing.assert_allclose(ds["delta_cpm"], ds["sigma_co"] - ds["tau_kv"], rtol=1e-12)
    np.testing.assert_array_equal(ds["best_arch"].transpose(*ds["delta_cpm"].dims), np.where(ds["delta_cpm"] >= 0, 0, 1))
    assert ds["best_arch"].dtype == np.int8


# --- netCDF round trip --------------------------------------------------------------------


def _round_trip_dataset():
    spec = calibrated_spec(alpha=(0.25, 0.75), gb_s=(50.0,), slo=("paper-tight", "paper-mid", "paper-relaxed"))
    shape = spec.shape
    rng = np.random.default_rng(1)
    out = {
        "cpm_pd": rng.uniform(0.1, 2.0, shape),
        "t_kv": rng.uniform(1e-3, 1e-1, shape),  # SI seconds in, ms in the Dataset
        "best_arch": rng.integers(-1, 3, shape),
        "feasible_pd": rng.integers(0, 2, shape).astype(bool),
        "status_pd": rng.integers(0, 64, shape),
    }
    return spec, out, io.to_dataset(spec, out)


def test_netcdf_round_trip(tmp_path):
    spec, out, ds = _round_trip_dataset()
    np.testing.assert_allclose(ds["t_kv"], out["t_kv"] * 1e3, rtol=1e-15)  # stored in edge units (ms)
    path = io.save(ds, tmp_path / "sub" / "r.nc")
    assert path == tmp_path / "sub" / "r.nc" and path.exists()
    back = io.open_dataset(path)

    for name in ds.data_vars:
        assert back[name].dtype == ds[name].dtype, name
        np.testing.assert_array_equal(back[name].values, ds[name].values)
    assert back["feasible_pd"].dtype == np.bool_
    assert back["status_pd"].dtype == np.int16
    assert back["best_arch"].dtype == np.int8
    assert back["cpm_pd"].dtype == np.float64

    for name in ("cpm_pd", "t_kv"):
        assert back[name].attrs["units"] == OUTPUTS[name].units
        assert back[name].attrs["long_name"] == OUTPUTS[name].long_name
    assert back["t_kv"].attrs["units"] == "ms"
    np.testing.assert_array_equal(back["status_pd"].attrs["flag_masks"], list(STATUS_BITS.values()))
    assert back["status_pd"].attrs["flag_meanings"].split() == list(STATUS_BITS)
    assert back["best_arch"].attrs["flag_meanings"] == "none pd co cb"
    for key in ("history", "config_sha256", "mode", "fixed_model", "fixed_hardware"):
        assert back.attrs[key] == ds.attrs[key], key
    assert "frontier_jax" in back.attrs["history"] and spec.config_hash in back.attrs["history"]

    # categorical labels and their catalog coordinates
    assert list(back["slo"].values) == ["paper-tight", "paper-mid", "paper-relaxed"]
    np.testing.assert_array_equal(back["ttft_slo_ms"].values, [200.0, 500.0, 1000.0])  # slo_contracts.csv
    assert back["ttft_slo_ms"].dims == ("slo",)
    np.testing.assert_array_equal(back["alpha"].values, [0.25, 0.75])
    assert back["kv_bandwidth_gbps"].attrs["units"] == "GB/s"
    assert back.sel(slo="paper-mid", alpha=0.75)["cpm_pd"].item() == ds.sel(slo="paper-mid", alpha=0.75)["cpm_pd"].item()


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    _, _, ds = _round_trip_dataset()
    target = tmp_path / "r.nc"

    def broken(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        io.save(ds, target)
    assert list(tmp_path.iterdir()) == []

    # an existing file is left untouched by a failed overwrite
    target.write_bytes(b"previous result")
    with pytest.raises(OSError):
        io.save(ds, target)
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]
    assert target.read_bytes() == b"previous result"


def test_saved_file_has_ordinary_permissions(tmp_path):
    _, _, ds = _round_trip_dataset()
    mask = os.umask(0o022)
    os.umask(mask)
    path = io.save(ds, tmp_path / "r.nc")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
