"""Distributed sweeps on Dask: a LocalCluster of two worker processes gives the single-process result.

The workers are separate processes (``processes=True``), as on a real cluster: the block
function and its inputs are pickled, each worker imports frontier_jax and compiles the
tile function itself. Equality is exact (the workers run the same tiles as the in-memory
path).
"""
import numpy as np
import pytest
import xarray as xr

from frontier_jax import chunked, config, io, sweep

distributed = pytest.importorskip("distributed")

FIXED = {
    "model": "Llama-2-70B", "hardware": "H100-SXM5-80GB", "tp_decode": 4, "eta": 0.5,
    "request_tokens": 1360, "c_prefill": 0.33, "c_decode": 0.91, "decode_batch": 128,
}


def spec_():
    return config.from_dict({
        "sweep": {"name": "dask-test", "mode": "calibrated"},
        "axes": {"alpha": {"start": 0.2, "stop": 0.97, "num": 11}, "kv_bandwidth_gbps": [25.0, 100.0, 400.0, 900.0],
                 "slo": ["paper-tight", "paper-mid", "paper-relaxed"]},
        "fixed": FIXED,
    })


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _no_history(ds):
    ds = ds.copy()
    ds.attrs.pop("history")
    return ds


@pytest.mark.slow
def test_lazy_dataset_on_two_workers_equals_single_process(client):
    spec = spec_()
    want = io.to_dataset(spec, sweep.run(spec))
    lazy = chunked.lazy_dataset(spec, max_points=24)
    assert lazy["cpm_pd"].chunks is not None and lazy["cpm_pd"].chunks[0] == (2, 2, 2, 2, 2, 1)  # two alphas per block
    with distributed.get_task_stream(client) as ts:
        got = lazy.compute()
    workers = {t["worker"] for t in ts.data if "_edge_block" in str(t["key"])}
    assert len(workers) == 2, "both workers evaluated blocks"
    xr.testing.assert_identical(_no_history(got), _no_history(want))


@pytest.mark.slow
def test_run_to_file_with_scheduler_equals_single_process(client, tmp_path):
    spec = spec_()
    io.save(io.to_dataset(spec, sweep.run(spec)), tmp_path / "ref.nc")
    timings = {}
    chunked.run_to_file(spec, tmp_path / "dask.nc", client=client, max_points=30, timings=timings)
    assert timings["n_blocks"] > 2
    a = xr.open_dataset(tmp_path / "ref.nc").load()
    b = xr.open_dataset(tmp_path / "dask.nc").load()
    xr.testing.assert_identical(_no_history(a), _no_history(b))


def test_lazy_dataset_refuses_minimize():
    raw = {"sweep": {"mode": "calibrated", "minimize": ["tp_decode"]},
           "axes": {"alpha": [0.3, 0.6], "tp_decode": [1, 2]},
           "fixed": {**{k: v for k, v in FIXED.items() if k != "tp_decode"}, "slo": "paper-mid"}}
    with pytest.raises(ValueError, match="minimize.*run_to_file"):
        chunked.lazy_dataset(config.from_dict(raw))


def test_lazy_dataset_without_cluster_matches_and_is_lazy():
    spec = spec_()
    lazy = chunked.lazy_dataset(spec, max_points=40)
    assert lazy["delta_cpm"].data.npartitions > 1  # nothing computed yet
    np.testing.assert_array_equal(lazy["delta_cpm"].values, io.to_dataset(spec, sweep.run(spec))["delta_cpm"].values)
