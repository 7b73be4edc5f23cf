"""Memory-bounded chunked sweeps (frontier_jax.chunked): equal to the in-memory path, bit for bit.

Transform checks (STYLE.md "Tests", kind 3): a grid cut into blocks (any budget, any
block shape, padded last tiles) gives exactly the arrays of :func:`frontier_jax.sweep.run`,
and the streamed netCDF file reads back as the same Dataset as the in-memory path's
:func:`frontier_jax.io.save`. Also: the block plan covers the grid once within the
budget, minimize per block, atomic output (nothing under the final name after a failure),
resume after an interrupt, no recompilation across blocks, the progress line, the CLI.
"""
import io as _io
import json
import logging
import math

import jax
import numpy as np
import pytest
import xarray as xr

from frontier_jax import chunked, config, io, sweep
from frontier_jax.cli import main

FIXED = {
    "model": "Llama-2-70B", "hardware": "H100-SXM5-80GB", "tp_decode": 4, "eta": 0.5,
    "request_tokens": 1360, "c_prefill": 0.33, "c_decode": 0.91, "decode_batch": 128,
}


def calibrated(axes=None, **sweep_opts):
    fixed = {k: v for k, v in FIXED.items() if k not in (axes or {})}
    axes = axes or {
        "alpha": {"start": 0.2, "stop": 0.97, "num": 13},
        "kv_bandwidth_gbps": {"start": 25, "stop": 900, "num": 7, "log": True},
        "slo": ["paper-tight", "paper-mid", "paper-relaxed"],
    }
    return config.from_dict({"sweep": {"name": "chunk-test", "mode": "calibrated", **sweep_opts},
                             "axes": axes, "fixed": fixed})


def assert_same_arrays(a, b):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # NaN == NaN here; no tolerance


def read(path):
    ds = xr.open_dataset(path)
    ds.attrs.pop("history")  # a timestamp
    return ds.load()


# --- the block plan ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape, cap", [((13, 7, 3), 1000), ((13, 7, 3), 21), ((13, 7, 3), 5), ((5, 1, 4), 3),
                                        ((1000, 1000, 1000), 10**6 - 1), ((7,), 3), ((2, 3), 100)])
def test_plan_covers_grid_once_within_budget(shape, cap):
    plan = chunked.make_plan(shape, per_point=10.0, budget=10.0 * cap)
    seen = np.zeros(shape, dtype=np.int32) if math.prod(shape) < 10**5 else None
    flat = 0
    n = 0
    for b in plan.blocks():
        assert b.size <= cap
        assert b.a == flat, "blocks run through the flattened grid in order"
        assert b.b - b.a == math.prod(b.shape)
        flat = b.b
        n += 1
        if seen is not None:
            seen[b.slices] += 1
    assert flat == math.prod(shape) and n == plan.n_blocks
    if seen is not None:
        assert (seen == 1).all()


def test_plan_keeps_minimized_trailing_dims_whole_or_says_why():
    plan = chunked.make_plan((10, 4, 6), per_point=1.0, budget=30, whole_trailing=1)
    assert all(b.shape[-1] == 6 for b in plan.blocks())
    with pytest.raises(ValueError, match="--max-memory.*minimized axes"):
        chunked.make_plan((10, 4, 6), per_point=1.0, budget=20, whole_trailing=2)


def test_minimize_with_leading_minimized_axis_is_refused_when_blocked():
    spec = calibrated(axes={"tp_decode": [1, 2, 4], "alpha": [0.3, 0.6, 0.9], "slo": ["paper-mid", "paper-tight"]},
                      minimize=["tp_decode"])
    names = sweep.output_names("calibrated")
    assert chunked.plan_for(spec, names, 10**9).n_blocks == 1  # fits whole: fine in any order
    with pytest.raises(ValueError, match="sweep.minimize.*last in \\[axes\\]"):
        chunked.plan_for(spec, names, 10**9, max_points=6)


@pytest.mark.parametrize("text, want", [("4GB", 4 * 10**9), ("512 MiB", 512 * 2**20), ("1e9", 10**9), ("2.5gb", 25 * 10**8)])
def test_parse_memory(text, want):
    assert chunked.parse_memory(text) == want


