"""Break-even surface, crossover roots and Pareto frontier (MODEL.md §7).

Three analyses on top of the sweep engine:

* **Evaluation on points.** :func:`evaluate_points` runs the model on a flat list of
  points (every input an array) through :func:`frontier_jax.sweep.make_sweep` with a
  single dim that carries every input, in fixed-size chunks. Every sweep of a mode
  therefore shares *one* compiled structure whatever its grid (a first-principles
  compile costs ~10-30 s on a small machine; a new grid shape would cost it again).
  :func:`run_spec` wraps the result as the same labeled Dataset that
  ``frontier sweep`` writes.
* **Break-even** (MODEL.md §7): the zero set of

      g(alpha, B) = ln(CPM_co / CPM_PD)        (> 0: disaggregation is cheaper)

  over (alpha, B) per SLO contract, where both architectures are feasible; also against
  the cheaper colocated option, ``ln(min(CPM_co, CPM_cb) / CPM_PD)``. Crossovers
  alpha*(B) are found by bracketing sign changes of g between adjacent alpha grid
  points where both are feasible (vectorized over all curves), then refining every
  bracket at once by root-solving the model itself at continuous alpha (Illinois
  regula falsi, which never leaves the bracket). A curve without a sign change has no
  crossover and is reported as won by one architecture over the whole range; a
  sign change across a jump of g (the bracket shrinks to nothing while |g| stays large)
  is reported as a jump, not as a root. The slope comes from the implicit function
  theorem,

      d alpha* / dB = -(dg/dB) / (dg/dalpha)          at g(alpha*, B) = 0,

  with both partial derivatives from ``jax.grad`` of g through
  :func:`frontier_jax.model.evaluate.evaluate`; it is flagged undefined where
  dg/dalpha = 0 or is not finite.
* **Pareto frontier**: the non-dominated envelope of (TTFT_q, CPM) points, both
  minimized, extracted with one sort (:func:`pareto_mask`).

Why not :func:`frontier_jax.model.roots.bisect_increasing` on the model: wrapping the
whole first-principles model in its loop, bracket and polish steps compiles the model six
times over (measured 155 s on the 2-core development machine, against ~10 s for the
shared point evaluator that the Illinois iteration reuses). The roots are the same; the
derivative is the implicit-function-theorem one in both cases.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from . import catalog, config, io, sweep
from .model.evaluate import evaluate

CHUNK = 1024
"""Points per compiled call of the point evaluator (one compile per mode) [1]."""

GRAD_CHUNK = 64
"""Crossings per compiled call of the gradient of g [1]."""

ARCH_NAMES = {"pd": "disaggregated", "co": "chunked prefill", "cb": "continuous batching"}
VERSUS = ("co", "best")
WIN_PD, WIN_CO, WIN_TIE, WIN_NONE = 0, 1, 2, -1

# ---------------------------------------------------------------------------------------
# evaluation on flat points


def grid_points(spec: config.Spec) -> tuple[dict, tuple]:
    """Every input of a spec at every grid point, flattened (C order) [SI].

    Returns
    -------
    points : dict of 1-D numpy arrays, keyed by input name [SI units]
    shape : tuple of int, the grid shape (``spec.shape``)
    """
    dim_inputs, fixed = sweep.inputs(spec)
    shape = spec.shape
    size = spec.size
    pts = {}
    for i, d in enumerate(dim_inputs):
        for name, v in d.items():
            sh = [1] * len(shape)
            sh[i] = shape[i]
            pts[name] = np.broadcast_to(np.asarray(v, dtype=float).reshape(sh), shape).reshape(-1).copy()
    for name, v in fixed.items():
        pts[name] = np.full(size, float(v))
    return pts, shape


def evaluate_points(mode: str, points: dict, names=None) -> dict:
    """The model at each of n points, every input given per point.

    Parameters
    ----------
    mode : {"calibrated", "first-principles"}
    points : dict of 1-D arrays of equal length n, keyed by input name [SI]
        Must hold every input of :data:`frontier_jax.variables.INPUTS`.
    names : tuple of str, optional
        Outputs to return; default every output of the mode. Keep the default where
        compile time matters: each distinct tuple is one more compile.

    Returns
    -------
    dict of 1-D numpy arrays (length n) keyed by output name [SI; costs USD/Mtok]
    """
    names = tuple(names or sweep.output_names(mode))
    keys = tuple(sorted(points))
    fn = sweep.make_sweep(mode, (keys,), names)
    n = len(points[keys[0]])
    out = {k: [] for k in names}
    for start in range(0, n, CHUNK):
        idx = np.minimum(np.arange(start, start + CHUNK), n - 1)  # pad with the last point
        chunk = ({k: jnp.asarray(np.asarray(points[k], dtype=float)[idx]) for k in keys},)
        res = fn(chunk, {})
        m = min(CHUNK, n - start)
        for k in names:
            out[k].append(np.asarray(res[k])[:m])
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def run_spec(spec: config.Spec) -> xr.Dataset:
    """Evaluate a spec through the shared point evaluator; the Dataset of ``frontier sweep``."""
    pts, shape = grid_points(spec)
    out = evaluate_points(spec.mode, pts)
    # an output that is also an input on a dim (prompt_tokens/output_tokens along a dim)
    # is that coordinate already; io.to_dataset would refuse the duplicate name
    on_dims = {n for d in spec.dims for n in d.params}
    return io.to_dataset(spec, {k: v.reshape(shape) for k, v in out.items() if k not in on_dims})


# ---------------------------------------------------------------------------------------
# break-even: g, brackets, roots, slopes


def log_ratio(cpm_pd, cpm_co, cpm_cb=None, versus: str = "co"):
    """g = ln(CPM_other / CPM_PD) [1], NaN where the two are not both feasible.

    ``versus="co"`` compares with chunked prefill, ``"best"`` with min(CPM_co, CPM_cb),
    the cheaper colocated option (MODEL.md §7). > 0: disaggregation is cheaper.
    """
    if versus not in VERSUS:
        raise ValueError(f"versus: {versus!r} is not allowed; allowed: 'co', 'best'")
    cpm_pd = np.asarray(cpm_pd, dtype=float)
    other = np.asarray(cpm_co, dtype=float)
    if versus == "best":
        if cpm_cb is None:
            raise ValueError("versus='best' needs cpm_cb (first-principles mode); calibrated mode has no cpm_cb")
        other = np.fmin(other, np.asarray(cpm_cb, dtype=float))
    ok = np.isfinite(cpm_pd) & np.isfinite(other) & (cpm_pd > 0) & (other > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, np.log(np.where(ok, other, 1.0) / np.where(ok, cpm_pd, 1.0)), np.nan)


def find_brackets(g):
    """Sign changes of g along its last axis between adjacent points where it is finite.

    Parameters
    ----------
    g : array (..., n)
        Values on an increasing grid along the last axis; NaN where undefined.

    Returns
    -------
    brackets : (curve, j) int arrays: a sign change between points j and j+1 of the
        flattened curve ``curve`` (both finite and non-zero, opposite signs).
    zeros : (curve, j) int arrays: g is exactly 0 at point j with finite non-zero values
        of opposite signs at j-1 and j+1 (a crossing that sits on the grid).
    """
    g = np.asarray(g, dtype=float)
    n = g.shape[-1]
    flat = g.reshape(-1, n)
    s = np.where(np.isfinite(flat), np.sign(flat), np.nan)
    change = (s[:, :-1] * s[:, 1:]) < 0
    c, j = np.nonzero(change)
    if n >= 3:
        z = (s[:, 1:-1] == 0) & ((s[:, :-2] * s[:, 2:]) < 0)
        zc, zj = np.nonzero(z)
        zj = zj + 1
    else:
        zc = zj = np.zeros(0, dtype=int)
    return (c, j), (zc, zj)


@dataclass
class Roots:
    """Refined roots of brackets.

    Attributes
    ----------
    x : array  root estimate [units of x]
    g : array  g at ``x`` [units of g]
    width : array  final bracket width [units of x]
    kind : array of int  0 root, 2 jump (sign change without a zero), 3 undefined inside
    iterations : int
    """

    x: np.ndarray
    g: np.ndarray
    width: np.ndarray
    kind: np.ndarray
    iterations: int


KIND_ROOT, KIND_GRID_ZERO, KIND_JUMP, KIND_UNDEFINED = 0, 1, 2, 3
KIND_NAMES = {0: "root", 1: "grid zero", 2: "jump", 3: "undefined inside bracket"}


def refine_brackets(fun, lo, hi, g_lo, g_hi, *, xtol: float = 1e-12, gtol: float = 1e-9, maxiter: int = 80) -> Roots:
    """Vectorized Illinois regula falsi on brackets with a sign change.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> g``, elementwise: element i of the result is g of bracket i at x[i].
        Called once per iteration with every bracket (converged ones included).
    lo, hi : array
        Bracket ends, lo < hi [units of x].
    g_lo, g_hi : array
        g at the ends, of opposite signs, finite [units of g].
    xtol : float
        Stop a bracket when its width is below ``xtol`` [units of x].
    gtol : float
        |g| below which a point counts as a root [units of g].

    Returns
    -------
    Roots
        Every point stays inside its bracket. A bracket that shrinks below xtol while
        |g| stays above ``gtol`` at both ends is a jump of g, not a root (kind 2); a
        bracket where g is undefined (NaN) at an interior point is kind 3.
    """
    a = np.asarray(lo, dtype=float).copy()
    b = np.asarray(hi, dtype=float).copy()
    fa = np.asarray(g_lo, dtype=float).copy()
    fb = np.asarray(g_hi, dtype=float).copy()
    m = a.size
    x = 0.5 * (a + b)
    fx = np.full(m, np.nan)
    done = np.zeros(m, dtype=bool)
    bad = np.zeros(m, dtype=bool)
    side = np.zeros(m, dtype=int)  # Illinois: which end was kept last time (-1 a, +1 b)
    it = 0
    if m == 0:
        return Roots(x, fx, np.zeros(0), np.zeros(0, dtype=int), 0)
    for it in range(1, maxiter + 1):
        den = fb - fa
        with np.errstate(divide="ignore", invalid="ignore"):
            c = b - fb * (b - a) / den
        # stay strictly inside; fall back to bisection when the secant is degenerate
        inside = np.isfinite(c) & (c > a) & (c < b)
        c = np.where(inside, c, 0.5 * (a + b))
        c = np.where(done, x, c)
        fc = np.asarray(fun(c), dtype=float)
        new_bad = ~done & ~np.isfinite(fc)
        bad |= new_bad
        active = ~done & ~bad
        x = np.where(active, c, x)
        fx = np.where(active, fc, fx)
        hit = active & (fc == 0)
        # fc has the sign of fb: the root is in [a, c]; keep a (halve fa if kept twice)
        same_b = active & ~hit & (np.sign(fc) == np.sign(fb))
        same_a = active & ~hit & ~same_b
        fa = np.where(same_b & (side == -1), 0.5 * fa, fa)
        fb = np.where(same_a & (side == 1), 0.5 * fb, fb)
        b_new = np.where(same_b, c, b)
        fb_new = np.where(same_b, fc, fb)
        a_new = np.where(same_a, c, a)
        fa_new = np.where(same_a, fc, fa)
        side = np.where(same_b, -1, np.where(same_a, 1, side))
        a, b, fa, fb = a_new, b_new, fa_new, fb_new
        done |= hit | (active & ((b - a) <= xtol * np.maximum(1.0, np.abs(x))))
        done |= active & (np.abs(fc) <= 1e-3 * gtol)
        if np.all(done | bad):
            break
    width = b - a
    kind = np.where(bad, KIND_UNDEFINED, np.where(np.abs(fx) <= gtol, KIND_ROOT, KIND_JUMP))
    # an unconverged bracket with a small residual is still a root; a wide one with a
    # large residual after maxiter is reported as a jump only if it actually shrank
    kind = np.where((kind == KIND_JUMP) & (width > 1e3 * xtol), KIND_UNDEFINED, kind)
    return Roots(x, fx, width, kind.astype(int), it)


def ift_slope(g_x, g_theta):
    """Implicit-function-theorem slope dx*/dtheta = -g_theta / g_x at a root of g.

    Returns
    -------
    slope : array [units of x per unit of theta], NaN where undefined
    defined : bool array, False where g_x = 0 or a derivative is not finite
    """
    g_x = np.asarray(g_x, dtype=float)
    g_theta = np.asarray(g_theta, dtype=float)
    defined = np.isfinite(g_x) & np.isfinite(g_theta) & (g_x != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(defined, -g_theta / np.where(defined, g_x, 1.0), np.nan)
    return slope, defined


def _g_point(alpha, bandwidth, theta, use_best, mode):
    """g at one point: ln(CPM_other/CPM_PD) with alpha and B [B/s] given explicitly."""
    p = dict(theta)
    p["alpha"] = alpha
    p["kv_bandwidth_gbps"] = bandwidth
    o = evaluate(p, mode)
    other = o["cpm_co"]
    if mode != "calibrated":
        other = jnp.where(use_best, jnp.minimum(o["cpm_co"], o["cpm_cb"]), o["cpm_co"])
    return jnp.log(other) - jnp.log(o["cpm_pd"])


@lru_cache(maxsize=4)
def _grad_fn(mode: str, keys: tuple):
    def one(alpha, bandwidth, theta, use_best):
        return jax.grad(_g_point, argnums=(0, 1))(alpha, bandwidth, theta, use_best, mode)

    return jax.jit(jax.vmap(one))


def model_gradients(mode: str, theta: dict, alpha, bandwidth, versus: str = "co"):
    """dg/dalpha [1] and dg/dB [1/(B/s)] of the model at points, by ``jax.grad``.

    ``theta`` holds every input per point [SI]; alpha and B override its entries.
    """
    keys = tuple(sorted(theta))
    fn = _grad_fn(mode, keys)
    n = len(alpha)
    ga, gb = [], []
    use_best = versus == "best"
    for start in range(0, n, GRAD_CHUNK):
        idx = np.minimum(np.arange(start, start + GRAD_CHUNK), n - 1)
        th = {k: jnp.asarray(np.asarray(theta[k], dtype=float)[idx]) for k in keys}
        r = fn(jnp.asarray(np.asarray(alpha, dtype=float)[idx]), jnp.asarray(np.asarray(bandwidth, dtype=float)[idx]),
               th, jnp.full(GRAD_CHUNK, use_best))
        m = min(GRAD_CHUNK, n - start)
        ga.append(np.asarray(r[0])[:m])
        gb.append(np.asarray(r[1])[:m])
    if not ga:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(ga), np.concatenate(gb)


def _curve_layout(ds: xr.Dataset):
    """Dims of a break-even Dataset with alpha moved last; checks what is needed."""
    if "alpha" not in ds.dims:
        raise ValueError(f"break-even needs an 'alpha' dim; the Dataset has dims: {', '.join(ds.dims) or 'none'}")
    for v in ("cpm_pd", "cpm_co"):
        if v not in ds:
            raise ValueError(f"break-even needs variable {v!r}; the Dataset has: {', '.join(ds.data_vars)}")
    other = [d for d in ds["cpm_pd"].dims if d != "alpha"]
    return other + ["alpha"]


def winners(ds: xr.Dataset, versus: str = "co") -> xr.DataArray:
    """Who is cheaper at each grid point: 0 pd, 1 the colocated side, 2 tie, -1 neither feasible."""
    pd = ds["cpm_pd"].values
    oth = ds["cpm_co"].values
    if versus == "best":
        oth = np.fmin(oth, ds["cpm_cb"].values)
    fp, fo = np.isfinite(pd), np.isfinite(oth)
    w = np.where(fp & fo, np.where(oth > pd, WIN_PD, np.where(oth < pd, WIN_CO, WIN_TIE)),
                 np.where(fp, WIN_PD, np.where(fo, WIN_CO, WIN_NONE)))
    return xr.DataArray(w.astype(np.int8), dims=ds["cpm_pd"].dims, coords=ds["cpm_pd"].coords)


def breakeven(ds: xr.Dataset, spec: config.Spec, versus: str = "co", *, slopes: bool = True) -> xr.Dataset:
    """Crossovers alpha*(other dims) of a break-even sweep, refined on the model.

    Parameters
    ----------
    ds : xarray.Dataset
        The sweep of ``spec`` (:func:`run_spec` or ``frontier sweep``), with an ``alpha``
        dim; other dims (B, SLO contract, hardware, ...) index independent curves.
    spec : Spec
        The sweep's spec: the refinement evaluates the model between grid points.
    versus : {"co", "best"}
        Chunked prefill, or the cheaper of the colocated options.
    slopes : bool
        Also compute d alpha*/dB by the implicit function theorem (needs B as
        ``kv_bandwidth_gbps``; NaN where an interconnect sets B).

    Returns
    -------
    xarray.Dataset with dims (other dims..., crossing):
        alpha_star [1], g_at_root [1], kind (0 root, 1 grid zero, 2 jump,
        3 undefined), direction (+1: disaggregation cheaper above alpha*, -1 below),
        dalpha_dB [1/(GB/s)], slope_defined, and per curve n_crossings,
        n_both_feasible, winner_at_min / winner_at_max (0 pd, 1 colocated, 2 tie,
        -1 none) at the ends of the alpha range.
    """
    order = _curve_layout(ds)
    mode = spec.mode
    if versus == "best" and "cpm_cb" not in ds:
        raise ValueError("versus='best' needs cpm_cb (first-principles mode)")
    dsT = ds.transpose(*order)
    cb = dsT["cpm_cb"].values if versus == "best" else None
    g = log_ratio(dsT["cpm_pd"].values, dsT["cpm_co"].values, cb, versus)
    other_shape = g.shape[:-1]
    n_alpha = g.shape[-1]
    alpha = dsT["alpha"].values.astype(float)
    if np.any(np.diff(alpha) <= 0):
        raise ValueError("break-even needs an increasing alpha axis")
    flat_g = g.reshape(-1, n_alpha)
    (bc, bj), (zc, zj) = find_brackets(g)

    # the spec's inputs on the same layout as g
    pts, shape = grid_points(spec)
    dim_names = [d.name for d in spec.dims]
    perm = [dim_names.index(d) for d in order if d in dim_names]
    if len(perm) != len(order):
        raise ValueError("the Dataset's dims do not match the spec (was the sweep minimized over a dim?)")
    theta_all = {k: np.transpose(v.reshape(shape), perm).reshape(-1, n_alpha) for k, v in pts.items()}

    def at(rows, cols):
        return {k: v[rows, cols] for k, v in theta_all.items()}

    lo, hi = alpha[bj], alpha[bj + 1]
    th = at(bc, bj)
    use_best = versus == "best"

    def fun(x):
        p = dict(th)
        p["alpha"] = x
        o = evaluate_points(mode, p)
        return log_ratio(o["cpm_pd"], o["cpm_co"], o.get("cpm_cb"), "best" if use_best else "co")

    roots = refine_brackets(fun, lo, hi, flat_g[bc, bj], flat_g[bc, bj + 1]) if len(bc) else None

    # merge refined roots and grid zeros
    cur = np.concatenate([bc, zc]).astype(int)
    x = np.concatenate([roots.x if roots else np.zeros(0), alpha[zj]])
    gx = np.concatenate([roots.g if roots else np.zeros(0), np.zeros(len(zc))])
    kind = np.concatenate([roots.kind if roots else np.zeros(0, int), np.full(len(zc), KIND_GRID_ZERO)])
    # direction: +1 when g goes from < 0 to > 0 with alpha (pd cheaper above alpha*)
    left = np.concatenate([flat_g[bc, bj], flat_g[zc, zj - 1]])
    direction = np.where(left < 0, 1, -1)
    theta_x = at(cur, np.concatenate([bj, zj]))
    bw = theta_x["kv_bandwidth_gbps"].copy()
    slope = np.full(len(cur), np.nan)
    defined = np.zeros(len(cur), dtype=bool)
    ga = gb = np.full(len(cur), np.nan)
    if slopes and len(cur):
        ok = kind <= KIND_GRID_ZERO
        ga = np.full(len(cur), np.nan)
        gb = np.full(len(cur), np.nan)
        if ok.any():
            ga_ok, gb_ok = model_gradients(mode, {k: v[ok] for k, v in theta_x.items()}, x[ok], bw[ok], versus)
            ga[ok], gb[ok] = ga_ok, gb_ok
        slope, defined = ift_slope(ga, gb * 1e9)  # per GB/s
        via_link = np.isfinite(theta_x["link_gb_s"])  # B set by an interconnect, not by kv_bandwidth_gbps
        slope = np.where(via_link, np.nan, slope)
        defined &= ~via_link

    # sort crossings by alpha within each curve, pad to K
    n_curves = flat_g.shape[0]
    counts = np.bincount(cur, minlength=n_curves) if len(cur) else np.zeros(n_curves, int)
    k_max = max(int(counts.max()) if n_curves else 0, 1)
    srt = np.lexsort((x, cur))
    cur, x, gx, kind, direction, slope, defined = (a[srt] for a in (cur, x, gx, kind, direction, slope, defined))
    ga, gb = ga[srt], gb[srt]
    rank = np.arange(len(cur)) - np.searchsorted(cur, cur)
    def pad(vals, fill, dtype=float):
        arr = np.full((n_curves, k_max), fill, dtype=dtype)
        arr[cur, rank] = vals
        return arr.reshape(other_shape + (k_max,))

    cdims = tuple(order[:-1]) + ("crossing",)
    coords = {k: v for k, v in dsT.coords.items() if "alpha" not in v.dims}
    both = np.isfinite(flat_g)
    w = winners(dsT, versus).values.reshape(-1, n_alpha)
    out = xr.Dataset(
        {
            "alpha_star": (cdims, pad(x, np.nan), {"units": "1", "long_name": "crossover prefill share alpha* (g = 0)"}),
            "g_at_root": (cdims, pad(gx, np.nan), {"units": "1", "long_name": "ln(CPM_other/CPM_PD) at alpha*"}),
            "kind": (cdims, pad(kind, -1, np.int8), {"long_name": "0 root, 1 grid zero, 2 jump of g (no zero), 3 undefined inside the bracket; -1 none"}),
            "direction": (cdims, pad(direction, 0, np.int8), {"long_name": "+1: disaggregation cheaper above alpha*; -1: below"}),
            "dg_dalpha": (cdims, pad(ga, np.nan), {"units": "1", "long_name": "partial derivative of g w.r.t. alpha at alpha*"}),
            "dg_dB": (cdims, pad(gb, np.nan), {"units": "1/(B/s)", "long_name": "partial derivative of g w.r.t. kv bandwidth at alpha*"}),
            "dalpha_dB": (cdims, pad(slope, np.nan), {"units": "1/(GB/s)", "long_name": "d alpha*/dB by the implicit function theorem"}),
            "slope_defined": (cdims, pad(defined, False, bool), {"long_name": "whether d alpha*/dB is defined (dg/dalpha != 0, finite, B not set by an interconnect)"}),
            "n_crossings": (cdims[:-1], counts.reshape(other_shape).astype(np.int16), {"long_name": "number of crossings along alpha (roots, grid zeros and jumps)"}),
            "n_both_feasible": (cdims[:-1], both.sum(axis=1).reshape(other_shape).astype(np.int16), {"long_name": "alpha grid points where both are feasible"}),
            "winner_at_min": (cdims[:-1], w[:, 0].reshape(other_shape), {"long_name": "cheaper at the smallest alpha: 0 pd, 1 colocated, 2 tie, -1 none"}),
            "winner_at_max": (cdims[:-1], w[:, -1].reshape(other_shape), {"long_name": "cheaper at the largest alpha: 0 pd, 1 colocated, 2 tie, -1 none"}),
        },
        coords=coords,
        attrs={
            "versus": versus,
            "other": "chunked prefill (cpm_co)" if versus == "co" else "the cheaper colocated option min(cpm_co, cpm_cb)",
            "alpha_min": float(alpha[0]),
            "alpha_max": float(alpha[-1]),
            "n_alpha": int(n_alpha),
            "refine_iterations": int(roots.iterations) if roots else 0,
            "mode": mode,
            "method": "sign changes on the alpha grid, Illinois regula falsi on the model, IFT slope from jax.grad",
        },
    )
    return out


def segments(ds: xr.Dataset, cross: xr.Dataset, versus: str = "co", **sel) -> list[tuple[float, float, int, str]]:
    """Winner intervals along alpha on one curve: [(alpha_from, alpha_to, winner, how_bounded)].

    ``sel`` picks the curve (e.g. ``slo="paper-mid", kv_bandwidth_gbps=25``, nearest for
    numbers). Boundaries are refined crossings where the winner changes with both
    feasible, and grid midpoints (``how_bounded='grid'``) where feasibility changes.
    """
    w = winners(ds, versus)
    w1 = _sel(w, sel).values.astype(int)
    a = ds["alpha"].values.astype(float)
    cx = _sel(cross, sel)
    roots = cx["alpha_star"].values
    roots = roots[np.isfinite(roots)]
    segs = []
    start = float(a[0])
    for j in range(1, len(a)):
        if w1[j] != w1[j - 1]:
            between = roots[(roots >= a[j - 1]) & (roots <= a[j])]
            if len(between) and {w1[j - 1], w1[j]} <= {WIN_PD, WIN_CO, WIN_TIE}:
                edge, how = float(between[0]), "root"
            else:
                edge, how = 0.5 * float(a[j - 1] + a[j]), "grid"
            segs.append((start, edge, int(w1[j - 1]), how))
            start = edge
    segs.append((start, float(a[-1]), int(w1[-1]), "end"))
    return segs


def _sel(obj, sel: dict):
    out = obj
    for k, v in sel.items():
        if k not in out.dims:
            continue
        if isinstance(v, str):
            out = out.sel({k: v})
        else:
            out = out.sel({k: v}, method="nearest")
    return out


# ---------------------------------------------------------------------------------------
# Pareto frontier


def pareto_mask(x, y) -> np.ndarray:
    """Points not dominated in (x, y), both minimized; non-finite points never are.

    Point i dominates j when x_i <= x_j and y_i <= y_j with at least one strict. Equal
    points do not dominate each other (both stay). One lexicographic sort: a point is
    on the envelope iff its y is strictly below every y of distinct points sorted before
    it.

    Parameters
    ----------
    x, y : array-like of the same shape [any units]

    Returns
    -------
    bool array of that shape
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    xf, yf = x.ravel(), y.ravel()
    mask = np.zeros(xf.size, dtype=bool)
    ok = np.flatnonzero(np.isfinite(xf) & np.isfinite(yf))
    if ok.size == 0:
        return mask.reshape(x.shape)
    xs, ys = xf[ok], yf[ok]
    order = np.lexsort((ys, xs))
    xs, ys = xs[order], ys[order]
    first = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])]
    gid = np.cumsum(first) - 1
    gy = ys[first]
    prev_min = np.r_[np.inf, np.minimum.accumulate(gy)[:-1]]
    keep = (gy < prev_min)[gid]
    mask[ok[order]] = keep
    return mask.reshape(x.shape)


