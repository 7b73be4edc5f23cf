"""The ``frontier`` command line: thin; domain errors become clean messages and exit 2."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from . import __version__

EXIT_USAGE = 2


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def _cmd_sweep(args) -> int:
    from . import chunked, config, io, sweep

    spec = config.load(args.config)
    out_path = Path(args.output or f"outputs/{spec.name}.nc")
    names = chunked.check_names(spec, [n.strip() for n in args.outputs.split(",") if n.strip()] if args.outputs else None)
    budget = chunked.parse_memory(args.max_memory) if args.max_memory is not None else chunked.default_max_memory()
    if args.chunk_points is not None and args.chunk_points < 1:
        raise CLIError(f"--chunk-points: {args.chunk_points} is not allowed; allowed: a whole number >= 1")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    print(f"sweep {spec.name!r}: mode {spec.mode}, {spec.size:,} points, dims "
          + (" x ".join(f"{d.name}[{len(d.coord)}]" for d in spec.dims) or "none"), file=sys.stderr)
    plan = chunked.plan_for(spec, names, budget, max_points=args.chunk_points)
    timings = {}
    if args.scheduler is None and plan.n_blocks == 1 and not args.resume:
        out = sweep.run(spec, names=names if args.outputs else None, timings=timings)
        ds = io.to_dataset(spec, out)
        io.save(ds, out_path)
        how = ""
    else:
        client = None
        if args.scheduler is not None:
            from distributed import Client

            client = Client(args.scheduler, timeout="30s")
        try:
            chunked.run_to_file(spec, out_path, names=names, max_memory=budget, max_points=args.chunk_points,
                                progress=progress, client=client, resume=args.resume, timings=timings)
        except KeyboardInterrupt:
            part, _ = chunked.partial_paths(out_path)
            kept = f"; blocks written so far are kept in {part}, rerun with --resume to continue" if part.exists() else ""
            print(f"frontier sweep: interrupted{kept}", file=sys.stderr)
            return 130
        finally:
            if client is not None:
                client.close()
        where = f" on the Dask cluster at {args.scheduler}" if client is not None else ""
        how = (f" in {timings['n_blocks']:,} blocks of up to {math.prod(timings['block_shape']):,} points"
               f" (budget {timings['budget'] / 1e9:.2f} GB){where}")
    rate = spec.size / max(timings["run_s"], 1e-9)
    print(f"compiled in {timings['compile_s']:.2f} s, ran in {timings['run_s']:.3f} s "
          f"({rate:,.0f} points/s){how}; wrote {out_path}", file=sys.stderr)
    return 0


def _cmd_catalog(args) -> int:
    from . import catalog

    kinds = {"hardware": "hardware", "models": "models", "interconnects": "interconnects",
             "slo": "slo", "traces": "traces", "anchors": "anchors", "prices": "prices",
             "claims": "claims", "predictions": "predictions"}
    rows = catalog.read_rows(kind=kinds[args.kind])
    if not rows:
        return 0
    cols = list(rows[0].keys())
    if not args.all:
        cols = [c for c in cols if c not in ("source", "notes", "price_basis", "what_the_source_says")]
    widths = {c: min(max(len(c), *(len(_fmt(r[c])) for r in rows)), 40) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r[c])[:40].ljust(widths[c]) for c in cols))
    if not args.all:
        print("\n(--all shows the source columns)")
    return 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:g}"
    return str(v)


def _cmd_params(args) -> int:
    from .variables import CATEGORICAL, INPUTS

    group = None
    for v in INPUTS.values():
        if v.group != group:
            group = v.group
            print(f"\n[{group}]")
        default = "unset" if v.default is None else ("auto" if v.auto else (v.choices[int(v.default)] if v.choices else f"{v.default:g}"))
        print(f"  {v.name:24s} {v.allowed():45s} default {default}\n      {v.doc}")
    print("\n[catalog labels]")
    for name, kind in CATEGORICAL.items():
        print(f"  {name:24s} a name from 'frontier catalog {kind}'")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frontier", description="Cost frontier of LLM serving under SLO contracts.")
    p.add_argument("--version", action="version", version=f"frontier_jax {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sweep", help="evaluate a sweep config (TOML) over its grid and write netCDF")
    s.add_argument("config", help="sweep config, e.g. sweeps/paper_breakeven.toml")
    s.add_argument("-o", "--output", help="output netCDF path (default outputs/<name>.nc)")
    s.add_argument("--max-memory", metavar="SIZE",
                   help="memory budget for the sweep's data, e.g. 4GB or 512MiB (default: half the available RAM); "
                        "a larger grid is evaluated in blocks and streamed into the file")
    s.add_argument("--chunk-points", type=int, metavar="N", help="at most N grid points per block (besides --max-memory)")
    s.add_argument("--outputs", metavar="NAMES", help="comma-separated outputs to keep (default: all of the mode)")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="evaluate the blocks on a dask.distributed cluster, e.g. tcp://10.0.0.5:8786")
    s.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    s.add_argument("--resume", action="store_true",
                   help="continue an interrupted blocked sweep from its partial file")
    s.set_defaults(func=_cmd_sweep)

    c = sub.add_parser("catalog", help="list a catalog")
    c.add_argument("kind", choices=["hardware", "models", "interconnects", "slo", "traces", "anchors", "prices", "claims", "predictions"])
    c.add_argument("--all", action="store_true", help="show every column, sources included")
    c.set_defaults(func=_cmd_catalog)

    pr = sub.add_parser("params", help="list every parameter with unit, range and default")
    pr.set_defaults(func=_cmd_params)
    _register_extra(sub)
    return p


def _register_extra(sub) -> None:
    """Commands contributed by the analysis modules (plot, sensitivity, fit, validate...)."""
    import importlib

    # each analysis area owns one module with a register(subparsers) function
    for mod in ("frontier_jax.cli_plot", "frontier_jax.cli_fit"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            continue
        m.register(sub)


def main(argv=None) -> int:
    from .catalog import CatalogError
    from .config import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CatalogError, CLIError, ValueError, OSError) as e:
        print(f"frontier {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
