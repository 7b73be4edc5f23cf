"""Sensitivities by forward-mode autodiff over every continuous input (MODEL.md §7).

For every continuous input theta (registry inputs that are not whole numbers, choices or
catalog labels, and that have a value in the sweep) and y in {cpm_pd, cpm_co, cpm_cb,
delta_cpm}, at every grid point, in one compiled pass:

    dy/dtheta                       [y unit per theta edge unit]
    e = d ln y / d ln theta = theta/y dy/dtheta      [1]  (the elasticity)

The pass is ``jax.jacfwd`` (forward mode: one tangent per input, vmapped) of the model at
one point, mapped over the grid the way :func:`frontier_jax.sweep.make_sweep` does (1-D
per-dim inputs, gathered per point inside the compiled function). Only ``alpha`` enters
"per point" (an array of the grid's shape): that lets the crossover refinement below
evaluate every line of the grid at its own alpha with the *same* compiled function.

**Crossover alpha*.** Along the alpha dim, g(alpha) = ln CPM_co - ln CPM_PD changes sign at
the break-even alpha* (MODEL.md §7). It is bracketed from the grid, refined on the model
itself (each iteration one pass of the same compiled function with every line at its
current alpha), and differentiated by the implicit function theorem:

    d alpha*/d theta = - g_theta / g_alpha     (undefined where g_alpha = 0: flagged)

Brackets, the regula falsi refinement and the IFT slope are those of
:mod:`frontier_jax.frontier` (the break-even module); only the evaluation of g and its
gradient is this module's compiled function.

**Regions.** Parameters are ranked within each region (best_arch = pd, co, cb) by the
median over the region's points of |elasticity| of the winning architecture's CPM.

Sensitivities are always computed in float64 (finite-difference checks need it).
"""
from __future__ import annotations

import math
import time
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from . import __version__, io
from .config import Spec
from .model.evaluate import evaluate
from .sweep import to_si
from .variables import ARCHS, INPUTS, OUTPUTS

YS = {
    "calibrated": ("cpm_pd", "cpm_co", "delta_cpm"),
    "first-principles": ("cpm_pd", "cpm_co", "cpm_cb", "delta_cpm"),
}
"""Outputs differentiated in each mode."""

AUX = {
    "calibrated": ("best_arch",),
    "first-principles": ("best_arch", "feasible_pd", "feasible_co", "feasible_cb", "status_pd", "status_co", "status_cb"),
}

CROSSOVER_STATUS = {
    "ok": 0,
    "no_crossover": 1,  # g keeps one sign (or a side is infeasible) along the line
    "several_crossings": 2,  # more than one sign change: the lowest alpha is kept
    "undefined_slope": 4,  # g_alpha = 0 at alpha*: d alpha*/d theta undefined
    "not_converged": 8,  # the refinement found a jump of g or an undefined point, not a root
}

ZERO = 1e-12
"""|elasticity| below this counts as no effect in rankings (round-off of exact cancellations)."""



def continuous_inputs(spec: Spec) -> tuple:
    """Names of the continuous inputs that have a finite value somewhere in ``spec``.

    Excluded: whole numbers (layers, GPUs per instance...), choices (tpot_kind), catalog
    labels, unset (NaN) and infinite values (arrival_rate = inf means fluid pools).
    """
    on_dims = {n: v for d in spec.dims for n, v in d.params.items()}
    names = []
    for n, var in INPUTS.items():
        if var.integer or var.choices or var.auto:
            continue
        vals = np.asarray(on_dims.get(n, [spec.fixed.get(n, math.nan)]), dtype=float)
        if np.all(np.isfinite(vals)):
            names.append(n)
    return tuple(names)