def frontier_points(ds: xr.Dataset, **sel) -> dict:
    """(TTFT_q [ms], CPM [USD/Mtok], contract [ms]) per architecture along ``ttft_slo_ms``.

    ``sel`` fixes any other dim (e.g. ``eta=0.5``); the remaining dims must be only
    ``ttft_slo_ms``.
    """
    if "ttft_slo_ms" not in ds.dims:
        raise ValueError(f"the Pareto frontier needs a 'ttft_slo_ms' dim; the Dataset has dims: {', '.join(ds.dims) or 'none'}")
    d = _sel(ds, sel)
    extra = [k for k in d["cpm_pd"].dims if k != "ttft_slo_ms" and d.sizes[k] > 1]
    if extra:
        raise ValueError(f"select one value of {', '.join(extra)} for a Pareto frontier")
    d = d.squeeze(drop=False)
    pts = {}
    for a in ("pd", "co", "cb"):
        if f"cpm_{a}" in d and f"ttft_{a}" in d:
            cpm = np.atleast_1d(d[f"cpm_{a}"].values).astype(float)
            ttft = np.atleast_1d(d[f"ttft_{a}"].values).astype(float)
            ok = np.isfinite(cpm) & np.isfinite(ttft)
            pts[a] = {"ttft_ms": ttft[ok], "cpm": cpm[ok], "contract_ms": np.atleast_1d(d["ttft_slo_ms"].values)[ok]}
    return pts


