"""Benchmark of the first-principles sweep: JAX engine against NumPy and a Python loop.

    python bench/run.py [--quick] [--json PATH] [--devices N] [--repeats R]

Measures, for the full three-architecture first-principles model
(``frontier_jax.model.evaluate.evaluate(p, "first-principles")``, all outputs, through the
sweep engine):

- forward sweep throughput [points/s] over grids of 10^4 points and up, float32, compile
  apart from run, medians of ``--repeats`` runs, peak resident memory sampled during each;
- forward + all sensitivities (``frontier_jax.sensitivity.make_sensitivity``: ``jacfwd`` of
  cpm_pd, cpm_co, cpm_cb, delta_cpm with respect to every continuous input; float64, as that
  module always is) [points/s], with the float64 forward for a same-dtype ratio;
- the same equations in plain NumPy broadcasting (``bench/numpy_model.py``) and as a plain
  Python loop over points (the NumPy model called on one point at a time, small grid);
- a grid too large for memory (10^9 points by default) streamed to netCDF in memory-bounded
  blocks by ``frontier_jax.chunked.run_to_file`` in a child process, stopped after a time
  limit: its throughput, its peak RSS (the child's ``ru_maxrss``) and the extrapolated
  time of the whole grid (an extrapolation, labeled as such);
- XLA's cost analysis of the compiled tile (FLOPs, transcendentals, bytes per point) and
  this machine's measured peaks (a float32 matmul, a memcpy) for the fraction they imply;
- where the time goes: each architecture and the M/D/1 routines timed alone.

Prints a markdown table; ``--json PATH`` writes every number (keys of the largest grid's
medians at the top level: forward_points_per_s, sensitivity_points_per_s,
numpy_points_per_s, python_points_per_s, compile_s, peak_rss_mb).

The machine is shared and noisy: medians of several runs, and the load average is
recorded with the results.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Grid shapes (alpha, kv_bandwidth_gbps, ttft_slo_ms, tpot_slo_ms) per decimal exponent.
SHAPES = {
    3: (10, 10, 5, 2),
    4: (25, 20, 5, 4),
    5: (50, 25, 10, 8),
    6: (100, 50, 20, 10),
    7: (100, 50, 40, 50),
    8: (200, 100, 50, 100),
    9: (250, 200, 100, 200),
    10: (500, 200, 100, 1000),
}
BIG_OUTPUTS = ("cpm_pd", "cpm_co", "cpm_cb", "delta_cpm", "best_arch")
"""Outputs kept by the streamed big-grid run (a 10^9-point file of all 49 outputs is 200 GB)."""


def _set_devices(n: int) -> None:
    """Split the host CPU into ``n`` JAX devices (before jax is imported)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags and n > 1:
        os.environ["XLA_FLAGS"] = (flags + f" --xla_force_host_platform_device_count={n}").strip()


def grid_spec(exp: int, dtype: str = "float32", name: str = "bench"):
    """A 4-axis first-principles sweep of about 10^exp points (Llama-2-70B on H100)."""
    from frontier_jax import config

    a, b, c, d = SHAPES[exp]
    return config.from_dict({
        "sweep": {"name": name, "mode": "first-principles", "dtype": dtype},
        "axes": {
            "alpha": {"start": 0.2, "stop": 0.97, "num": a},
            "kv_bandwidth_gbps": {"start": 25, "stop": 900, "num": b, "log": True},
            "ttft_slo_ms": {"start": 200, "stop": 3000, "num": c, "log": True},
            "tpot_slo_ms": {"start": 20, "stop": 200, "num": d, "log": True},
        },
        "fixed": {"model": "Llama-2-70B", "hardware": "H100-SXM5-80GB"},
    })


