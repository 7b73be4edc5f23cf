"""``frontier plot`` and frontier_jax.plot: every figure kind writes PNG and PDF from a small
sweep file; a file lacking the dims a figure needs exits 2 with a message naming them.

The break-even, hardware and workloads files come from one small calibrated sweep (one
compile of the shared point evaluator); the frontier figure needs first-principles
outputs (ttft_*), so its file is built by hand in that layout: these tests check the
drawing and the CLI, not the model.
"""
import numpy as np
import pytest
import xarray as xr

from frontier_jax import cli, config, frontier, io, plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("plot")
    spec = config.from_dict({
        "sweep": {"name": "t-plot", "mode": "calibrated"},
        "axes": {"hardware": ["H100-SXM5-80GB", "A100-SXM4-80GB"], "alpha": {"start": 0.2, "stop": 0.97, "num": 6},
                 "kv_bandwidth_gbps": [25.0, 100.0, 900.0], "slo": ["paper-tight", "paper-mid"]},
        "fixed": {"model": "Llama-2-70B", "tp_decode": 4, "eta": 0.5, "request_tokens": 1360,
                  "c_prefill": 0.33, "c_decode": 0.91, "decode_batch": 2},
    })
    ds = frontier.run_spec(spec)
    grid = io.save(ds, d / "grid.nc")
    # a hand-built frontier file: TTFT contracts x eta, in the layout of a first-principles sweep
    t = np.geomspace(80.0, 5000.0, 7)
    eta = np.array([0.3, 0.5, 0.8])
    base = 0.4 + 30.0 / t
    cpm_pd = (base * 1.2)[:, None] * (1.0 + 1e-3 * (0.5 - eta))[None, :]
    cpm_pd[0] = np.inf  # infeasible at the tightest contract
    fr = xr.Dataset(
        {"cpm_pd": (("ttft_slo_ms", "eta"), cpm_pd, {"units": "USD/Mtok"}),
         "cpm_co": (("ttft_slo_ms", "eta"), np.repeat(base[:, None], 3, 1), {"units": "USD/Mtok"}),
         "cpm_cb": (("ttft_slo_ms", "eta"), np.repeat((base * 1.5)[:, None], 3, 1), {"units": "USD/Mtok"}),
         "ttft_pd": (("ttft_slo_ms", "eta"), np.repeat((0.9 * t)[:, None], 3, 1), {"units": "ms"}),
         "ttft_co": (("ttft_slo_ms", "eta"), np.repeat((0.8 * t)[:, None], 3, 1), {"units": "ms"}),
         "ttft_cb": (("ttft_slo_ms", "eta"), np.repeat((0.7 * t)[:, None], 3, 1), {"units": "ms"})},
        coords={"ttft_slo_ms": t, "eta": eta, "tpot_slo_ms": 50.0},
        attrs={"mode": "first-principles", "title": "hand-built"},
    )
    fr_path = d / "frontier.nc"
    fr.to_netcdf(fr_path)
    return {"dir": d, "grid": grid, "frontier": fr_path, "ds": ds}


def _plot(argv, capsys):
    rc = cli.main(["plot", *map(str, argv)])
    return rc, capsys.readouterr().err


def _check_written(out, stem):
    for fmt in ("png", "pdf"):
        p = out / f"{stem}.{fmt}"
        assert p.is_file() and p.stat().st_size > 5000, p
    assert (out / f"{stem}.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    assert not list(out.glob(".*.tmp"))  # no half-written file left behind


@pytest.mark.parametrize("figure, select", [
    ("breakeven", ["--select", "hardware=H100-SXM5-80GB"]),
    ("workloads", ["--select", "hardware=A100-SXM4-80GB"]),
    ("hardware", []),
])
def test_heatmap_figures_write_png_and_pdf(files, capsys, figure, select):
    out = files["dir"] / f"out_{figure}"
    rc, err = _plot([files["grid"], "--figure", figure, "-o", out, *select], capsys)
    assert rc == 0, err
    _check_written(out, f"grid_{figure}")
    assert "wrote" in err


def test_frontier_figure_writes_png_and_pdf(files, capsys):
    out = files["dir"] / "out_frontier"
    rc, err = _plot([files["frontier"], "--figure", "frontier", "-o", out, "--name", "fig1"], capsys)
    assert rc == 0, err
    _check_written(out, "fig1")


@pytest.mark.parametrize("figure, file, needs", [
    ("frontier", "grid", "ttft_slo_ms"),
    ("breakeven", "frontier", "alpha, kv_bandwidth_gbps"),
    ("workloads", "frontier", "alpha, kv_bandwidth_gbps"),
    ("hardware", "frontier", "hardware, alpha, kv_bandwidth_gbps"),
])
def test_missing_dims_exit_2_naming_them(files, capsys, figure, file, needs):
    out = files["dir"] / f"none_{figure}"
    rc, err = _plot([files[file], "--figure", figure, "-o", out], capsys)
    assert rc == 2
    assert f"figure '{figure}' needs dims {needs}" in err
    assert "the file lacks" in err
    assert not out.exists()  # nothing written


def test_unselected_extra_dim_exits_2(files, capsys):
    rc, err = _plot([files["grid"], "--figure", "breakeven", "-o", files["dir"] / "x"], capsys)
    assert rc == 2
    assert "also varies hardware" in err and "--select" in err


def test_bad_select_and_missing_file_exit_2(files, capsys):
    rc, err = _plot([files["grid"], "--figure", "hardware", "--select", "slo=paper-loose"], capsys)
    assert rc == 2 and "allowed: paper-tight, paper-mid" in err
    rc, err = _plot([files["grid"], "--figure", "hardware", "--select", "gpu=H100"], capsys)
    assert rc == 2 and "'gpu' is not a dim" in err
    rc, err = _plot([files["dir"] / "nope.nc", "--figure", "hardware"], capsys)
    assert rc == 2 and "does not exist" in err
    rc, err = _plot([files["grid"], "--figure", "hardware", "--formats", "png,jpg"], capsys)
    assert rc == 2 and "jpg not allowed" in err


def test_delta_and_norm_are_centred_on_zero(files):
    ds = files["ds"].sel(hardware="H100-SXM5-80GB")
    d = plot.delta(ds)
    np.testing.assert_allclose(d.values, (ds["cpm_co"] - ds["cpm_pd"]).values)
    assert d.attrs["units"] == "USD/Mtok"
    # one-signed data still gets a scale that shows where 0 is
    n = plot.shared_norm([np.array([0.1, 0.5, 2.0])])
    assert n.vcenter == 0.0 and n.vmin < 0.0 < n.vmax
    n = plot.shared_norm([np.array([-3.0, 1.0, np.inf, np.nan])])
    assert (n.vmin, n.vcenter, n.vmax) == (-3.0, 0.0, 1.0)
    # only one side feasible: +inf where only pd is, -inf where only the other is
    two = xr.Dataset({"cpm_pd": ("x", [1.0, np.inf, 2.0, np.inf]), "cpm_co": ("x", [np.inf, 1.0, 1.5, np.inf])})
    got = plot.delta(two).values
    assert got[0] == np.inf and got[1] == -np.inf and got[2] == -0.5 and np.isnan(got[3])


def test_caption_names_sources(files):
    line = plot.source_line(files["ds"])
    assert "hardware.csv" in line and "paper_calibration.csv" in line and "calibrated" in line