def envelope(points: dict) -> dict:
    """The non-dominated envelope over every architecture's (TTFT, CPM) points.

    Returns
    -------
    dict: ttft_ms, cpm (sorted by TTFT), arch (label of each envelope point), and
    on_envelope: per architecture, a bool mask over its own points.
    """
    labels = np.concatenate([np.full(len(v["cpm"]), a, dtype=object) for a, v in points.items()]) if points else np.zeros(0, object)
    xs = np.concatenate([v["ttft_ms"] for v in points.values()]) if points else np.zeros(0)
    ys = np.concatenate([v["cpm"] for v in points.values()]) if points else np.zeros(0)
    m = pareto_mask(xs, ys)
    order = np.argsort(xs[m], kind="stable")
    per = {}
    start = 0
    for a, v in points.items():
        n = len(v["cpm"])
        per[a] = m[start:start + n]
        start += n
    return {"ttft_ms": xs[m][order], "cpm": ys[m][order], "arch": labels[m][order], "on_envelope": per}


# ---------------------------------------------------------------------------------------
# published workloads and systems


def trace_workloads() -> list[dict]:
    """alpha of each published trace in ``data/traces.csv``.

    alpha = in_mean / (in_mean + out_mean); where only medians exist,
    in_p50 / (in_p50 + out_p50), and ``basis`` says which.
    """
    out = []
    for r in catalog.read_rows(kind="traces"):
        if _finite(r.get("in_mean")) and _finite(r.get("out_mean")):
            p, d, basis = r["in_mean"], r["out_mean"], "mean"
        elif _finite(r.get("in_p50")) and _finite(r.get("out_p50")):
            p, d, basis = r["in_p50"], r["out_p50"], "median"
        else:
            continue
        out.append({"trace": r["trace"], "prompt_tokens": float(p), "output_tokens": float(d),
                    "alpha": float(p) / float(p + d), "basis": basis, "source": r["source"]})
    return out


