"""The paper's figures from sweep Datasets (matplotlib, Agg; PNG and PDF).

1. ``frontier``: the Pareto frontier (TTFT_q, CPM) per architecture at fixed TPOT, the
   non-dominated envelope, the eta band on the disaggregated frontier, and optionally
   published systems placed at their native conditions;
2. ``breakeven``: heatmaps of dCPM = CPM_co - CPM_PD over (alpha, B), one panel per SLO
   contract, crossover contour and refined crossovers overlaid;
3. ``hardware``: the same heatmaps as small multiples over GPUs (columns) and SLO
   contracts (rows);
4. ``workloads``: the published traces' alpha located on figure 2.

Every axis carries its unit; every figure ends with a caption line naming its data
sources; lines differ by style and marker and the heatmaps hatch the region where
disaggregation is cheaper, so the figures read in grayscale. The colour scale of dCPM is
diverging and centred on 0 (``TwoSlopeNorm``). No pyplot: figures are
``matplotlib.figure.Figure`` objects rendered by the Agg canvas, so nothing global changes.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

from . import frontier

FORMATS = ("png", "pdf")

# Each figure: the dims it needs, optional dims it facets or bands over, variables it reads.
FIGURES = {
    "frontier": {"dims": ("ttft_slo_ms",), "optional": ("eta",), "vars": ("cpm_pd", "cpm_co", "ttft_pd", "ttft_co")},
    "breakeven": {"dims": ("alpha", "kv_bandwidth_gbps"), "optional": ("slo",), "vars": ("cpm_pd", "cpm_co")},
    "hardware": {"dims": ("hardware", "alpha", "kv_bandwidth_gbps"), "optional": ("slo",), "vars": ("cpm_pd", "cpm_co")},
    "workloads": {"dims": ("alpha", "kv_bandwidth_gbps"), "optional": ("slo",), "vars": ("cpm_pd", "cpm_co")},
}

STYLE = {  # grayscale-safe: line style and marker differ, not only colour
    "pd": {"color": "#b2182b", "ls": "-", "marker": "o", "label": "disaggregated (pd)"},
    "co": {"color": "#2166ac", "ls": "--", "marker": "s", "label": "chunked prefill (co)"},
    "cb": {"color": "#4d4d4d", "ls": ":", "marker": "^", "label": "continuous batching (cb)"},
}
CMAP = "RdBu_r"
HATCH_PD = "////"
HATCH_ONE = "..."


def check_dims(ds: xr.Dataset, figure: str) -> None:
    """Raise ValueError naming the dims a figure needs when ``ds`` lacks any of them.

    Dims other than the needed and optional ones must have a single value.
    """
    if figure not in FIGURES:
        raise ValueError(f"figure {figure!r} is not known; allowed: {', '.join(FIGURES)}")
    f = FIGURES[figure]
    have = list(ds.dims)
    missing = [d for d in f["dims"] if d not in ds.dims]
    if missing:
        opt = f" (optional: {', '.join(f['optional'])})" if f["optional"] else ""
        raise ValueError(
            f"figure {figure!r} needs dims {', '.join(f['dims'])}{opt}; the file lacks {', '.join(missing)} "
            f"(its dims: {', '.join(have) or 'none'})"
        )
    missing_vars = [v for v in f["vars"] if v not in ds]
    if missing_vars:
        raise ValueError(f"figure {figure!r} needs variables {', '.join(f['vars'])}; the file lacks {', '.join(missing_vars)}")
    extra = [d for d in ds.dims if d not in f["dims"] + f["optional"] and ds.sizes[d] > 1]
    if extra:
        raise ValueError(
            f"figure {figure!r} draws dims {', '.join(f['dims'] + f['optional'])}; the file also varies "
            f"{', '.join(extra)}: select one value of each (frontier plot --select DIM=VALUE)"
        )


def source_line(ds: xr.Dataset, extra: str = "") -> str:
    """Caption: what was computed, from which catalogs and file."""
    a = ds.attrs
    bits = []
    mode = a.get("mode", "?")
    bits.append(f"model: {'paper frame, calibrated scalars (MODEL.md §3)' if mode == 'calibrated' else 'first-principles (MODEL.md §4-7)'}")
    fixed = [f"{k[6:]}={a[k]}" for k in ("fixed_model", "fixed_hardware", "fixed_slo", "fixed_interconnect") if k in a]
    if fixed:
        bits.append(", ".join(fixed))
    bits.append("catalogs: frontier_jax/data (hardware.csv, models.csv, slo_contracts.csv"
                + (", paper_calibration.csv" if mode == "calibrated" else "") + ")")
    if "title" in a:
        bits.append(f"{a['title']} (config sha256:{a.get('config_sha256', '?')})")
    if extra:
        bits.append(extra)
    return "; ".join(bits)


def _new(figsize):
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _caption(fig, text: str, width: int = 170):
    wrapped = "\n".join(textwrap.wrap(text, width))
    fig.text(0.01, 0.005, wrapped, fontsize=7, va="bottom", ha="left", color="0.15")
    return wrapped.count("\n") + 1


def _save(fig, out_dir, name, formats=FORMATS) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        p = out_dir / f"{name}.{fmt}"
        tmp = p.with_name(f".{p.name}.tmp")
        fig.savefig(tmp, dpi=150, format=fmt)
        tmp.replace(p)  # never a half-written figure under the final name
        paths.append(p)
    return paths


def _edges(v, log=False):
    v = np.asarray(v, dtype=float)
    if len(v) == 1:
        return np.array([v[0] * 0.9, v[0] * 1.1]) if log else np.array([v[0] - 0.5, v[0] + 0.5])
    if log:
        lv = np.log(v)
        mid = 0.5 * (lv[1:] + lv[:-1])
        return np.exp(np.r_[2 * lv[0] - mid[0], mid, 2 * lv[-1] - mid[-1]])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.r_[2 * v[0] - mid[0], mid, 2 * v[-1] - mid[-1]]


def delta(ds: xr.Dataset, versus: str = "co") -> xr.DataArray:
    """dCPM = CPM_other - CPM_PD [USD/Mtok] (+inf: only pd feasible, -inf: only the other)."""
    other = ds["cpm_co"]
    if versus == "best":
        other = np.fmin(other, ds["cpm_cb"])
    pd = ds["cpm_pd"]
    fp, fo = np.isfinite(pd), np.isfinite(other)
    d = xr.where(fp & fo, other - pd, xr.where(fp, np.inf, xr.where(fo, -np.inf, np.nan)))
    return d.assign_attrs(units="USD/Mtok")


def shared_norm(arrays) -> TwoSlopeNorm:
    """A TwoSlopeNorm centred on 0 over the finite values of several arrays.

    When every value has one sign, the other side gets 5% of its range so that the
    scale still shows where 0 is.
    """
    vals = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    lo = float(vals.min()) if vals.size else -1.0
    hi = float(vals.max()) if vals.size else 1.0
    span = max(abs(lo), abs(hi), 1e-12)
    lo = min(lo, -0.05 * span)
    hi = max(hi, 0.05 * span)
    return TwoSlopeNorm(vcenter=0.0, vmin=lo, vmax=hi)


def _cmap():
    return colormaps[CMAP].with_extremes(bad="0.85", over="#67001f", under="#053061")


def _heatmap(ax, d2: xr.DataArray, norm, crossings=None, label_axes=(True, True)):
    """One dCPM panel: alpha (x) by B (y, log); d2 has dims (kv_bandwidth_gbps, alpha).

    Cells where disaggregation is cheaper (dCPM > 0) are hatched '////' in black; cells
    where only one side is feasible take the colour bar's end colour and a white hatch
    ('////' dark red: only pd; dots on dark blue: only the colocated side); cells where
    neither is feasible are light gray.
    """
    d2 = d2.transpose("kv_bandwidth_gbps", "alpha")
    a = d2["alpha"].values.astype(float)
    b = d2["kv_bandwidth_gbps"].values.astype(float)
    z = np.asarray(d2.values, dtype=float)
    ea, eb = _edges(a), _edges(b, log=True)
    zc = np.where(np.isposinf(z), norm.vmax * 1e3, np.where(np.isneginf(z), norm.vmin * 1e3, z))
    mesh = ax.pcolormesh(ea, eb, np.ma.masked_invalid(zc), cmap=_cmap(), norm=norm, shading="flat", rasterized=True)
    ax.set_yscale("log")
    # hatches carry the sign in grayscale: black '////' where pd is cheaper; on the dark
    # end colours, white '////' (only pd feasible) or white dots (only colocated feasible)
    for mask, hatch, colour in (((z > 0) & np.isfinite(z), HATCH_PD, "k"), (np.isposinf(z), HATCH_PD, "w"),
                                (np.isneginf(z), HATCH_ONE, "w")):
        if mask.any():
            _hatch_region(ax, a, b, ea, eb, mask, hatch, colour)
    finite = np.isfinite(z)
    if finite.any() and len(a) > 1 and len(b) > 1 and (z[finite] > 0).any() and (z[finite] < 0).any():
        ax.contour(a, b, np.ma.masked_invalid(np.where(finite, z, np.nan)), levels=[0.0], colors="k", linewidths=1.6)
    if crossings is not None:
        ok = np.isfinite(crossings["alpha_star"].values)
        if ok.any():
            # the refined roots on at most ~10 B rows, so that the contour stays visible
            nb = crossings["alpha_star"].shape[0]
            rows = np.zeros(nb, dtype=bool)
            rows[np.unique(np.linspace(0, nb - 1, min(nb, 10)).round().astype(int))] = True
            ok &= rows[:, None]
            bb = np.broadcast_to(crossings["kv_bandwidth_gbps"].values[:, None], crossings["alpha_star"].shape)
            ax.plot(crossings["alpha_star"].values[ok], bb[ok], ls="none", marker="o", ms=4,
                    mfc="white", mec="k", mew=0.9, zorder=5)
    ax.set_xlim(ea[0], ea[-1])
    ax.set_ylim(eb[0], eb[-1])
    _b_ticks(ax, eb[0], eb[-1])
    # no alpha tick label within 2% of a panel edge, where it would run into its neighbour's
    span = ea[-1] - ea[0]
    ax.set_xticks([t for t in ax.get_xticks() if ea[0] + 0.02 * span <= t <= ea[-1] - 0.02 * span])
    if label_axes[0]:
        ax.set_xlabel("prefill share α = P/(P+D) [1]")
    if label_axes[1]:
        ax.set_ylabel("KV bandwidth B [GB/s]")
    return mesh


B_TICKS = (1, 3, 10, 25, 50, 100, 200, 450, 900, 1800, 3600)
"""Labelled KV bandwidths on log B axes [GB/s] (the crossover table's 25, 50, 450, 900 among them)."""


def _b_ticks(ax, lo, hi):
    """Plain-number major ticks at :data:`B_TICKS` within [lo, hi] [GB/s]; minor ticks unlabelled."""
    ticks = [t for t in B_TICKS if lo <= t <= hi]
    if len(ticks) >= 2:
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())