@lru_cache(maxsize=32)
def make_sensitivity(mode: str, dim_params: tuple, per_point: tuple, params: tuple, ys: tuple, aux: tuple):
    """A jitted ``run(dim_inputs, point_inputs, fixed) -> (jac, values)`` over a grid.

    As :func:`frontier_jax.sweep.make_sweep`: the grid is flattened inside the compiled
    function (each point gathers its inputs from the 1-D per-dim arrays by its
    multi-index) and one ``vmap`` maps ``jax.jacfwd`` of the model over all points; this
    compiles several times faster than one ``vmap`` level per dim.

    Parameters
    ----------
    mode : str
        Model mode (static).
    dim_params : tuple of tuple of str
        For each dim, the input names that vary along it.
    per_point : tuple of str
        Inputs given as arrays of the full grid shape.
    params : tuple of str
        Inputs to differentiate with respect to (SI).
    ys, aux : tuple of str
        Outputs to differentiate; outputs returned as values only.

    Returns
    -------
    callable
        ``jac[y]`` has shape grid + (len(params),) [y SI unit per theta SI unit];
        ``values[name]`` has the grid shape.
    """

    def point(pt, fixed):
        p = {**fixed, **pt}
        x0 = jnp.stack([jnp.asarray(p[n], dtype=jnp.float64) for n in params])

        def f(x):
            q = dict(p)
            q.update({n: x[i] for i, n in enumerate(params)})
            out = evaluate(q, mode)
            vals = {y: out[y] for y in ys}
            return vals, {**vals, **{a: out[a] for a in aux}}

        return jax.jacfwd(f, has_aux=True)(x0)

    def grid(dim_inputs, point_inputs, fixed):
        if point_inputs:
            shape = next(iter(point_inputs.values())).shape
        else:
            shape = tuple(next(iter(d.values())).shape[0] for d in dim_inputs)
        idx = jnp.indices(shape).reshape(len(shape), -1)
        pts = {n: v[idx[k]] for k, d in enumerate(dim_inputs) for n, v in d.items()}
        pts.update({n: v.reshape(-1) for n, v in point_inputs.items()})
        jac, vals = jax.vmap(point, in_axes=(0, None))(pts, fixed)
        jac = {k: v.reshape(shape + (len(params),)) for k, v in jac.items()}
        vals = {k: v.reshape(shape) for k, v in vals.items()}
        return jac, vals

    return jax.jit(grid)


def _inputs(spec: Spec):
    """SI inputs in float64: (dim dicts without alpha, per-point alpha or {}, fixed)."""
    dt = jnp.float64
    on_dims = {n for d in spec.dims for n in d.params}
    alpha_dim = _alpha_dim(spec)
    dim_inputs = tuple(
        {n: jnp.asarray(to_si(n, v), dtype=dt) for n, v in d.params.items() if not (n == "alpha" and i == alpha_dim)}
        for i, d in enumerate(spec.dims)
    )
    fixed = {n: jnp.asarray(to_si(n, v), dtype=dt) for n, v in spec.fixed.items() if n not in on_dims}
    point = {}
    if alpha_dim is not None:
        shape = spec.shape
        a = np.asarray(spec.dims[alpha_dim].params["alpha"], dtype=float)
        bshape = [1] * len(shape)
        bshape[alpha_dim] = shape[alpha_dim]
        point["alpha"] = jnp.asarray(np.broadcast_to(a.reshape(bshape), shape).copy(), dtype=dt)
    return dim_inputs, point, fixed


def _alpha_dim(spec: Spec):
    for i, d in enumerate(spec.dims):
        if "alpha" in d.params:
            return i
    return None


def _check(spec: Spec):
    if spec.minimize:
        raise ValueError("sweep.minimize: not supported by 'frontier sensitivity' "
                         "(derivatives are taken at every grid point); remove it from the config")
    if not spec.dims:
        raise ValueError("axes: 'frontier sensitivity' needs at least one axis")
    ad = _alpha_dim(spec)
    if ad is not None and len(spec.dims[ad].params) > 1:
        raise ValueError("axes: alpha must be its own axis for 'frontier sensitivity'")