@pytest.mark.parametrize("text", ["lots", "4 XB", "-1GB", "10"])
def test_parse_memory_rejects(text):
    with pytest.raises(ValueError, match="--max-memory"):
        chunked.parse_memory(text)


# --- equal to the in-memory path --------------------------------------------------------------


@pytest.mark.parametrize("max_points", [None, 100, 21, 7, 1])
def test_blocks_equal_in_memory_bit_for_bit(max_points):
    spec = calibrated()
    timings = {}
    got = chunked.run(spec, max_points=max_points, timings=timings)
    assert_same_arrays(got, sweep.run(spec))
    if max_points is not None:
        assert timings["n_blocks"] > 1


def test_float32_blocks_equal_in_memory_bit_for_bit():
    # float32 is where XLA's vector and scalar code round differently; the shared tiles
    # make the blocked sweep equal anyway
    spec = calibrated(dtype="float32")
    assert_same_arrays(chunked.run(spec, max_points=11), sweep.run(spec))


def test_tiles_split_a_grid_larger_than_one_tile(monkeypatch):
    monkeypatch.setitem(sweep.TILE_MAX, ("cpu", "calibrated"), 128)
    spec = calibrated()  # 273 points: three tiles of 128, the last one padded
    assert sweep.tile_points(spec.size, "calibrated") == 128
    want = sweep.run(spec)
    assert_same_arrays(chunked.run(spec, max_points=50), want)
    assert_same_arrays(chunked.run(spec, max_points=200), want)


def test_streamed_file_reads_back_as_the_in_memory_dataset(tmp_path):
    spec = calibrated()
    io.save(io.to_dataset(spec, sweep.run(spec)), tmp_path / "ref.nc")
    timings = {}
    path = chunked.run_to_file(spec, tmp_path / "chunked.nc", max_points=20, timings=timings)
    assert timings["n_blocks"] > 5
    a, b = read(tmp_path / "ref.nc"), read(path)
    xr.testing.assert_identical(a, b)
    assert b["best_arch"].dtype == np.int8 and b["ttft_slo_ms"].dims == ("slo",)
    assert sorted(tmp_path.iterdir()) == sorted([tmp_path / "ref.nc", path])  # no partial file left


def test_minimize_per_block_equals_in_memory(tmp_path):
    axes = {"alpha": [0.3, 0.5, 0.8, 0.9], "slo": ["paper-mid", "paper-tight"], "kv_bandwidth_gbps": [5, 50],
            "tp_decode": [2, 1, 4]}
    spec = config.from_dict({"sweep": {"mode": "calibrated", "minimize": ["kv_bandwidth_gbps", "tp_decode"]},
                             "axes": axes, "fixed": {k: v for k, v in FIXED.items() if k != "tp_decode"}})
    io.save(io.to_dataset(spec, sweep.run(spec)), tmp_path / "ref.nc")
    timings = {}
    chunked.run_to_file(spec, tmp_path / "min.nc", max_points=12, timings=timings)
    assert timings["n_blocks"] == 4
    a, b = read(tmp_path / "ref.nc"), read(tmp_path / "min.nc")
    assert "tp_decode" not in b.dims and "argmin_tp_decode_pd" in b
    xr.testing.assert_identical(a, b)


def test_selected_outputs(tmp_path):
    spec = calibrated()
    path = chunked.run_to_file(spec, tmp_path / "x.nc", names=("delta_cpm", "best_arch"), max_points=30)
    ds = read(path)
    assert set(ds.data_vars) == {"delta_cpm", "best_arch"}
    want = io.to_dataset(spec, sweep.run(spec, names=("delta_cpm", "best_arch")))
    np.testing.assert_array_equal(ds["delta_cpm"].values, want["delta_cpm"].values)
    with pytest.raises(ValueError, match="--outputs: 'cpm_cb' is not an output of mode 'calibrated'"):
        chunked.run_to_file(spec, tmp_path / "y.nc", names=("cpm_cb",))
    assert not (tmp_path / "y.nc").exists()


# --- atomic output, resume --------------------------------------------------------------------