def _hatch_region(ax, a, b, ea, eb, mask, hatch, color):
    """Hatch the cells where ``mask`` holds, as one filled contour of the 0/1 mask.

    Cheaper than a hatched polygon per cell (the Agg renderer took seconds per panel);
    the 0.5 level of the mask falls on the cell boundaries (midway between centres; on
    the log B axis the arithmetic rather than geometric midpoint, a fraction of a row).
    The mask is padded with its edge values out to the outer cell edges.
    """
    xs = np.r_[ea[0], a, ea[-1]]
    ys = np.r_[eb[0], b, eb[-1]]
    m = np.pad(mask.astype(float), 1, mode="edge")
    cs = ax.contourf(xs, ys, m, levels=[0.5, 1.5], colors="none", hatches=[hatch], zorder=2)
    cs.set_edgecolor(color)
    cs.set_linewidth(0)
    return cs


def _colorbar(fig, mesh, cax, norm, label):
    cb = fig.colorbar(mesh, cax=cax, extend="both")
    neg = np.linspace(norm.vmin, 0.0, 5)
    pos = np.linspace(0.0, norm.vmax, 4)[1:]
    cb.set_ticks(np.r_[neg, pos])
    cb.set_ticklabels([f"{t:.2g}" for t in np.r_[neg, pos]])
    cb.set_label(label)
    return cb