def compute(spec: Spec, params: tuple | None = None, *, crossover: bool = True, timings: dict | None = None) -> xr.Dataset:
    """Sensitivities of a sweep as a labeled Dataset with a ``parameter`` dim.

    Parameters
    ----------
    spec : Spec
        A validated sweep config (no ``minimize``).
    params : tuple of str, optional
        Inputs to differentiate with respect to (default: :func:`continuous_inputs`).
    crossover : bool
        Whether to compute alpha* and its sensitivities (needs an alpha axis).
    timings : dict, optional
        Receives ``first_call_s`` (compile, when needed, and run) [s], ``compiled``
        (whether this call compiled) and ``crossover_s`` [s].

    Returns
    -------
    xarray.Dataset
        Values ``cpm_*``, ``delta_cpm``, ``best_arch`` on the grid; ``d_<y>`` and
        ``elasticity_<y>`` with dims (parameter, grid...); ``alpha_star``,
        ``d_alpha_star``, ``elasticity_alpha_star``, ``crossover_status`` on the grid
        without alpha; ``median_abs_elasticity`` (region, parameter) and the ranking in
        the attribute ``ranking_<region>``. Derivatives are per edge unit of the parameter
        (``parameter_units``) in the edge unit of y.
    """
    _check(spec)
    mode = spec.mode
    params = tuple(params or continuous_inputs(spec))
    unknown = [n for n in params if n not in INPUTS]
    if unknown:
        raise ValueError(f"parameter {unknown[0]!r} is not a model input; run 'frontier params' for the list")
    ys, aux = YS[mode], AUX[mode]
    dim_inputs, point, fixed = _inputs(spec)
    dim_params = tuple(tuple(sorted(d)) for d in dim_inputs)
    fn = make_sensitivity(mode, dim_params, tuple(sorted(point)), params, ys, aux)
    n_cached = fn._cache_size()
    t0 = time.perf_counter()
    jac, vals = _to_numpy(fn(dim_inputs, point, fixed))
    t1 = time.perf_counter()
    ds = _dataset(spec, params, jac, vals)
    alpha_dim = _alpha_dim(spec)
    if crossover and alpha_dim is not None and "alpha" in params:
        _crossover(ds, spec, fn, dim_inputs, point, fixed, params, alpha_dim)
    t2 = time.perf_counter()
    ds = _rank(ds)
    if timings is not None:
        timings.update(first_call_s=t1 - t0, compiled=fn._cache_size() > n_cached, crossover_s=t2 - t1)
    return ds


def _to_numpy(tree):
    return jax.tree.map(lambda a: np.asarray(jax.block_until_ready(a)), tree)


def _scales(params):
    """Edge-unit conversion of d y / d theta: multiply the SI derivative by theta's si."""
    return np.asarray([INPUTS[n].si for n in params])


def _theta_edge(spec: Spec, params, shape):
    """theta in edge units broadcast to the grid: (len(params),) + shape."""
    out = np.empty((len(params),) + shape)
    for j, n in enumerate(params):
        v = None
        for i, d in enumerate(spec.dims):
            if n in d.params:
                bshape = [1] * len(shape)
                bshape[i] = shape[i]
                v = np.broadcast_to(np.asarray(d.params[n], dtype=float).reshape(bshape), shape)
        out[j] = v if v is not None else spec.fixed[n]
    return out


