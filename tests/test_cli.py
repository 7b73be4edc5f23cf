"""The ``frontier`` command line: clean messages and exit code 2 on bad input, no output file.

Most calls run :func:`frontier_jax.cli.main` in-process (fast); one runs the installed
console script in a subprocess.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from frontier_jax import catalog
from frontier_jax.cli import main
from frontier_jax.variables import CATEGORICAL, INPUTS

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "sweeps" / "paper_breakeven.toml"

GOOD_FIXED = """
[fixed]
model = "Llama-2-70B"
hardware = "H100-SXM5-80GB"
c_prefill = 0.33
c_decode = 0.91
decode_batch = 128
"""

# (TOML text, substrings of the message: the field, then what is allowed)
BAD_TOML = {
    "unknown parameter": ('[sweep]\nmode = "calibrated"\n[axes]\nalpah = [0.5]\n' + GOOD_FIXED,
                          ["axes.alpah", "unknown parameter", "did you mean 'alpha'"]),
    "out of range": ('[sweep]\nmode = "calibrated"\n[axes]\nalpha = [0.5, 1.0]\n' + GOOD_FIXED,
                     ["axes.alpha[1]", "out of range", "(0, 1)"]),
    "wrong unit": ('[sweep]\nmode = "calibrated"\n' + GOOD_FIXED + 'slo = "paper-mid"\nttft_slo_ms = "5 GB"\n',
                   ["fixed.ttft_slo_ms", "unit 'GB' is not allowed", "'ms'"]),
    "unknown catalog name": ('[sweep]\nmode = "calibrated"\n[axes]\nhardware = ["H100-SXM5-80GB", "TPU-v5"]\n'
                             '[fixed]\nc_prefill = 0.3\nc_decode = 0.9\ndecode_batch = 128\nsigma_co = 0\n',
                             ["axes.hardware[1]", "'TPU-v5'", "valid names", "A100-SXM4-80GB", "MI300X"]),
    "empty axis": ('[axes]\nkv_bandwidth_gbps = []\n', ["axes.kv_bandwidth_gbps", "empty"]),
    "duplicated axis values": ('[axes]\nkv_bandwidth_gbps = [50, "50 GB/s"]\n', ["axes.kv_bandwidth_gbps", "more than once"]),
    "axis and fixed": ('[axes]\neta = [0.1, 0.2]\n[fixed]\neta = 0.5\n', ["eta", "both as an axis and as fixed"]),
    "unknown sweep key": ('[sweep]\nnmae = "x"\n', ["sweep", "'nmae'", "allowed", "name"]),
    "bad mode": ('[sweep]\nmode = "paper"\n', ["sweep.mode", "'paper'", "calibrated, first-principles"]),
    "missing calibrated scalars": ('[sweep]\nmode = "calibrated"\n[fixed]\nc_prefill = 0.3\n', ["c_decode", "required in calibrated mode"]),
    "prompt without output": ('[fixed]\nprompt_tokens = 1000\n', ["prompt_tokens and output_tokens", "set both"]),
    "invalid TOML": ('[sweep\nmode = "calibrated"\n', ["not valid TOML"]),
}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("text, parts", BAD_TOML.values(), ids=BAD_TOML.keys())
def test_bad_config_exits_2_without_output(tmp_path, capsys, text, parts):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    out_file = tmp_path / "out" / "x.nc"
    code, out, err = _run(capsys, "sweep", cfg, "-o", out_file)
    assert code == 2
    assert err.startswith("frontier sweep: error: ") and "Traceback" not in err
    for part in parts:
        assert part in err, f"{part!r} missing from: {err}"
    assert not out_file.exists() and not out_file.parent.exists()


def test_missing_config_file(tmp_path, capsys):
    code, _, err = _run(capsys, "sweep", tmp_path / "nope.toml", "-o", tmp_path / "x.nc")
    assert code == 2 and "nope.toml" in err and "does not exist" in err
    assert list(tmp_path.iterdir()) == []


def test_config_path_is_a_directory(tmp_path, capsys):
    code, _, err = _run(capsys, "sweep", tmp_path, "-o", tmp_path / "x.nc")
    assert code == 2 and "is not a file" in err and "Traceback" not in err


def test_unknown_subcommand_and_catalog_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["nonsense"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["catalog", "gpus"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_bad_config(tmp_path):
    exe = Path(sys.executable).with_name("frontier")
    assert exe.exists(), "the console script is installed with the package ([project.scripts])"
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[fixed]\nalpha = 1.5\n")
    out_file = tmp_path / "x.nc"
    r = subprocess.run([str(exe), "sweep", str(cfg), "-o", str(out_file)], capture_output=True, text=True,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "frontier sweep: error: fixed.alpha: 1.5 is out of range; allowed: " + INPUTS["alpha"].allowed()
    assert not out_file.exists()


# --- good paths ----------------------------------------------------------------------------


def test_catalog_hardware_prints_names(capsys):
    code, out, _ = _run(capsys, "catalog", "hardware")
    assert code == 0
    for name in catalog.names("hardware"):
        assert name in out
    assert "source" not in out.splitlines()[0]  # sources only with --all
    code, out, _ = _run(capsys, "catalog", "hardware", "--all")
    assert code == 0 and "source" in out.splitlines()[0] and "datasheet" in out


@pytest.mark.parametrize("kind", ["models", "interconnects", "slo"])
def test_catalog_lists(capsys, kind):
    code, out, _ = _run(capsys, "catalog", kind)
    assert code == 0
    for name in catalog.names(kind):
        assert name in out


def test_params_lists_every_input(capsys):
    code, out, _ = _run(capsys, "params")
    assert code == 0
    words = out.split()
    for name, var in INPUTS.items():
        assert name in words, name
    for name in CATEGORICAL:
        assert name in words, name
    assert "USD/GPU-h" in out and "GB/s" in out


def test_sweep_paper_breakeven_writes_labeled_netcdf(tmp_path, capsys):
    out_file = tmp_path / "tmp.nc"
    code, _, err = _run(capsys, "sweep", PAPER, "-o", out_file)
    assert code == 0, err
    assert f"wrote {out_file}" in err and "11,232 points" in err
    with xr.open_dataset(out_file) as ds:
        assert dict(ds.sizes) == {"alpha": 78, "kv_bandwidth_gbps": 48, "slo": 3}
        for name in ("cpm_pd", "cpm_co", "delta_cpm", "tau_kv", "sigma_co", "c_prefill", "c_decode", "t_kv",
                     "kv_bytes_per_request"):
            assert name in ds, name
            assert ds[name].attrs.get("units"), name
            assert ds[name].attrs.get("long_name"), name
        assert ds["t_kv"].attrs["units"] == "ms" and ds["cpm_pd"].attrs["units"] == "USD/Mtok"
        assert ds["kv_bytes_per_request"].attrs["units"] == "B"
        assert ds.attrs["mode"] == "calibrated" and "paper_breakeven" in ds.attrs["history"]
        # MODEL.md §8: t_KV of 1156 prompt tokens (alpha 0.85 of 1360) at 25 GB/s
        t = ds["t_kv"].sel(alpha=0.85, method="nearest").isel(kv_bandwidth_gbps=0, slo=0).item()
        assert t == pytest.approx(327_680 * 0.85 * 1360 / 25e9 * 1e3, rel=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == ["tmp.nc"]  # no temporary file left