class RssSampler:
    """Peak resident set size of this process while the block runs, sampled every 20 ms [MB]."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mb(self) -> float:
        return self.peak / 1e6


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- machine peaks ---------------------------------------------------------------------------


def machine_peaks(quick: bool) -> dict:
    """Measured float32 matmul rate [FLOP/s] (jnp.dot, all devices' threads) and memcpy rate [B/s]."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    n = 2048
    a = jnp.ones((n, n), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    jax.block_until_ready(mm(a))
    ts = []
    for _ in range(3 if quick else 5):
        t0 = time.perf_counter()
        jax.block_until_ready(mm(a))
        ts.append(time.perf_counter() - t0)
    flops = 2.0 * n**3 / min(ts)
    src = np.ones(2**26 if quick else 2**27, np.float32)  # 256 / 512 MB
    dst = np.empty_like(src)
    np.copyto(dst, src)
    ts = []
    for _ in range(3 if quick else 5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        ts.append(time.perf_counter() - t0)
    bw = 2.0 * src.nbytes / min(ts)  # read + write
    return {"matmul_flop_per_s": flops, "memcpy_bytes_per_s": bw}


# --- JAX forward -----------------------------------------------------------------------------


def forward(exp: int, dtype: str, repeats: int, max_memory: int) -> dict:
    """Forward sweep of all outputs through the engine on every device, held in memory."""
    import jax

    from frontier_jax import chunked, sweep

    spec = grid_spec(exp, dtype)
    # a grid of fewer tiles than devices runs on fewer devices (a call is one tile per device)
    n_tiles = -(-spec.size // sweep.tile_points(spec.size, spec.mode))
    devices = jax.devices()[:max(1, min(len(jax.devices()), n_tiles))]
    t = {}
    with RssSampler() as rss:
        chunked.run(spec, max_memory=max_memory, devices=devices, timings=t)  # compiles once per tile shape
        runs = []
        for _ in range(repeats):
            tr = {}
            chunked.run(spec, max_memory=max_memory, devices=devices, timings=tr)
            runs.append(tr["run_s"])
    return {
        "points": spec.size, "dtype": dtype, "compile_s": t["compile_s"], "first_run_s": t["run_s"],
        "run_s": runs, "run_s_median": median(runs), "points_per_s": spec.size / median(runs),
        "tile": t["tile"], "devices": t["devices"], "n_blocks": t["n_blocks"], "peak_rss_mb": rss.mb,
    }


def cost_analysis(exp: int, dtype: str) -> dict:
    """XLA's cost analysis of the compiled one-device tile, per point."""
    import numpy as np

    from frontier_jax import sweep

    spec = grid_spec(exp, dtype)
    names = sweep.output_names(spec.mode)
    fn = sweep.make_sweep(spec.mode, sweep.structure(spec), names)
    dim_inputs, fixed = sweep.inputs(spec)
    tile = sweep.tile_points(spec.size, spec.mode)
    ca = fn.lower(dim_inputs, fixed, np.int64(0)).compile().cost_analysis()
    if isinstance(ca, list):
        ca = ca[0]
    ca = ca or {}
    return {
        "tile": tile,
        "flops_per_point": float(ca.get("flops", math.nan)) / tile,
        "transcendentals_per_point": float(ca.get("transcendentals", math.nan)) / tile,
        "bytes_per_point": float(ca.get("bytes accessed", math.nan)) / tile,
    }


# --- sensitivities ---------------------------------------------------------------------------


def sensitivities(exp: int, repeats: int) -> dict:
    """Forward + all sensitivities (float64) with the sensitivity module's compiled function."""
    import jax

    from frontier_jax import sensitivity as S

    spec = grid_spec(exp, "float64")
    params = S.continuous_inputs(spec)
    dim_inputs, point, fixed = S._inputs(spec)
    dims = tuple(tuple(sorted(d)) for d in dim_inputs)
    fn = S.make_sensitivity(spec.mode, dims, tuple(sorted(point)), params, S.YS[spec.mode], S.AUX[spec.mode])
    with RssSampler() as rss:
        t0 = time.perf_counter()
        compiled = fn.lower(dim_inputs, point, fixed).compile()
        t1 = time.perf_counter()
        jax.block_until_ready(compiled(dim_inputs, point, fixed))
        runs = []
        for _ in range(repeats):
            t2 = time.perf_counter()
            jax.block_until_ready(compiled(dim_inputs, point, fixed))
            runs.append(time.perf_counter() - t2)
    return {
        "points": spec.size, "params": len(params), "outputs": len(S.YS[spec.mode]), "compile_s": t1 - t0,
        "run_s": runs, "points_per_s": spec.size / median(runs), "peak_rss_mb": rss.mb,
    }


# --- baselines -------------------------------------------------------------------------------


def _si_grid(spec):
    """Every SI input of a spec as NumPy arrays broadcasting over the grid (dims first)."""
    import numpy as np

    from frontier_jax import sweep

    dim_inputs, fixed = sweep.inputs(spec)
    p = {k: np.asarray(v) for k, v in fixed.items()}
    k = len(dim_inputs)
    for i, d in enumerate(dim_inputs):
        for n, v in d.items():
            shape = [1] * k
            shape[i] = -1
            p[n] = np.broadcast_to(np.asarray(v).reshape(shape), spec.shape)  # the NumPy model wants whole-grid P, D
    return p


def numpy_baseline(exp: int, dtype: str, repeats: int) -> dict:
    import numpy as np

    sys.path.insert(0, str(HERE))
    import numpy_model

    spec = grid_spec(exp, dtype)
    p = _si_grid(spec)
    runs = []
    with RssSampler() as rss:
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = numpy_model.evaluate(p, np.dtype(dtype))
            runs.append(time.perf_counter() - t0)
    assert out["cpm_pd"].shape == spec.shape
    return {"points": spec.size, "dtype": dtype, "run_s": runs, "points_per_s": spec.size / median(runs),
            "peak_rss_mb": rss.mb}


def python_loop(points: int, dtype: str) -> dict:
    """The NumPy model called once per point in a plain Python loop."""
    import numpy as np

    sys.path.insert(0, str(HERE))
    import numpy_model

    spec = grid_spec(4, dtype)
    p = _si_grid(spec)
    flat = {k: np.broadcast_to(v, spec.shape).reshape(-1) for k, v in p.items()}
    idx = np.linspace(0, spec.size - 1, points).astype(int)
    t0 = time.perf_counter()
    for i in idx:
        numpy_model.evaluate({k: v[i] for k, v in flat.items()}, np.dtype(dtype))
    dt = time.perf_counter() - t0
    return {"points": points, "dtype": dtype, "run_s": dt, "points_per_s": points / dt}


def numpy_agreement(exp: int) -> dict:
    """Largest relative difference of the NumPy model's CPMs from the engine's (float64)."""
    import numpy as np

    sys.path.insert(0, str(HERE))
    import numpy_model

    from frontier_jax import sweep

    spec = grid_spec(exp, "float64")
    ref = sweep.run(spec, names=("cpm_pd", "cpm_co", "cpm_cb", "best_arch"))
    out = numpy_model.evaluate(_si_grid(spec), np.float64)
    res = {}
    for k in ("cpm_pd", "cpm_co", "cpm_cb"):
        a, b = ref[k], out[k]
        same_inf = np.array_equal(np.isinf(a), np.isinf(b))
        fin = np.isfinite(a) & np.isfinite(b)
        rel = np.max(np.abs(a[fin] - b[fin]) / np.abs(a[fin])) if fin.any() else 0.0
        res[k] = {"max_rel_diff": float(rel), "same_feasibility": bool(same_inf)}
    res["best_arch_equal_share"] = float(np.mean(ref["best_arch"] == out["best_arch"]))
    return res


# --- where the time goes ---------------------------------------------------------------------


def profile(exp: int, repeats: int) -> list:
    """Each architecture and the M/D/1 routines alone over the same points (one device, float32)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from frontier_jax import sweep
    from frontier_jax.model import architectures as A
    from frontier_jax.model import evaluate as E
    from frontier_jax.model import queueing as Q

    spec = grid_spec(exp, "float32")
    dim_inputs, fixed = sweep.inputs(spec)
    idx = np.indices(spec.shape).reshape(len(spec.shape), -1)
    pts = {n: jnp.asarray(v)[idx[k]] for k, d in enumerate(dim_inputs) for n, v in d.items()}
    n = idx.shape[1]
    rho = jnp.linspace(0.01, 0.98, n, dtype=jnp.float32)
    wmax = jnp.linspace(0.01, 5.0, n, dtype=jnp.float32)
    q = jnp.float32(0.99)

    def prep(pt):
        p = {**fixed, **pt}
        prompt, output = E.workload(p)
        n_p, n_d, n_c = E.gpus(p)
        return p, prompt, output, n_p, n_d, n_c, E.pair_bandwidth(p, n_p, n_d)

    def pd(pt, link):
        p, P, D, n_p, n_d, n_c, bw = prep(pt)
        return A.disaggregated(p, P, D, n_p, n_d, bw, link=link)["r_d"]

    def co(pt):
        p, P, D, n_p, n_d, n_c, bw = prep(pt)
        return A.chunked(p, P, D, n_c)["rate"]

    def co_cost(pt, r):
        p, P, D, n_p, n_d, n_c, bw = prep(pt)
        return A._chunked_cost(p, P, D, n_c, r, p["attainment"])

    def cb(pt):
        p, P, D, n_p, n_d, n_c, bw = prep(pt)
        return A.continuous(p, P, D, n_c)["rate"]

    cases = [
        ("first_principles (all outputs)", jax.vmap(lambda pt: E.evaluate({**fixed, **pt})), (pts,), 1),
        ("disaggregated, with link", jax.vmap(lambda pt: pd(pt, True)), (pts,), 1),
        ("disaggregated, link-free (for the paper terms)", jax.vmap(lambda pt: pd(pt, False)), (pts,), 1),
        ("chunked prefill (rho_c search)", jax.vmap(co), (pts,), 1),
        ("continuous batching", jax.vmap(cb), (pts,), 1),
        ("chunked cost at one rho_c (one search step)", jax.vmap(co_cost), (pts, rho), 1),
        ("md1_wait_quantile", lambda r: Q.md1_wait_quantile(r, q), (rho,), 1),
        ("md1_max_utilization", lambda w: Q.md1_max_utilization(w, q), (wmax,), 1),
    ]
    rows = []
    for name, f, args, _ in cases:
        c = jax.jit(f).lower(*args).compile()
        jax.block_until_ready(c(*args))
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(c(*args))
            ts.append(time.perf_counter() - t0)
        m = median(ts)
        rows.append({"piece": name, "points": n, "us_per_point": m / n * 1e6, "points_per_s": n / m})
        log(f"  profile {name}: {m / n * 1e6:.3f} us/point")
    return rows


# --- a grid larger than memory, streamed (child process) -------------------------------------


class _Stop(Exception):
    pass


def big_child(exp: int, seconds: float, max_memory: int, max_points: int, out_json: str) -> None:
    """Stream the 10^exp grid into a netCDF file; stop after ``seconds``; report to ``out_json``."""
    from frontier_jax import chunked

    spec = grid_spec(exp, "float32", name="bench-big")
    marks = []
    t_start = time.perf_counter()

    def on_block(block):
        marks.append((time.perf_counter(), block.size))
        if time.perf_counter() - t_start > seconds and len(marks) >= 3:
            raise _Stop

    timings = {}
    with tempfile.TemporaryDirectory(dir=ROOT / "outputs" if (ROOT / "outputs").is_dir() else None) as tmp:
        path = Path(tmp) / "big.nc"
        stopped = False
        try:
            chunked.run_to_file(spec, path, names=BIG_OUTPUTS, max_memory=max_memory, max_points=max_points,
                                timings=timings, on_block=on_block)
        except _Stop:
            stopped = True
        left = sorted(os.listdir(tmp))
    plan = chunked.plan_for(spec, BIG_OUTPUTS, max_memory, max_points=max_points)
    # throughput over the blocks after the first (the first includes compiling)
    done = sum(n for _, n in marks[1:])
    dt = marks[-1][0] - marks[0][0] if len(marks) > 1 else math.nan
    pps = done / dt if dt > 0 else math.nan
    res = {
        "points_total": spec.size, "blocks_total": plan.n_blocks, "block_points": plan.block_points,
        "budget_mb": max_memory / 1e6, "blocks_done": len(marks), "points_done": sum(n for _, n in marks),
        "stopped_early": stopped, "points_per_s": pps, "seconds": time.perf_counter() - t_start,
        "extrapolated_total_s": spec.size / pps if pps > 0 else math.nan,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
        "files_left_after_stop": left,
    }
    Path(out_json).write_text(json.dumps(res))


def big_grid(exp: int, seconds: float, max_memory: int, max_points: int, devices: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-big", str(exp), "--child-seconds", str(seconds),
           "--max-memory", str(max_memory), "--big-chunk-points", str(max_points), "--child-json", out, "--devices", str(devices)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"big-grid child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(Path(out).read_text())
    os.unlink(out)
    res["child_wall_s"] = time.perf_counter() - t0
    return res


# --- report ----------------------------------------------------------------------------------


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def table(res: dict) -> str:
    lines = []
    m = res["machine"]
    lines.append(f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['devices']} JAX CPU devices, jax {m['jax']}, "
                 f"load average at start {m['loadavg_start']}, at end {m.get('loadavg_end')}. "
                 f"Medians of {res['repeats']} runs; the machine is shared, so expect noise of tens of %.")
    lines.append("")
    lines.append("| grid points | dtype | compile [s] | run [s] (median) | points/s | peak RSS [MB] | tile × devices |")
    lines.append("|---:|---|---:|---:|---:|---:|---|")
    for r in res["forward"]:
        lines.append(f"| {r['points']:.0e} | {r['dtype']} | {r['compile_s']:.1f} | {r['run_s_median']:.3g} | "
                     f"{fmt(r['points_per_s'])} | {r['peak_rss_mb']:.0f} | {r['tile']} × {r['devices']} |")
    b = res.get("big")
    if b:
        lines.append(f"| {b['points_total']:.0e} (streamed, {b['blocks_done']} of {b['blocks_total']} blocks) | float32 | "
                     f"– | {b['extrapolated_total_s']:.3g} (extrapolated) | {fmt(b['points_per_s'])} | "
                     f"{b['peak_rss_mb']:.0f} (budget {b['budget_mb']:.0f}) | {b['block_points']} per block |")
    lines.append("")
    lines.append("| method | grid points | points/s | JAX float32 forward / method |")
    lines.append("|---|---:|---:|---:|")
    fwd = res["summary"]["forward_points_per_s"]
    for key, label in (("numpy", "NumPy broadcasting (bench/numpy_model.py)"),
                       ("python", "plain Python loop (NumPy model per point)")):
        for r in res[key]:
            lines.append(f"| {label}, {r['dtype']} | {r['points']} | {fmt(r['points_per_s'])} | "
                         f"{fmt(fwd / r['points_per_s'])} |")
    for r in res["sensitivity"]:
        f64 = res["summary"].get("forward_f64_points_per_s")
        lines.append(f"| forward + {r['params']} sensitivities × {r['outputs']} outputs (jacfwd), float64 | "
                     f"{r['points']} | {fmt(r['points_per_s'])} | {fmt(fwd / r['points_per_s'])} "
                     f"(float64 forward / this: {fmt(f64 / r['points_per_s']) if f64 else 'n/a'}); "
                     f"compile {r['compile_s']:.0f} s |")
    c = res.get("cost")
    if c:
        lines.append("")
        pk = res["peaks"]
        lines.append(f"XLA cost analysis of the compiled tile ({c['tile']} points, float32): "
                     f"{fmt(c['flops_per_point'])} FLOP, {fmt(c['transcendentals_per_point'])} transcendentals, "
                     f"{fmt(c['bytes_per_point'])} B per point. Measured peaks: matmul "
                     f"{pk['matmul_flop_per_s'] / 1e9:.1f} GFLOP/s, memcpy {pk['memcpy_bytes_per_s'] / 1e9:.1f} GB/s. "
                     f"At {fmt(fwd)} points/s that is {100 * c['flops_per_point'] * fwd / pk['matmul_flop_per_s']:.2g} % "
                     f"of the FLOP peak and {100 * c['bytes_per_point'] * fwd / pk['memcpy_bytes_per_s']:.2g} % "
                     "of the memory peak (XLA counts a while loop's body once, not per iteration, so both "
                     "are lower bounds on the work done).")
    if res.get("profile"):
        lines.append("")
        lines.append("| piece (one device, float32) | µs per point | points/s |")
        lines.append("|---|---:|---:|")
        for r in res["profile"]:
            lines.append(f"| {r['piece']} | {r['us_per_point']:.3g} | {fmt(r['points_per_s'])} |")
    a = res.get("agreement")
    if a:
        lines.append("")
        lines.append("NumPy model vs engine (float64, 10^4 points): " + ", ".join(
            f"{k} max rel. diff {v['max_rel_diff']:.1e}" for k, v in a.items() if isinstance(v, dict))
            + f"; best_arch equal at {100 * a['best_arch_equal_share']:.2f} % of points.")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small grids and few repeats (about 2 minutes)")
    ap.add_argument("--json", metavar="PATH", help="write every number to this JSON file")
    ap.add_argument("--devices", type=int, default=os.cpu_count() or 1,
                    help="JAX host devices to split each call over (default: the CPU count)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 5, quick 3)")
    ap.add_argument("--max-exp", type=int, default=None, help="largest in-memory grid, 10^N points (default 6, quick 5)")
    ap.add_argument("--big-exp", type=int, default=9, help="the streamed grid, 10^N points (0: skip)")
    ap.add_argument("--big-seconds", type=float, default=None, help="stop the streamed grid after this long [s]")
    ap.add_argument("--max-memory", default="2GB", help="memory budget of the streamed grid (default 2GB)")
    ap.add_argument("--big-chunk-points", type=int, default=None,
                    help="points per block of the streamed grid (default 2^21, quick 2^17)")
    ap.add_argument("--no-profile", action="store_true", help="skip timing the model's pieces (skipped by --quick)")
    ap.add_argument("--child-big", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-seconds", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--child-json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    _set_devices(args.devices)
    sys.path.insert(0, str(ROOT))
    from frontier_jax.chunked import parse_memory

    max_memory = parse_memory(args.max_memory)
    if args.child_big:
        big_child(args.child_big, args.child_seconds, max_memory, args.big_chunk_points, args.child_json)
        return 0

    import jax

    quick = args.quick
    repeats = args.repeats or (3 if quick else 5)
    max_exp = args.max_exp or (5 if quick else 6)
    big_seconds = args.big_seconds or (15.0 if quick else 120.0)
    big_points = args.big_chunk_points or (2**17 if quick else 2**21)
    res = {
        "command": "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": quick, "repeats": repeats,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "devices": len(jax.devices()), "backend": jax.default_backend(), "jax": jax.__version__,
                    "loadavg_start": tuple(round(x, 2) for x in os.getloadavg())},
    }
    t_all = time.perf_counter()
    log("machine peaks ...")
    res["peaks"] = machine_peaks(quick)
    res["forward"] = []
    mem = 16 * 2**30  # in-memory grids: one block
    for exp in range(4, max_exp + 1):
        log(f"forward float32, 10^{exp} points ...")
        reps = repeats if exp <= 5 else max(2, repeats // 2)
        res["forward"].append(forward(exp, "float32", reps, mem))
        log(f"  {res['forward'][-1]['points_per_s']:.3g} points/s")
    f64 = None
    if not quick:
        log("forward float64, 10^4 points ...")
        f64 = forward(4, "float64", repeats, mem)
        res["forward"].append(f64)
    log("sensitivities ...")
    res["sensitivity"] = [sensitivities(4 if not quick else 3, max(2, repeats // 2))]
    log("NumPy baseline ...")
    res["numpy"] = [numpy_baseline(e, "float32", repeats if e <= 4 else 2) for e in ([4] if quick else [4, 5])]
    log("Python loop ...")
    res["python"] = [python_loop(30 if quick else 200, "float32")]
    if not quick:
        log("NumPy vs engine ...")
        res["agreement"] = numpy_agreement(4)
    log("cost analysis ...")
    res["cost"] = cost_analysis(4, "float32")
    if not (args.no_profile or quick):
        log("profile ...")
        res["profile"] = profile(4, repeats)
    if args.big_exp:
        log(f"streamed 10^{args.big_exp}-point grid for {big_seconds:.0f} s (child process) ...")
        res["big"] = big_grid(args.big_exp, big_seconds, max_memory, big_points, args.devices)
    res["machine"]["loadavg_end"] = tuple(round(x, 2) for x in os.getloadavg())
    res["total_s"] = time.perf_counter() - t_all

    largest = max((r for r in res["forward"] if r["dtype"] == "float32"), key=lambda r: r["points"])
    res["summary"] = {
        "forward_points_per_s": largest["points_per_s"],
        "forward_grid_points": largest["points"],
        "forward_f64_points_per_s": f64["points_per_s"] if f64 else None,
        "sensitivity_points_per_s": res["sensitivity"][-1]["points_per_s"],
        "numpy_points_per_s": res["numpy"][-1]["points_per_s"],
        "python_points_per_s": res["python"][-1]["points_per_s"],
        "compile_s": largest["compile_s"],
        "peak_rss_mb": largest["peak_rss_mb"],
    }
    res.update(res["summary"])
    print(table(res))
    print(f"\nTotal {res['total_s']:.0f} s. Command: {res['command']}")
    if args.json:
        tmp = Path(args.json).with_name(Path(args.json).name + ".tmp")
        tmp.write_text(json.dumps(res, indent=1, default=float))
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