def _slo_title(ds, slo):
    try:
        t = float(ds["ttft_slo_ms"].sel(slo=slo))
        p = float(ds["tpot_slo_ms"].sel(slo=slo))
        return f"{slo}: TTFT {t:g} ms, TPOT {p:g} ms"
    except (KeyError, ValueError):
        return str(slo)


def _legend_handles(has_crossings: bool):
    h = [Patch(facecolor="white", edgecolor="k", hatch=HATCH_PD, label="disaggregation cheaper (ΔCPM > 0)"),
         Line2D([], [], color="k", lw=1.4, label="ΔCPM = 0 (grid contour)")]
    if has_crossings:
        h.append(Line2D([], [], ls="none", marker="o", mfc="white", mec="k", label="α* refined on the model"))
    h.append(Patch(facecolor="#67001f", edgecolor="w", hatch=HATCH_PD, label="only pd feasible"))
    h.append(Patch(facecolor="#053061", edgecolor="w", hatch=HATCH_ONE, label="only colocated feasible"))
    h.append(Patch(facecolor="0.85", edgecolor="0.5", label="neither feasible"))
    return h


def _squeeze(ds: xr.Dataset, keep) -> xr.Dataset:
    drop = [d for d in ds.dims if d not in keep and ds.sizes[d] == 1]
    return ds.isel({d: 0 for d in drop})