def _finite(v) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def _number(v) -> float:
    """A catalog cell as a float (some columns are kept as text); NaN when empty or not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


ARCH_OF_ANCHOR = {"pd": "pd", "chunked": "co", "co": "co", "cb": "cb"}


def anchor_specs() -> tuple[list, list]:
    """Specs at each published anchor's native conditions, and the anchors that cannot be placed.

    Returns
    -------
    placeable : list of (row dict, Spec)
    skipped : list of (anchor_id, reason)
    """
    placeable, skipped = [], []
    for r in catalog.read_rows(kind="anchors"):
        aid = r["anchor_id"]
        if r.get("use") == "context":
            skipped.append((aid, f"context only: {r.get('notes', '')}"))
            continue
        if r.get("arch") not in ARCH_OF_ANCHOR or r.get("baseline_arch") not in ARCH_OF_ANCHOR:
            skipped.append((aid, "no comparable architecture pair"))
            continue
        if not (_finite(r.get("ttft_slo_ms")) and _finite(r.get("tpot_slo_ms"))):
            skipped.append((aid, "no absolute TTFT/TPOT contract"))
            continue
        try:
            n = int(float(r["gpus_per_instance"]))
        except (TypeError, ValueError):
            skipped.append((aid, f"GPUs per instance {r.get('gpus_per_instance')!r} is not one number"))
            continue
        try:
            hw = catalog.get("hardware", r["gpu"])
        except catalog.CatalogError:
            skipped.append((aid, f"GPU {r['gpu']!r} is not one GPU of hardware.csv"))
            continue
        if not _finite(hw.default_price_usd_per_gpu_hr):
            skipped.append((aid, f"{r['gpu']} has no public price in hardware.csv, so no CPM"))
            continue
        fixed = {
            "model": r["model"], "hardware": r["gpu"],
            "tp_prefill": n, "tp_decode": n, "tp_colocated": n,
            "prompt_tokens": r["prompt_tokens"], "output_tokens": r["output_tokens"],
            "ttft_slo_ms": r["ttft_slo_ms"], "tpot_slo_ms": r["tpot_slo_ms"],
            "tpot_kind": r["tpot_kind"] or "mean", "attainment": r["attainment"],
        }
        try:
            fixed["kv_bandwidth_gbps"] = float(r["kv_bandwidth_gbps"])
        except (TypeError, ValueError):
            pass  # the engine's default pair bandwidth
        try:
            spec = config.from_dict({"sweep": {"name": f"anchor-{aid}", "mode": "first-principles"}, "fixed": fixed})
        except config.ConfigError as e:
            skipped.append((aid, str(e)))
            continue
        placeable.append((r, spec))
    return placeable, skipped


def place_anchors() -> tuple[list[dict], list]:
    """Published systems as (TTFT_q, CPM) points at their native conditions.

    Each placed anchor carries two points, both saying how they were placed:
    ``cpm_model`` is the model's prediction for the system's architecture at the anchor's
    native conditions (its model, GPU, GPUs per instance, lengths, SLO, attainment and KV
    bandwidth; fluid pools); ``cpm_reported_low/high`` is the model's CPM for the
    *baseline* divided by the reported ratio (the published number carried onto the
    model's baseline). Anchors that cannot be placed are returned with the reason.
    """
    placeable, skipped = anchor_specs()
    if not placeable:
        return [], skipped
    pts = {}
    for _, spec in placeable:
        p, _shape = grid_points(spec)
        for k, v in p.items():
            pts.setdefault(k, []).append(v)
    pts = {k: np.concatenate(v) for k, v in pts.items()}
    out = evaluate_points("first-principles", pts)
    placed = []
    for i, (r, _spec) in enumerate(placeable):
        a, b = ARCH_OF_ANCHOR[r["arch"]], ARCH_OF_ANCHOR[r["baseline_arch"]]
        value = _number(r.get("value"))
        lo = value if math.isfinite(value) else _number(r.get("value_low"))
        hi = value if math.isfinite(value) else _number(r.get("value_high"))
        cpm_sys = float(out[f"cpm_{a}"][i])
        cpm_base = float(out[f"cpm_{b}"][i])
        rec = {
            "anchor_id": r["anchor_id"], "system": r["system"], "arch": a, "baseline": r["baseline"],
            "baseline_arch": b, "model": r["model"], "gpu": r["gpu"], "gpus_per_instance": r["gpus_per_instance"],
            "ttft_ms": float(out[f"ttft_{a}"][i]) * 1e3, "cpm_model": cpm_sys,
            "ttft_baseline_ms": float(out[f"ttft_{b}"][i]) * 1e3, "cpm_baseline_model": cpm_base,
            "ratio_reported_low": float(lo), "ratio_reported_high": float(hi),
            "ratio_model": cpm_base / cpm_sys if np.isfinite(cpm_sys) and cpm_sys > 0 else float("nan"),
            "cpm_reported_low": cpm_base / float(hi), "cpm_reported_high": cpm_base / float(lo),
            "how": "model prediction at the anchor's native conditions (model, GPU, GPUs per instance, "
                   f"{r.get('lengths_are', 'mean')} lengths, SLO, attainment, KV bandwidth; fluid pools)",
            "how_reported": "the model's baseline CPM at the same conditions divided by the reported ratio",
            "feasible": bool(np.isfinite(cpm_sys)),
        }
        placed.append(rec)
    return placed, skipped
