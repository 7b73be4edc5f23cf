"""``frontier plot FILE.nc --figure frontier|breakeven|hardware|workloads -o DIR``.

Thin: opens the sweep, selects single values of other dims (``--select DIM=VALUE``),
checks that the file has the dims the figure needs (exit 2 with a message naming them
otherwise) and writes PNG and PDF through :mod:`frontier_jax.plot`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .cli import CLIError


def _parse_select(items) -> dict:
    sel = {}
    for it in items or []:
        if "=" not in it:
            raise CLIError(f"--select {it!r}: expected DIM=VALUE, e.g. --select slo=paper-mid or --select eta=0.5")
        k, v = it.split("=", 1)
        k, v = k.strip(), v.strip()
        try:
            sel[k] = float(v)
        except ValueError:
            sel[k] = v
    return sel


def _apply_select(ds, sel: dict):
    for k, v in sel.items():
        if k not in ds.dims:
            raise CLIError(f"--select {k}={v}: {k!r} is not a dim of the file; its dims: {', '.join(ds.dims) or 'none'}")
        if isinstance(v, str):
            labels = [str(x) for x in ds[k].values]
            if v not in labels:
                raise CLIError(f"--select {k}={v}: not a value of {k}; allowed: {', '.join(labels)}")
            ds = ds.isel({k: labels.index(v)})
        else:
            ds = ds.sel({k: v}, method="nearest")
    return ds


def _cmd_plot(args) -> int:
    from . import io, plot

    path = Path(args.file)
    if not path.is_file():
        raise CLIError(f"{str(path)!r} {'is not a file' if path.exists() else 'does not exist'}; give a netCDF sweep file (frontier sweep ... -o FILE.nc)")
    try:
        ds = io.open_dataset(path)
    except (OSError, ValueError) as e:
        raise CLIError(f"{str(path)!r} is not a readable netCDF sweep file: {e}") from None
    ds = _apply_select(ds, _parse_select(args.select))
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad or not formats:
        raise CLIError(f"--formats: {', '.join(bad) or 'empty'} not allowed; allowed: png, pdf, svg (comma-separated)")
    kw = {"formats": formats, "name": args.name or f"{path.stem}_{args.figure}"}
    if args.figure in ("breakeven", "hardware", "workloads"):
        kw["versus"] = args.versus
        if args.versus == "best" and "cpm_cb" not in ds:
            raise CLIError("--versus best needs cpm_cb, which only first-principles sweeps have")
    plot.check_dims(ds, args.figure)  # ValueError -> exit 2 with the dims the figure needs
    paths = plot.figure(ds, args.figure, args.output, **kw)
    for p in paths:
        print(f"wrote {p}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add ``frontier plot`` to the CLI."""
    p = subparsers.add_parser(
        "plot",
        help="draw a figure (PNG and PDF) from a sweep file",
        description="Draw one of the paper's figures from a sweep file. Needed dims: "
        "frontier: ttft_slo_ms (optional eta for the eta band); breakeven and workloads: alpha, "
        "kv_bandwidth_gbps (optional slo, one panel each); hardware: hardware, alpha, "
        "kv_bandwidth_gbps (optional slo, one row each). Other dims must be selected with --select.",
    )
    p.add_argument("file", help="netCDF sweep file (frontier sweep ... -o FILE.nc)")
    p.add_argument("--figure", required=True, choices=["frontier", "breakeven", "hardware", "workloads"])
    p.add_argument("-o", "--output", default="outputs/figures", help="output folder (default outputs/figures)")
    p.add_argument("--select", action="append", metavar="DIM=VALUE",
                   help="fix one dim (nearest value for numbers); repeatable")
    p.add_argument("--versus", choices=["co", "best"], default="co",
                   help="colocated side of ΔCPM: chunked prefill (co) or min(co, cb) (best)")
    p.add_argument("--formats", default="png,pdf", help="comma-separated: png, pdf, svg (default png,pdf)")
    p.add_argument("--name", help="file name stem (default FILE_FIGURE)")
    p.set_defaults(func=_cmd_plot)