def plot_breakeven(ds: xr.Dataset, out_dir, *, name: str = "fig2_breakeven", crossings: xr.Dataset | None = None,
                   versus: str = "co", title: str | None = None, caption: str = "", formats=FORMATS,
                   workloads: list | None = None) -> list[Path]:
    """Figure 2 (and 4 with ``workloads``): dCPM heatmaps over (alpha, B), one panel per SLO."""
    check_dims(ds, "workloads" if workloads is not None else "breakeven")
    ds = _squeeze(ds, ("alpha", "kv_bandwidth_gbps", "slo"))
    d = delta(ds, versus)
    slos = list(ds["slo"].values) if "slo" in ds.dims else [None]
    n = len(slos)
    key_h = 0.9 if workloads else 0.0
    fig = _new((4.4 * n + 1.6, 5.6 + key_h))
    gs = fig.add_gridspec(1, n + 1, width_ratios=[1.0] * n + [0.045], wspace=0.08)
    axes = []
    for i in range(n):
        axes.append(fig.add_subplot(gs[0, i], sharey=axes[0] if axes else None))
    norm = shared_norm([d.values])
    mesh = None
    for i, (ax, s_) in enumerate(zip(axes, slos)):
        d2 = d.sel(slo=s_) if s_ is not None else d
        cx = None
        if crossings is not None:
            cx = crossings.sel(slo=s_) if (s_ is not None and "slo" in crossings.dims) else crossings
            cx = _squeeze(cx, ("kv_bandwidth_gbps", "crossing"))
        mesh = _heatmap(ax, d2, norm, cx, label_axes=(True, i == 0))
        if i > 0:
            ax.tick_params(which="both", labelleft=False)
        ax.set_title(_slo_title(ds, s_) if s_ is not None else "", fontsize=10)
        if workloads:
            _workload_lines(ax, workloads)
    other = "min(CPM_co, CPM_cb)" if versus == "best" else "CPM_co"
    _colorbar(fig, mesh, fig.add_subplot(gs[0, n]), norm, f"ΔCPM = {other} − CPM_PD [USD/Mtok]")
    handles = _legend_handles(crossings is not None)
    if workloads:
        handles += [Line2D([], [], color="k", ls=(0, (4, 2)), lw=0.9, label="published workload (α of its trace)")]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 4), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.995))
    if title:
        fig.suptitle(title, y=0.9, fontsize=11)
    lines = _caption(fig, source_line(ds, caption), width=int(40 * n + 40))
    H = 5.6 + key_h
    bottom = (0.75 + 0.13 * lines + key_h) / H
    fig.subplots_adjust(left=0.06 if n > 1 else 0.14, right=0.93, top=1 - 1.0 / H, bottom=bottom)
    if workloads:
        _workload_key(fig, workloads, y=(0.2 + 0.13 * lines) / H, x0=0.06 if n > 1 else 0.02)
    return _save(fig, out_dir, name, formats)


def _workload_lines(ax, workloads):
    ymin, ymax = ax.get_ylim()
    order = np.argsort([w["alpha"] for w in workloads], kind="stable")
    levels = 6
    for rank, k in enumerate(order):
        w = workloads[k]
        xmin, xmax = ax.get_xlim()
        # neighbours in alpha get different heights, so that close alphas stay readable
        y = ymax / ((ymax / ymin) ** (0.06 + 0.11 * (rank % levels)))
        label = str(k + 1)
        x = w["alpha"]
        if xmin <= x <= xmax:
            ax.axvline(x, color="k", ls=(0, (4, 2)), lw=0.9)
        else:  # off the map: a label at the edge it lies beyond, never a silent omission
            x, label = (xmax, f"{label}→") if x > xmax else (xmin, f"←{label}")
        ax.text(x, y, label, fontsize=7, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="k", lw=0.5))


