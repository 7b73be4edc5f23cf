"""``frontier fit``, ``frontier validate`` and ``frontier sensitivity`` (thin wrappers).

- ``frontier fit [--anchors CSV] [--params eta,kappa,...] [--json PATH]``: fit global
  parameters to the ``use = fit`` anchors (:func:`frontier_jax.fit.fit`), with
  leave-one-out refits; prints parameters, standard errors and per-anchor residuals.
  Exit 1 (and no JSON) when the fit did not converge, unless ``--allow-unconverged``.
- ``frontier validate [--anchors CSV] [--params FIT.json] [--json PATH]``: predict every row
  of an anchors file (whatever its ``use``) with default or fitted parameters.
- ``frontier sensitivity CONFIG.toml [-o FILE.nc] [--params a,b]``: autodiff sensitivities
  of a sweep (:func:`frontier_jax.sensitivity.compute`) to netCDF.

Bad input (a malformed anchors file, an unknown parameter, an unreadable fit file) is a
clean message and exit 2; outputs are written atomically, so nothing half-written is left.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from .cli import CLIError

EXIT_NOT_CONVERGED = 1


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _load_anchors(path):
    from . import anchors

    rows = anchors.load(path)  # AnchorError (ValueError) names the file, row and column -> exit 2
    return rows


def _num(x, fmt="{:.3g}") -> str:
    if x is None:
        return "-"
    if isinstance(x, (list, tuple)):
        return "–".join(_num(v, fmt) for v in x)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return fmt.format(x)


def _table(rows, cols) -> str:
    """Plain-text table: cols = [(header, key or callable)]."""
    cells = [[h for h, _ in cols]]
    for r in rows:
        cells.append([(f(r) if callable(f) else _num(r.get(f))) for _, f in cols])
    w = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    return "\n".join("  ".join(c[i].ljust(w[i]) for i in range(len(cols))).rstrip() for c in cells)


def _write_json(path, obj) -> None:
    from . import io

    io.write_json(path, obj)
    _log(f"wrote {path}")


# --- fit --------------------------------------------------------------------------------


def _cmd_fit(args) -> int:
    from . import fit

    anchors = _load_anchors(args.anchors)
    names = fit.parse_params(args.params)
    if args.starts < 1:
        raise CLIError(f"--starts: {args.starts} is not allowed; allowed: a whole number >= 1")
    n_fit = sum(a.use == "fit" for a in anchors)
    _log(f"fit {', '.join(names)} to {n_fit} anchors ({args.starts} starts"
         + ("" if args.no_leave_one_out else f", then {n_fit} leave-one-out refits") + "); the first call compiles")
    t0 = time.perf_counter()
    res = fit.fit(anchors, names, n_starts=args.starts, seed=args.seed, allow_unconverged=True,
                  leave_one_out=not args.no_leave_one_out)
    _log(f"done in {time.perf_counter() - t0:.1f} s")
    print(format_fit(res))
    if not res.converged and not args.allow_unconverged:
        _log(f"frontier fit: error: the fit did not converge: {res.message}; "
             "rerun with --allow-unconverged to keep this result" + (" (no JSON written)" if args.json else ""))
        return EXIT_NOT_CONVERGED
    if args.json:
        _write_json(args.json, res.to_json())
    return 0


def format_fit(res) -> str:
    """Human-readable summary of a :class:`frontier_jax.fit.FitResult`."""
    from .fit import median_abs_residual

    L = [f"converged: {res.converged} ({res.message}); loss {res.loss:.6g}; {res.steps} steps",
         "", f"{'parameter':20s} {'value':10s} {'stderr':10s} identified"]
    for n in res.names:
        se = res.stderr.get(n)
        ident = res.identified[n]
        ident = "unknown (Hessian not finite, or not a minimum)" if ident is None else ("yes" if ident else "no (the anchors cannot move it)")
        L.append(f"{n:20s} {res.params[n]:<10.4g} {('-' if se is None else f'{se:.3g}'):10s} {ident}"
                 + ("  [at a bound]" if n in res.at_bound else ""))
    L.append(f"(standard errors: noise sigma {res.sigma:.3g}, {res.sigma_source})")
    loo = {r["anchor_id"]: r for r in (res.leave_one_out or [])}
    rows = [dict(r, loo=loo.get(r["anchor_id"], {}).get("predicted")) for r in res.anchors]
    cols = [("anchor", lambda r: r["anchor_id"]), ("reported", "reported"), ("predicted", "predicted"),
            ("ln(pred/rep)", lambda r: _num(r["residual_ln"], "{:+.3f}"))]
    if loo:
        cols.append(("leave-one-out", "loo"))
    cols.append(("note", lambda r: r.get("note", "")))
    L += ["", _table(rows, cols), "",
          f"median |ln(predicted/reported)|: {median_abs_residual(res.anchors):.3f} in sample"
          + (f", {median_abs_residual(res.leave_one_out):.3f} leave-one-out" if loo else "")]
    return "\n".join(L)


# --- validate ---------------------------------------------------------------------------


def read_params(path) -> dict:
    """Parameter values from a ``frontier fit --json`` file (its ``params``) or a flat JSON object.

    Raises
    ------
    CLIError
        When the file cannot be read or holds no object of numbers.
    """
    p = Path(path)
    try:
        obj = json.loads(p.read_text())
    except OSError as e:
        raise CLIError(f"--params {str(p)!r}: cannot read it ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise CLIError(f"--params {str(p)!r}: not JSON ({e})") from None
    if isinstance(obj, dict) and isinstance(obj.get("params"), dict):
        obj = obj["params"]
    if not isinstance(obj, dict) or not obj:
        raise CLIError(f"--params {str(p)!r}: expected the JSON of 'frontier fit --json' (with a 'params' object) "
                       "or an object of parameter values, e.g. {\"eta\": 0.6}")
    out = {}
    for k, v in obj.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise CLIError(f"--params {str(p)!r}: {k} = {v!r} is not a finite number")
        out[str(k)] = float(v)
    return out


def _cmd_validate(args) -> int:
    from . import validate

    anchors = _load_anchors(args.anchors)
    params = read_params(args.params) if args.params else {}
    _log(f"predicting {len(anchors)} anchors with "
         + (", ".join(f"{k} = {v:g}" for k, v in params.items()) if params else "default parameters")
         + "; the first call compiles")
    rows = validate.predict(anchors, params)  # ValueError on a bad parameter -> exit 2
    print(format_validation(rows))
    if args.json:
        _write_json(args.json, rows)
    return 0


def format_validation(rows) -> str:
    """Text table of :func:`frontier_jax.validate.predict` rows."""
    from .fit import median_abs_residual

    cols = [("anchor", lambda r: r["anchor_id"]), ("use", lambda r: r["use"]), ("reported", "reported"),
            ("predicted", "predicted"), ("ln(pred/rep)", lambda r: _num(r["residual_ln"], "{:+.3f}")),
            ("note", lambda r: r.get("note", ""))]
    fit_rows = [r for r in rows if r["use"] == "fit"]
    return _table(rows, cols) + f"\n\nmedian |ln(predicted/reported)| over the fit anchors: {median_abs_residual(fit_rows):.3f}"


# --- sensitivity ------------------------------------------------------------------------


def _cmd_sensitivity(args) -> int:
    from . import config, io, sensitivity

    spec = config.load(args.config)
    if spec.minimize:
        raise CLIError("sweep.minimize: 'frontier sensitivity' differentiates every grid point; remove minimize "
                       "(or put the dim to minimize over in [fixed])")
    params = None
    if args.params:
        params = tuple(s.strip() for s in args.params.split(",") if s.strip())
        allowed = sensitivity.continuous_inputs(spec)
        bad = [n for n in params if n not in allowed]
        if bad:
            raise CLIError(f"--params: {bad[0]!r} is not a continuous input with a value in this sweep; "
                           f"allowed: {', '.join(allowed)}")
    out = Path(args.output or f"outputs/{spec.name}_sensitivity.nc")
    _log(f"sensitivity {spec.name!r}: {spec.size:,} points x "
         f"{len(params or sensitivity.continuous_inputs(spec))} parameters (forward mode, float64); the first call compiles")
    timings = {}
    ds = sensitivity.compute(spec, params, timings=timings)
    io.save(ds, out)
    _log(f"computed in {timings['first_call_s']:.1f} s (+ {timings['crossover_s']:.1f} s crossover); wrote {out}")
    for r in ds["region"].values:
        n = int(ds["region_points"].sel(region=r))
        top = ds.attrs.get(f"ranking_{r}", "").split()[:5]
        print(f"{r}: {n} points where cheapest; largest median |elasticity|: "
              + (", ".join(f"{p} {float(ds['median_abs_elasticity'].sel(region=r, parameter=p)):.3g}" for p in top)
                 or "none"))
    return 0


def register(subparsers) -> None:
    """Add ``frontier fit``, ``frontier validate`` and ``frontier sensitivity`` to the CLI."""
    from .fit import DEFAULT_PARAMS, allowed_params

    f = subparsers.add_parser("fit", help="fit global parameters to the published anchors (optax L-BFGS)",
                              description="Fit parameters shared by every anchor to the use = fit rows of an anchors "
                                          "file; leave-one-out refits; standard errors from the Hessian.")
    f.add_argument("--anchors", metavar="CSV", help="anchors file in the format of data/anchors.csv (default: packaged)")
    f.add_argument("--params", metavar="NAMES",
                   help=f"comma-separated parameters (default {','.join(DEFAULT_PARAMS)}); allowed: {', '.join(allowed_params())}")
    f.add_argument("--json", metavar="PATH", help="write the result as JSON")
    f.add_argument("--starts", type=int, default=4, help="optimizer starts: the defaults, then random (default 4)")
    f.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    f.add_argument("--allow-unconverged", action="store_true", help="exit 0 and write the JSON even when not converged")
    f.add_argument("--no-leave-one-out", action="store_true", help="skip the leave-one-out refits")
    f.set_defaults(func=_cmd_fit)

    v = subparsers.add_parser("validate", help="predict every anchor with default or fitted parameters",
                              description="Predict every row of an anchors file (whatever its use column says).")
    v.add_argument("--anchors", metavar="CSV", help="anchors file in the format of data/anchors.csv (default: packaged)")
    v.add_argument("--params", metavar="FIT.json", help="parameters from 'frontier fit --json' (or a JSON object of values)")
    v.add_argument("--json", metavar="PATH", help="write the per-anchor rows as JSON")
    v.set_defaults(func=_cmd_validate)

    s = subparsers.add_parser("sensitivity", help="autodiff sensitivities of a sweep to every continuous input",
                              description="dy/dtheta and elasticities for y in cpm_*, delta_cpm and the crossover alpha*, "
                                          "at every grid point, with a ranking per region; written to netCDF.")
    s.add_argument("config", help="sweep config (TOML), e.g. sweeps/sens_paper.toml")
    s.add_argument("-o", "--output", help="output netCDF path (default outputs/<name>_sensitivity.nc)")
    s.add_argument("--params", metavar="NAMES", help="comma-separated inputs (default: every continuous input)")
    s.set_defaults(func=_cmd_sensitivity)