def _dataset(spec: Spec, params, jac, vals) -> xr.Dataset:
    base_out = {k: v for k, v in vals.items()}
    ds = io.to_dataset(spec, base_out)
    dims = [d.name for d in spec.dims]
    shape = spec.shape
    theta = _theta_edge(spec, params, shape)
    si = _scales(params)
    ds = ds.assign_coords(
        parameter=xr.Variable("parameter", np.asarray(params, dtype=str), {"long_name": "input differentiated with respect to"}),
        parameter_units=xr.Variable("parameter", np.asarray([INPUTS[n].unit or "1" for n in params], dtype=str),
                                    {"long_name": "edge unit of the parameter"}),
    )
    dropped = []
    for y, j in jac.items():
        scale = OUTPUTS[y].scale
        y_val = np.asarray(vals[y], dtype=float)
        # grid + (P,) -> (P,) + grid, per edge unit of theta, in the edge unit of y
        d = np.moveaxis(j, -1, 0) * si.reshape((-1,) + (1,) * len(shape)) * scale
        finite = np.isfinite(y_val)
        d = np.where(finite[None], d, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            e = theta * d / (y_val[None] * scale)
        e = np.where(finite[None] & (y_val[None] != 0), e, np.nan)
        ds[f"d_{y}"] = xr.Variable(["parameter"] + dims, d, {
            "long_name": f"derivative of {y} with respect to the parameter",
            "units": f"{OUTPUTS[y].units} per parameter unit (see parameter_units)"})
        ds[f"elasticity_{y}"] = xr.Variable(["parameter"] + dims, e, {
            "long_name": f"elasticity d ln {y} / d ln parameter", "units": "1"})
    # inputs that move no output anywhere: keep them, but list them
    moves = np.zeros(len(params), dtype=bool)
    for y in jac:
        dv = ds[f"d_{y}"].values
        moves |= np.any(np.nan_to_num(dv, nan=0.0) != 0, axis=tuple(range(1, dv.ndim)))
    dropped = [p for p, m in zip(params, moves) if not m]
    ds.attrs.update({
        "title": f"frontier_jax sensitivities {spec.name}",
        "history": io.history_line(spec).replace(" sweep ", " sensitivity "),
        "sensitivity_method": "forward-mode autodiff (jax.jacfwd) at every grid point, float64",
        "parameters_without_effect": " ".join(dropped),
    })
    return ds


def _crossover(ds, spec, fn, dim_inputs, point, fixed, params, alpha_dim):
    """alpha* per line along the alpha dim (root of g = ln CPM_co - ln CPM_PD), with IFT sensitivities.

    Brackets and roots come from :mod:`frontier_jax.frontier` (sign changes of g between
    adjacent grid alphas where both architectures are feasible; Illinois regula falsi on
    the model itself); g is evaluated by the same compiled function as the grid pass, with
    every line at its own alpha, and the last evaluation at alpha* gives g_theta and
    g_alpha for :func:`frontier_jax.frontier.ift_slope`.
    """
    from . import frontier

    a_grid = np.asarray(spec.dims[alpha_dim].params["alpha"], dtype=float)
    order = np.argsort(a_grid)
    a_sorted = a_grid[order]
    cpm_pd = np.moveaxis(ds["cpm_pd"].values, alpha_dim, -1)[..., order]
    cpm_co = np.moveaxis(ds["cpm_co"].values, alpha_dim, -1)[..., order]
    g = frontier.log_ratio(cpm_pd, cpm_co)
    line_shape = g.shape[:-1]
    n_lines = int(np.prod(line_shape)) if line_shape else 1
    (curve, j), (zc, zj) = frontier.find_brackets(g)
    status = np.zeros(n_lines, dtype=np.int16)
    first = {}
    for c, jj in sorted(zip(curve.tolist(), j.tolist())):
        if c in first:
            status[c] |= CROSSOVER_STATUS["several_crossings"]
        else:
            first[c] = jj
    gflat = g.reshape(n_lines, -1)
    lines = np.asarray(sorted(first), dtype=int)
    js = np.asarray([first[c] for c in lines], dtype=int)
    x_all = np.full(n_lines, 0.5 * (a_sorted[0] + a_sorted[-1]))
    alpha_star = np.full(n_lines, np.nan)
    gth = np.full((n_lines, len(params)), np.nan)
    for c, jj in zip(zc.tolist(), zj.tolist()):  # a crossing exactly on a grid alpha
        if c not in first:
            first[c] = None
            alpha_star[c] = a_sorted[jj]
    if lines.size:
        def fun(x):
            x_all[lines] = x
            gx, _ = _g_at(x_all, fn, dim_inputs, point, fixed, alpha_dim, spec.shape, line_shape)
            return gx[lines]

        roots = frontier.refine_brackets(fun, a_sorted[js], a_sorted[js + 1], gflat[lines, js], gflat[lines, js + 1])
        ok = roots.kind == frontier.KIND_ROOT
        alpha_star[lines[ok]] = roots.x[ok]
        status[lines[~ok]] |= CROSSOVER_STATUS["not_converged"]
    no = np.asarray([c not in first for c in range(n_lines)])
    status[no] |= CROSSOVER_STATUS["no_crossover"]
    has = np.isfinite(alpha_star)
    if has.any():
        x_all = np.where(has, alpha_star, x_all)
        _, gth = _g_at(x_all, fn, dim_inputs, point, fixed, alpha_dim, spec.shape, line_shape)
    ia = params.index("alpha")
    d, defined = frontier.ift_slope(gth[:, ia:ia + 1], gth)  # d alpha*/d theta_SI
    status[has & ~defined[:, ia]] |= CROSSOVER_STATUS["undefined_slope"]
    d = np.where(has[:, None] & defined, d, np.nan)
    d = d * _scales(params)[None, :]
    d = np.moveaxis(d.reshape(line_shape + (len(params),)), -1, 0)
    alpha_star = alpha_star.reshape(line_shape)
    status = status.reshape(line_shape)
    other = [dd for i, dd in enumerate(spec.dims) if i != alpha_dim]
    odims = [dd.name for dd in other]
    theta = _theta_edge(spec, params, spec.shape)
    theta = np.moveaxis(theta, 1 + alpha_dim, -1)[..., 0]  # parameters other than alpha do not vary along alpha
    theta[ia] = alpha_star
    with np.errstate(divide="ignore", invalid="ignore"):
        e = theta * d / alpha_star[None]
    ds["alpha_star"] = xr.Variable(odims, alpha_star, {"long_name": "crossover alpha* where CPM_co = CPM_PD (lowest, if several)", "units": "1"})
    ds["d_alpha_star"] = xr.Variable(["parameter"] + odims, d, {
        "long_name": "d alpha*/d parameter by the implicit function theorem, -g_theta/g_alpha with g = ln CPM_co - ln CPM_PD",
        "units": "1 per parameter unit (see parameter_units)"})
    ds["elasticity_alpha_star"] = xr.Variable(["parameter"] + odims, e, {"long_name": "elasticity d ln alpha*/d ln parameter", "units": "1"})
    ds["crossover_status"] = xr.Variable(odims, status, {
        "long_name": "crossover status bit flags",
        "flag_masks": np.asarray([v for v in CROSSOVER_STATUS.values() if v], dtype=np.int16),
        "flag_meanings": " ".join(k for k, v in CROSSOVER_STATUS.items() if v)})


def _g_at(x, fn, dim_inputs, point, fixed, alpha_dim, shape, line_shape):
    """g = ln CPM_co - ln CPM_PD and dg/dtheta_SI with every line at its own alpha.

    ``x`` has one alpha per line (flattened lines = the grid without the alpha dim);
    every point of a line is evaluated at that alpha and the first is kept.
    Returns (g, g_theta) flattened over lines: (n_lines,), (n_lines, n_params).
    """
    xl = np.asarray(x, dtype=float).reshape(line_shape)
    full = np.broadcast_to(np.expand_dims(xl, alpha_dim), shape).copy()
    pt = dict(point)
    pt["alpha"] = jnp.asarray(full)
    jac, vals = _to_numpy(fn(dim_inputs, pt, fixed))
    co, pd = vals["cpm_co"], vals["cpm_pd"]
    from .frontier import log_ratio

    gx = log_ratio(pd, co)
    with np.errstate(divide="ignore", invalid="ignore"):
        gth = jac["cpm_co"] / co[..., None] - jac["cpm_pd"] / pd[..., None]
    gx = np.take(gx, 0, axis=alpha_dim).reshape(-1)
    gth = np.take(gth, 0, axis=alpha_dim).reshape(-1, gth.shape[-1])
    return gx, gth


def _rank(ds: xr.Dataset) -> xr.Dataset:
    """median |elasticity| of the winning CPM within each region; rankings as attributes."""
    params = [str(p) for p in ds["parameter"].values]
    archs = [a for a in ARCHS if f"cpm_{a}" in ds]
    best = ds["best_arch"].values
    med = np.full((len(archs), len(params)), np.nan)
    signed = np.full((len(archs), len(params)), np.nan)
    counts = []
    for r, a in enumerate(archs):
        mask = best == ARCHS.index(a)
        counts.append(int(mask.sum()))
        if not mask.any():
            continue
        e = ds[f"elasticity_cpm_{a}"].values[:, mask]
        with np.errstate(all="ignore"):
            med[r] = np.nanmedian(np.abs(e), axis=1) if e.size else np.nan
            signed[r] = np.nanmedian(e, axis=1) if e.size else np.nan
    ds["median_abs_elasticity"] = xr.Variable(("region", "parameter"), med, {
        "long_name": "median over the region of |elasticity| of the winning architecture's CPM", "units": "1"})
    ds["median_elasticity"] = xr.Variable(("region", "parameter"), signed, {
        "long_name": "median over the region of the elasticity of the winning architecture's CPM", "units": "1"})
    ds = ds.assign_coords(region=("region", np.asarray(archs, dtype=str)))
    ds["region_points"] = xr.Variable("region", np.asarray(counts, dtype=np.int64), {"long_name": "grid points where the architecture is cheapest"})
    for r, a in enumerate(archs):
        ds.attrs[f"ranking_{a}"] = " ".join(ranking(med[r], params))
    return ds


def ranking(med, params) -> list:
    """Parameter names by decreasing median |elasticity| (NaN last, zeros dropped)."""
    med = np.asarray(med, dtype=float)
    keep = [i for i in np.argsort(-np.nan_to_num(med, nan=-1.0), kind="stable") if np.isfinite(med[i]) and med[i] > ZERO]
    return [params[i] for i in keep]




S_FLOOR = 1e-5
"""Normalized derivatives smaller than this (a 1% change of theta moves y by < 1e-7 of its
value) are compared in absolute terms (the error is |s_ad - s_fd| / S_FLOOR): a central
difference of y over a relative step of ~1e-5 carries round-off of a few ulps / 1e-5,
about 1e-11, which is not a relative error of anything."""


def finite_difference_check(spec: Spec, params: tuple | None = None, *, rel_step: float = 1e-4,
                            kink_tol: float = 1e-3) -> dict:
    """Autodiff derivatives against central finite differences at every grid point.

    For each parameter theta (SI step h = rel_step |theta|, rel_step edge units where
    theta = 0, and at most rel_step times the distance to the end of theta's valid range)
    and each y, with y0 = y(theta), y+ = y(theta + h), y- = y(theta - h):

        central  = (y+ - y-) / (2h)
        smooth   = |(y+ - y0)/h - (y0 - y-)/h| <= kink_tol max(|(y+ - y0)/h|, |(y0 - y-)/h|) + floor

    i.e. the one-sided slopes agree: at a kink (a binding constraint or a max/min switching
    inside [theta - h, theta + h]) they differ at O(1), at a smooth point by O(h y'').
    Derivatives are compared in normalized form s = dy/dtheta * scale(theta) / scale(y),
    with scale(theta) = |theta| (1 edge unit at 0) and scale(y) = |y| (|CPM_PD| for
    delta_cpm, which crosses 0); the error is |s_ad - s_fd| / max(|s_ad|, |s_fd|, S_FLOOR).
    With rel_step = 1e-4 in float64 the central difference's truncation error is ~1e-9
    relative and its round-off ~1e-11 (normalized), below the 1e-5 the tests ask for.
    The same compiled function evaluates every perturbation (same shapes, no recompile).

    Returns
    -------
    dict
        (parameter, y) -> {"ad", "fd", "smooth", "rel_err"}: arrays over the grid; only
        points where y and its perturbations are finite count as smooth.
    """
    _check(spec)
    mode = spec.mode
    params = tuple(params or continuous_inputs(spec))
    ys, aux = YS[mode], AUX[mode]
    dim_inputs, point, fixed = _inputs(spec)
    dim_params = tuple(tuple(sorted(d)) for d in dim_inputs)
    fn = make_sensitivity(mode, dim_params, tuple(sorted(point)), params, ys, aux)
    jac, vals = _to_numpy(fn(dim_inputs, point, fixed))
    out = {}
    for j, n in enumerate(params):
        where, arr = _locate(n, dim_inputs, point, fixed)
        theta = np.asarray(arr, dtype=float)
        h = rel_step * _step_scale(n, theta)
        ev = {}
        for sgn in (1, -1):
            di, pt, fx = _replace(n, where, theta + sgn * h, dim_inputs, point, fixed)
            ev[sgn] = _to_numpy(fn(di, pt, fx))[1]
        h_grid = _on_grid(n, where, h, spec)
        th_scale = _on_grid(n, where, np.where(theta != 0, np.abs(theta), INPUTS[n].si), spec)
        for y in ys:
            y0, yp, ym = (np.asarray(v[y], dtype=float) for v in (vals, ev[1], ev[-1]))
            ad = jac[y][..., j]
            y_scale = np.abs(np.asarray(vals["cpm_pd"] if y == "delta_cpm" else y0, dtype=float))
            finite = np.isfinite(y0) & np.isfinite(yp) & np.isfinite(ym) & (y_scale > 0)
            with np.errstate(all="ignore"):
                fd = (yp - ym) / (2 * h_grid)
                dp, dm = (yp - y0) / h_grid, (y0 - ym) / h_grid
                norm = th_scale / y_scale
                s_ad, s_fd, s_p, s_m = ad * norm, fd * norm, dp * norm, dm * norm
                smooth = finite & (np.abs(s_p - s_m) <= kink_tol * np.maximum(np.abs(s_p), np.abs(s_m)) + 1e-7)
                rel = np.abs(s_ad - s_fd) / np.maximum(np.maximum(np.abs(s_ad), np.abs(s_fd)), S_FLOOR)
            out[(n, y)] = {"ad": ad, "fd": fd, "smooth": smooth, "rel_err": np.where(smooth, rel, np.nan)}
    return out


def _step_scale(name, theta):
    """|theta| (one edge unit at 0), but no more than the distance to the valid range's ends [SI].

    Near an end (attainment 0.99 is 0.01 from 1, where waiting-time quantiles diverge)
    the curvature scales like 1/distance, so the step must shrink with it.
    """
    var = INPUTS[name]
    scale = np.where(theta != 0, np.abs(theta), var.si)
    lo, hi = var.lo * var.si, var.hi * var.si
    dist = np.minimum(theta - lo, hi - theta)
    return np.where(np.isfinite(dist) & (dist > 0), np.minimum(scale, dist), scale)


def _locate(name, dim_inputs, point, fixed):
    if name in point:
        return ("point", None), point[name]
    for i, d in enumerate(dim_inputs):
        if name in d:
            return ("dim", i), d[name]
    return ("fixed", None), fixed[name]


def _replace(name, where, value, dim_inputs, point, fixed):
    kind, i = where
    v = jnp.asarray(value, dtype=jnp.float64)
    if kind == "point":
        return dim_inputs, {**point, name: v}, fixed
    if kind == "dim":
        di = list(dim_inputs)
        di[i] = {**di[i], name: v}
        return tuple(di), point, fixed
    return dim_inputs, point, {**fixed, name: v}


def _on_grid(name, where, values, spec):
    """Broadcast a parameter's values (scalar, per-dim or per-point) to the grid shape."""
    kind, i = where
    values = np.asarray(values, dtype=float)
    shape = spec.shape
    if kind == "dim":
        bshape = [1] * len(shape)
        bshape[i] = shape[i]
        return np.broadcast_to(values.reshape(bshape), shape)
    return np.broadcast_to(values, shape)