def test_failure_leaves_nothing(tmp_path):
    spec = calibrated()
    target = tmp_path / "out.nc"

    def boom(block):
        if block.index == 2:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        chunked.run_to_file(spec, target, max_points=20, on_block=boom)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_keeps_partial_and_resume_finishes_only_the_rest(tmp_path):
    spec = calibrated()
    target = tmp_path / "out.nc"
    part, record = chunked.partial_paths(target)

    def interrupt(block):
        if block.index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        chunked.run_to_file(spec, target, max_points=20, on_block=interrupt)
    assert not target.exists() and part.exists()
    rec = json.loads(record.read_text())
    assert rec["done"] == [0, 1, 2, 3] and rec["n_blocks"] > 4

    seen = []
    timings = {}
    chunked.run_to_file(spec, target, max_points=20, resume=True, on_block=lambda b: seen.append(b.index),
                        timings=timings)
    assert timings["resumed_blocks"] == 4 and seen == list(range(4, rec["n_blocks"]))
    assert not part.exists() and not record.exists()
    io.save(io.to_dataset(spec, sweep.run(spec)), tmp_path / "ref.nc")
    xr.testing.assert_identical(read(tmp_path / "ref.nc"), read(target))


@pytest.mark.parametrize("block, itemsize, cap", [((1, 1, 100, 200), 4, 2**22), ((3, 200, 100, 200), 4, 2**22),
                                                  ((5,), 8, 2**22), ((7, 13, 3), 8, 100), ((10**9,), 1, 2**20)])
def test_chunk_shape_within_block_and_cap(block, itemsize, cap):
    chunk = chunked.chunk_shape(block, itemsize, cap)
    assert len(chunk) == len(block)
    assert all(1 <= c <= b for c, b in zip(chunk, block))
    assert math.prod(chunk) * itemsize <= max(cap, itemsize)
    if math.prod(block) * itemsize <= cap:
        assert chunk == tuple(block)  # a small block is one chunk


def test_streamed_file_is_chunked_not_prefilled(tmp_path):
    """Chunked storage: HDF5 allocates space as blocks arrive, never fill values for the whole grid."""
    import netCDF4

    spec = calibrated()
    target = tmp_path / "out.nc"

    def stop_after_first(block):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        chunked.run_to_file(spec, target, max_points=21, on_block=stop_after_first)
    with netCDF4.Dataset(chunked.partial_paths(target)[0]) as nc:
        v = nc.variables["cpm_pd"]
        assert v.chunking() != "contiguous"
        assert math.prod(v.chunking()) <= 21
    chunked.run_to_file(spec, target, max_points=21)
    io.save(io.to_dataset(spec, sweep.run(spec)), tmp_path / "ref.nc")
    xr.testing.assert_identical(read(tmp_path / "ref.nc"), read(target))


def test_resume_of_another_sweep_starts_afresh(tmp_path):
    target = tmp_path / "out.nc"
    with pytest.raises(KeyboardInterrupt):
        chunked.run_to_file(calibrated(), target, max_points=20,
                            on_block=lambda b: (_ for _ in ()).throw(KeyboardInterrupt))
    other = calibrated(axes={"alpha": [0.4, 0.6], "slo": ["paper-mid"]})
    timings = {}
    chunked.run_to_file(other, target, max_points=20, resume=True, timings=timings)
    assert timings["resumed_blocks"] == 0
    np.testing.assert_array_equal(read(target)["cpm_pd"].values, io.to_dataset(other, sweep.run(other))["cpm_pd"].values)


# --- no recompilation, progress, memory -------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_many_blocks_compile_once(tmp_path):
    spec = calibrated(axes={"alpha": {"start": 0.21, "stop": 0.93, "num": 17}, "kv_bandwidth_gbps": [3.0, 30.0, 300.0],
                            "slo": ["paper-mid"]})
    logger = logging.getLogger("jax")
    handler, old = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            timings = {}
            # outputs no other test asks for: a structure compiled here for the first time
            chunked.run_to_file(spec, tmp_path / "x.nc", names=("t_kv", "sigma_co"), max_points=4, timings=timings)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert timings["n_blocks"] == 17
    tile_compiles = [m for m in handler.messages if m.startswith("Finished XLA compilation of jit(grid)")]
    assert len(tile_compiles) == 1