def _workload_key(fig, workloads, y, x0=0.06):
    items = [f"{k:>2} {w['trace']} α={w['alpha']:.3f} ({w['basis']}s)" for k, w in enumerate(workloads, start=1)]
    cols = 3
    per = -(-len(items) // cols)
    for c in range(cols):
        col = items[c * per:(c + 1) * per]
        fig.text(x0 + c * 0.29, y, "\n".join(col), fontsize=7, va="bottom", ha="left", family="monospace")


def plot_workloads(ds: xr.Dataset, out_dir, *, name: str = "fig4_workloads", workloads: list | None = None, **kw) -> list[Path]:
    """Figure 4: published workloads (alpha from data/traces.csv) located on figure 2."""
    check_dims(ds, "workloads")
    if workloads is None:
        workloads = frontier.trace_workloads()
    cap = kw.pop("caption", "")
    cap = (cap + "; " if cap else "") + "workload α from data/traces.csv (means, or medians where only those exist); " \
        "the background is at this file's request length, each workload only contributes its α"
    return plot_breakeven(ds, out_dir, name=name, workloads=workloads, caption=cap, **kw)


def plot_hardware(ds: xr.Dataset, out_dir, *, name: str = "fig3_hardware", crossings: xr.Dataset | None = None,
                  versus: str = "co", title: str | None = None, caption: str = "", formats=FORMATS) -> list[Path]:
    """Figure 3: dCPM heatmaps, GPUs in columns and SLO contracts in rows."""
    check_dims(ds, "hardware")
    ds = _squeeze(ds, ("hardware", "alpha", "kv_bandwidth_gbps", "slo"))
    d = delta(ds, versus)
    hws = list(ds["hardware"].values)
    slos = list(ds["slo"].values) if "slo" in ds.dims else [None]
    nr, nc = len(slos), len(hws)
    W, H = 3.0 * nc + 2.4, 2.7 * nr + 2.2
    fig = _new((W, H))
    gs = fig.add_gridspec(nr, nc + 1, width_ratios=[1.0] * nc + [0.05], wspace=0.07, hspace=0.1)
    axes = np.empty((nr, nc), dtype=object)
    for r in range(nr):
        for c in range(nc):
            axes[r, c] = fig.add_subplot(gs[r, c], sharex=axes[0, 0] if (r or c) else None,
                                         sharey=axes[0, 0] if (r or c) else None)
    norm = shared_norm([d.values])
    mesh = None
    for r, s_ in enumerate(slos):
        for c, h in enumerate(hws):
            ax = axes[r, c]
            d2 = d.sel(hardware=h)
            if s_ is not None:
                d2 = d2.sel(slo=s_)
            cx = None
            if crossings is not None:
                cx = crossings.sel(hardware=h)
                if s_ is not None and "slo" in cx.dims:
                    cx = cx.sel(slo=s_)
                cx = _squeeze(cx, ("kv_bandwidth_gbps", "crossing"))
            mesh = _heatmap(ax, d2, norm, cx, label_axes=(r == nr - 1, False))
            if c == 0:
                row = (_slo_title(ds, s_).replace(": ", "\n") + "\n") if s_ is not None else ""
                ax.set_ylabel(f"{row}B [GB/s]", fontsize=8)
            else:
                ax.tick_params(which="both", labelleft=False)
            if r < nr - 1:
                ax.tick_params(labelbottom=False)
            if r == 0:
                price = ""
                if "price_usd_per_gpu_hr" in ds.coords:
                    price = f"\n{float(ds['price_usd_per_gpu_hr'].sel(hardware=h)):g} USD/GPU-h"
                ax.set_title(f"{h}{price}", fontsize=9)
    other = "min(CPM_co, CPM_cb)" if versus == "best" else "CPM_co"
    _colorbar(fig, mesh, fig.add_subplot(gs[:, nc]), norm, f"ΔCPM = {other} − CPM_PD [USD/Mtok]")
    handles = _legend_handles(crossings is not None)
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.995))
    if title:
        fig.suptitle(title, y=1 - 0.55 / H, fontsize=11)
    lines = _caption(fig, source_line(ds, caption), width=int(W * 16))
    fig.subplots_adjust(left=1.0 / W, right=0.93, top=1 - 1.2 / H, bottom=(0.6 + 0.13 * lines) / H)
    return _save(fig, out_dir, name, formats)