def test_progress_line():
    stream = _io.StringIO()
    bar = chunked.Progress(1000, stream=stream)
    bar.start()
    bar.update(250)
    bar.close()
    line = bar.line()
    assert "25.0%" in line and "250/1,000 points" in line and "points/s" in line and "ETA" in line
    assert stream.getvalue().count("\n") >= 1


def test_blocks_are_sized_from_the_budget():
    spec = calibrated()
    names = sweep.output_names("calibrated")
    tile = sweep.tile_points(spec.size, "calibrated")
    temp = chunked.temp_prior("calibrated", spec.dtype)
    per = chunked.bytes_per_point(names, spec.dtype)
    budget = int(chunked.tile_bytes(names, spec.dtype, tile, temp) + 3 * tile * per)
    plan = chunked.plan_for(spec, names, budget)
    assert plan.block_points * per + chunked.tile_bytes(names, spec.dtype, tile, temp) <= budget
    # the per-point estimate counts every output at its dtype (float64 here)
    assert chunked.output_bytes(names, "float64") == 8 * 11 + 1


# --- CLI ------------------------------------------------------------------------------------------


CFG = """
[sweep]
name = "cli-chunks"
mode = "calibrated"
[axes]
alpha = {start = 0.2, stop = 0.9, num = 9}
kv_bandwidth_gbps = [25, 100, 400]
slo = ["paper-tight", "paper-mid"]
[fixed]
model = "Llama-2-70B"
hardware = "H100-SXM5-80GB"
c_prefill = 0.33
c_decode = 0.91
decode_batch = 128
"""


def test_cli_blocked_sweep_equals_whole(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CFG)
    assert main(["sweep", str(cfg), "-o", str(tmp_path / "whole.nc")]) == 0
    assert main(["sweep", str(cfg), "-o", str(tmp_path / "blocks.nc"), "--chunk-points", "7", "--max-memory", "1GB",
                 "--progress"]) == 0
    err = capsys.readouterr().err
    assert "blocks of up to" in err and "points/s" in err and "ETA" in err
    xr.testing.assert_identical(read(tmp_path / "whole.nc"), read(tmp_path / "blocks.nc"))


@pytest.mark.parametrize("argv, parts", [
    (["--max-memory", "plenty"], ["--max-memory", "'plenty'", "allowed"]),
    (["--outputs", "cpm_pd,nope"], ["--outputs", "'nope'", "allowed"]),
    (["--chunk-points", "0"], ["--chunk-points", "allowed"]),
])
def test_cli_bad_options_exit_2_without_output(tmp_path, capsys, argv, parts):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CFG)
    out = tmp_path / "x.nc"
    assert main(["sweep", str(cfg), "-o", str(out), *argv]) == 2
    err = capsys.readouterr().err
    for p in parts:
        assert p in err
    assert not out.exists()


@pytest.mark.slow
def test_first_principles_blocks_equal_in_memory(tmp_path):
    # the real model (bisections, golden-section search, while loops) in float32, where
    # XLA's CPU code is most shape-sensitive; a few outputs keep the compile short
    spec = config.from_dict({
        "sweep": {"name": "fp-chunks", "mode": "first-principles", "dtype": "float32"},
        "axes": {"alpha": [0.3, 0.6, 0.9], "ttft_slo_ms": [200, 500, 1500, 4000], "tpot_slo_ms": [20.0, 50.0, 150.0],
                 "kv_bandwidth_gbps": [25, 450]},
        "fixed": {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB"},
    })
    names = ("cpm_pd", "cpm_co", "cpm_cb", "rho_co", "ttft_co", "best_arch", "status_co", "feasible_cb")
    want = sweep.run(spec, names=names)
    assert np.isfinite(want["cpm_co"]).any() and np.isfinite(want["cpm_pd"]).any()
    assert_same_arrays(chunked.run(spec, names=names, max_points=5), want)
    path = chunked.run_to_file(spec, tmp_path / "fp.nc", names=names, max_points=7)
    io.save(io.to_dataset(spec, want), tmp_path / "ref.nc")
    xr.testing.assert_identical(read(tmp_path / "ref.nc"), read(path))