def plot_frontier(ds: xr.Dataset, out_dir, *, name: str = "fig1_frontier", anchors: list | None = None,
                  skipped: list | None = None, paper_points: list | None = None, eta_band=(0.3, 0.8),
                  title: str | None = None, caption: str = "", formats=FORMATS) -> list[Path]:
    """Figure 1: Pareto frontier (TTFT_q, CPM) per architecture at fixed TPOT.

    Parameters
    ----------
    ds : Dataset with a ``ttft_slo_ms`` dim (the TTFT contracts swept) and optionally
        ``eta``: the central eta (0.5 when present) gives the curves, the range of eta in
        ``eta_band`` gives the band on the disaggregated frontier.
    anchors : list of dict, optional
        Published systems from :func:`frontier_jax.frontier.place_anchors`, drawn in a
        second panel (their native conditions differ from the first panel's).
    skipped : list of (anchor_id, reason), optional
        Anchors that could not be placed, listed under the second panel.
    paper_points : list of dict, optional
        Points of the paper frame: ``{"arch", "ttft_ms", "cpm"}`` (and ``legend`` on the
        first).
    """
    check_dims(ds, "frontier")
    ds = _squeeze(ds, ("ttft_slo_ms", "eta"))
    main = ds
    band = None
    if "eta" in ds.dims:
        etas = ds["eta"].values.astype(float)
        centre = 0.5 if np.any(np.isclose(etas, 0.5)) else float(np.median(etas))
        main = ds.sel(eta=centre, method="nearest")
        in_band = (etas >= eta_band[0] - 1e-9) & (etas <= eta_band[1] + 1e-9)
        if in_band.sum() >= 2:
            sub = ds.isel(eta=np.flatnonzero(in_band))
            band = (sub["cpm_pd"].min("eta").values, sub["cpm_pd"].max("eta").values,
                    float(etas[in_band].min()), float(etas[in_band].max()), sub)
    pts = frontier.frontier_points(main)
    env = frontier.envelope(pts)
    ncols = 2 if anchors else 1
    W, H = 7.0 * ncols + 0.6, 8.2
    fig = _new((W, H))
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    ax = axes[0]
    if len(env["ttft_ms"]):
        xs = np.r_[env["ttft_ms"], np.nanmax([v["ttft_ms"].max() for v in pts.values() if len(v["ttft_ms"])]) * 1.3]
        ax.step(xs, np.r_[env["cpm"], env["cpm"][-1]], where="post", color="0.6", lw=7, alpha=0.45, zorder=1,
                solid_joinstyle="miter", label="non-dominated envelope (filled markers)")
    for a, v in pts.items():
        st = STYLE[a]
        order = np.argsort(v["ttft_ms"])
        on = env["on_envelope"][a][order]
        ax.plot(v["ttft_ms"][order], v["cpm"][order], color=st["color"], ls=st["ls"], lw=1.3, zorder=3,
                marker=st["marker"], ms=4.5, mfc="white", label=st["label"])
        if on.any():
            ax.plot(v["ttft_ms"][order][on], v["cpm"][order][on], ls="none", marker=st["marker"], ms=6.5,
                    color=st["color"], zorder=4)
    if band is not None:
        x = main["ttft_pd"].values.astype(float)
        ok = np.isfinite(x) & np.isfinite(band[0]) & np.isfinite(band[1])
        o = np.argsort(x[ok])
        width = float(np.max(band[1][ok] - band[0][ok])) if ok.any() else float("nan")
        ax.fill_between(x[ok][o], band[0][ok][o], band[1][ok][o], facecolor=STYLE["pd"]["color"], alpha=0.3,
                        hatch="xx", edgecolor=STYLE["pd"]["color"], lw=0.5, zorder=2,
                        label=f"pd over η ∈ [{band[2]:g}, {band[3]:g}]: at most {width:.2g} USD/Mtok wide "
                              "(inset: relative)")
        _eta_inset(ax, main, band[4])
    if paper_points:
        for p in paper_points:
            st = STYLE[p["arch"]]
            ax.plot([p["ttft_ms"]], [p["cpm"]], ls="none", marker=st["marker"], ms=12, mfc="none", mec=st["color"],
                    mew=1.6, zorder=5)
        legend = paper_points[0].get("legend", "paper frame (calibrated)")
        for a in dict.fromkeys(p["arch"] for p in paper_points):
            ax.plot([], [], ls="none", marker=STYLE[a]["marker"], ms=10, mfc="none", mec=STYLE[a]["color"], mew=1.6,
                    label=f"{legend}: {a}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("TTFT at the attainment quantile, TTFT_q [ms]")
    ax.set_ylabel("CPM [USD per 10⁶ SLO-compliant served tokens] (log)")
    tpot = _fixed(ds, "tpot_slo_ms")
    ax.set_title(f"(a) model frontier over TTFT contracts, TPOT {tpot:g} ms" if tpot is not None else "(a) model frontier",
                 fontsize=10)
    ax.grid(True, which="both", color="0.9", lw=0.6)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    if anchors:
        _anchor_panel(axes[1], anchors, skipped or [])
    if title:
        fig.suptitle(title, fontsize=11)
    lines = _caption(fig, source_line(ds, caption), width=int(W * 17))
    fig.subplots_adjust(left=0.8 / W, right=1 - 0.25 / W, top=1 - 0.75 / H, bottom=(2.6 + 0.13 * lines) / H, wspace=0.2)
    return _save(fig, out_dir, name, formats)


def _eta_inset(ax, main, sub):
    """Inset: CPM_PD at each eta of the band relative to the curve's eta [%] against TTFT_q [ms].

    The band is often far thinner than a line on the main log axis; the inset shows its
    actual size.
    """
    centre = float(main["eta"]) if "eta" in main.coords else float("nan")
    ref = main["cpm_pd"].values.astype(float)
    x = main["ttft_pd"].values.astype(float)
    ok = np.isfinite(x) & np.isfinite(ref) & (ref > 0)
    if ok.sum() < 2:
        return None
    o = np.argsort(x[ok])
    ins = ax.inset_axes([0.47, 0.58, 0.5, 0.38])
    styles = [(0, (1, 1)), "-", (0, (5, 2)), "-."]
    for k, e in enumerate(sub["eta"].values.astype(float)):
        rel = 100.0 * (sub["cpm_pd"].sel(eta=e).values.astype(float)[ok] / ref[ok] - 1.0)
        ins.plot(x[ok][o], rel[o], color=STYLE["pd"]["color"], ls=styles[k % len(styles)], lw=1.2,
                 label=f"η = {e:g}")
    ins.axhline(0.0, color="0.5", lw=0.6)
    ins.set_xscale("log")
    ins.set_xlabel("TTFT_q [ms]", fontsize=7, labelpad=1)
    ins.set_ylabel(f"CPM_PD vs η = {centre:g} [%]", fontsize=7)
    ins.tick_params(labelsize=6.5)
    ins.yaxis.get_major_formatter().set_useOffset(False)
    ins.legend(fontsize=6.5, frameon=False, loc="best")
    ins.set_title("η band on the pd frontier, relative", fontsize=7.5, pad=2)
    ins.set_facecolor("white")
    return ins


def _fixed(ds, name):
    if name in ds.coords and ds[name].size == 1:
        return float(ds[name].values)
    v = ds.attrs.get(f"fixed_{name}")
    return float(v) if isinstance(v, (int, float, np.floating)) else None


def _anchor_panel(ax, anchors, skipped):
    for k, r in enumerate(anchors, start=1):
        st = STYLE[r["arch"]]
        b = STYLE[r["baseline_arch"]]
        x, y = r["ttft_ms"], r["cpm_model"]
        xb, yb = r["ttft_baseline_ms"], r["cpm_baseline_model"]
        if np.isfinite(x) and np.isfinite(y) and np.isfinite(xb) and np.isfinite(yb):
            ax.plot([x, xb], [y, yb], color="0.55", lw=0.8, ls=":", zorder=2)
        if np.isfinite(x) and np.isfinite(y):
            ax.plot([x], [y], ls="none", marker=st["marker"], ms=8, color=st["color"], zorder=4)
        if np.isfinite(xb) and np.isfinite(yb):
            ax.plot([xb], [yb], ls="none", marker=b["marker"], ms=7, mfc="white", mec=b["color"], mew=1.2, zorder=4)
        lo, hi = r["cpm_reported_low"], r["cpm_reported_high"]
        xr_ = (x if np.isfinite(x) else xb) * 1.1
        if np.isfinite(lo) and np.isfinite(hi) and np.isfinite(xr_):
            if hi > lo * 1.0001:
                ax.plot([xr_, xr_], [lo, hi], color="k", lw=2.4, solid_capstyle="butt", zorder=3)
            else:
                ax.plot([xr_], [lo], ls="none", marker="_", ms=13, mew=2.4, color="k", zorder=3)
            ax.annotate(f"{k}r", (xr_, hi), xytext=(4, -2), textcoords="offset points", fontsize=7)
        lx, ly = (x, y) if np.isfinite(x) and np.isfinite(y) else (xb, yb)
        if np.isfinite(lx) and np.isfinite(ly):
            ax.annotate(str(k), (lx, ly), xytext=(-10, 5), textcoords="offset points", fontsize=8, fontweight="bold")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("TTFT at the attainment quantile, TTFT_q [ms]")
    ax.set_ylabel("CPM [USD per 10⁶ SLO-compliant served tokens] (log)")
    ax.set_title("(b) published systems, each at its own native conditions", fontsize=10)
    ax.grid(True, which="both", color="0.9", lw=0.6)
    handles = [Line2D([], [], ls="none", marker=STYLE[a]["marker"], color=STYLE[a]["color"], ms=7,
                      label=f"system ({a}): model prediction") for a in ("pd", "co")]
    handles += [Line2D([], [], ls="none", marker="^", mfc="white", mec=STYLE["cb"]["color"], ms=7,
                       label="its baseline (cb): model prediction, dotted link"),
                Line2D([], [], color="k", lw=2.4, label="k r: model baseline ÷ reported ratio (bar: range)")]
    ax.legend(handles=handles, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    key = [f"{k} {r['anchor_id']} ({r['model']}, {r['gpu'].split('-')[0]}x{r['gpus_per_instance']})"
           for k, r in enumerate(anchors, start=1)]
    half = -(-len(key) // 2)
    text = "\n".join(f"{a:<44s} {b}" for a, b in zip(key[:half], key[half:] + [""] * (2 * half - len(key))))
    if skipped:
        text += "\n" + textwrap.fill("not placed: " + "; ".join(f"{a} ({_short(why)})" for a, why in skipped), 110)
    ax.text(0.0, -0.25, text, transform=ax.transAxes, fontsize=6.5, va="top", ha="left", family="monospace")


def _short(why: str) -> str:
    w = why.split(";")[0].split(":")[-1].strip() if why.startswith("context") else why.split(";")[0]
    return w if len(w) < 70 else w[:67] + "..."


def figure(ds: xr.Dataset, kind: str, out_dir, **kw) -> list[Path]:
    """Draw one figure kind (frontier, breakeven, hardware, workloads) from a Dataset."""
    check_dims(ds, kind)
    fn = {"frontier": plot_frontier, "breakeven": plot_breakeven, "hardware": plot_hardware,
          "workloads": plot_workloads}[kind]
    return fn(ds, out_dir, **kw)


# --- sensitivities -------------------------------------------------------------------

TORNADO_TOP = 10
"""Parameters per tornado panel (the largest median |elasticity| of the region)."""


def plot_tornado(ds: xr.Dataset, out_dir, *, name: str = "fig5_tornado", formats=FORMATS, top: int = TORNADO_TOP,
                 caption: str = "") -> list[Path]:
    """Tornado chart per region: median elasticity of the winning architecture's CPM.

    One panel per region (grid points where pd, co or cb is cheapest) that has points;
    bars are the median over the region of d ln CPM / d ln theta, sorted by the median of
    its absolute value (``median_abs_elasticity`` of :func:`frontier_jax.sensitivity.compute`),
    with the interquartile range of the elasticity as a whisker. Positive bars are
    hatched so that the sign reads in grayscale.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`frontier_jax.sensitivity.compute` (``region``, ``parameter``).
    """
    need = ("median_abs_elasticity", "median_elasticity", "region_points", "best_arch")
    missing = [v for v in need if v not in ds]
    if missing:
        raise ValueError(f"a tornado chart needs a sensitivity file (frontier sensitivity); it lacks {', '.join(missing)}")
    regions = [str(r) for r in ds["region"].values if int(ds["region_points"].sel(region=r)) > 0]
    if not regions:
        raise ValueError("no grid point has a feasible cheapest architecture: nothing to rank")
    params = [str(p) for p in ds["parameter"].values]
    units = dict(zip(params, (str(u) for u in ds["parameter_units"].values)))
    fig = _new((4.2 * len(regions), 0.33 * top + 2.4))
    axes = fig.subplots(1, len(regions), squeeze=False)[0]
    best = ds["best_arch"].values
    from .variables import ARCHS

    for ax, r in zip(axes, regions):
        med = ds["median_abs_elasticity"].sel(region=r).values
        order = [i for i in np.argsort(-np.nan_to_num(med, nan=-1.0), kind="stable") if np.isfinite(med[i]) and med[i] > 0][:top]
        mask = best == ARCHS.index(r)
        e = ds[f"elasticity_cpm_{r}"].values[:, mask]
        with np.errstate(all="ignore"):
            q1, q2, q3 = (np.nanpercentile(e[order], q, axis=1) for q in (25, 50, 75))
        y = np.arange(len(order))[::-1]
        st = STYLE[r]
        for yi, v in zip(y, q2):
            ax.barh(yi, v, color=st["color"], alpha=0.75, edgecolor="k", linewidth=0.5,
                    hatch="///" if v > 0 else None)
        ax.errorbar(q2, y, xerr=[q2 - q1, q3 - q2], fmt="none", ecolor="k", elinewidth=0.8, capsize=2)
        ax.set_yticks(y, [f"{params[i]} [{units[params[i]]}]" for i in order], fontsize=7)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel("elasticity d ln CPM / d ln θ [1]")
        n = int(ds["region_points"].sel(region=r))
        ax.set_title(f"{st['label']} cheapest\n({n} grid points; CPM_{r})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    text = ("Median elasticity of the cheapest architecture's CPM over the grid points where it wins (bar; hatched: "
            "positive), interquartile range (whisker); forward-mode autodiff at every point. " + source_line(ds, caption))
    n_lines = _caption(fig, text, width=int(70 * len(regions)))
    fig.tight_layout(rect=(0, 0.02 + 0.025 * n_lines, 1, 1))
    return _save(fig, out_dir, name, formats)
