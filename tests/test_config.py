"""Config validation (TOML -> Spec) in plain Python, before anything is traced.

Every bad config raises :class:`ConfigError` whose message names the field and says what
is allowed (STYLE.md "Numbers and failures"); the good paths convert edge units once.
"""
import math

import numpy as np
import pytest

from frontier_jax import catalog, config
from frontier_jax.config import ConfigError
from frontier_jax.variables import CATEGORICAL, INPUTS

CALIBRATED = {"c_prefill": 0.33, "c_decode": 0.91, "decode_batch": 128, "sigma_co": 0.05}

# (raw config, substrings the message must contain: the field, then what is allowed)
BAD = {
    "unknown parameter": ({"fixed": {"alpah": 0.5}}, ["fixed.alpah", "unknown parameter", "did you mean 'alpha'", "frontier params"]),
    "unknown axis parameter": ({"axes": {"kv_bandwith_gbps": [1, 2]}}, ["axes.kv_bandwith_gbps", "did you mean 'kv_bandwidth_gbps'"]),
    "out of range": ({"fixed": {"alpha": 1.5}}, ["fixed.alpha", "1.5", "out of range", "(0, 1)"]),
    "out of range on an axis": ({"axes": {"eta": [0.5, 1.2]}}, ["axes.eta[1]", "out of range", "[0, 1]"]),
    "negative bandwidth": ({"fixed": {"kv_bandwidth_gbps": -5}}, ["fixed.kv_bandwidth_gbps", "out of range", "(0, 1e+06] GB/s"]),
    "not a whole number": ({"fixed": {"tp_decode": 2.5}}, ["fixed.tp_decode", "whole number", '"auto"']),
    "wrong unit": ({"fixed": {"ttft_slo_ms": "5 GB"}}, ["fixed.ttft_slo_ms", "unit 'GB' is not allowed", "'ms'", "s, us"]),
    "wrong unit in a range": ({"axes": {"kv_bandwidth_gbps": {"start": 1, "stop": 9, "num": 3, "unit": "ms"}}},
                              ["axes.kv_bandwidth_gbps.start", "unit 'ms'", "'GB/s'"]),
    "not a number": ({"fixed": {"tpot_slo_ms": "fast"}}, ["fixed.tpot_slo_ms", "expected a number in ms", "'fast'"]),
    "bool is not a number": ({"fixed": {"eta": True}}, ["fixed.eta", "expected a number"]),
    "bad choice": ({"fixed": {"tpot_kind": "p99"}}, ["fixed.tpot_kind", "'p99'", "'mean', 'tbt'"]),
    "unknown hardware": ({"fixed": {"hardware": "H100"}}, ["fixed.hardware", "'H100'", "valid names", "H100-SXM5-80GB"]),
    "unknown slo on an axis": ({"axes": {"slo": ["paper-mid", "tight"]}}, ["axes.slo[1]", "'tight'", "valid names", "paper-tight"]),
    "catalog name not a string": ({"fixed": {"model": 70}}, ["fixed.model", "catalog name"]),
    "empty axis": ({"axes": {"alpha": []}}, ["axes.alpha", "empty", "at least one value"]),
    "duplicated axis values": ({"axes": {"alpha": [0.5, 0.7, 0.5]}}, ["axes.alpha", "0.5", "more than once", "distinct"]),
    "duplicated after unit conversion": ({"axes": {"tpot_slo_ms": [50, "0.05 s"]}}, ["axes.tpot_slo_ms", "more than once"]),
    "duplicated catalog labels": ({"axes": {"slo": ["paper-mid", "paper-mid"]}}, ["axes.slo", "'paper-mid'", "more than once"]),
    "axis and fixed": ({"axes": {"alpha": [0.5]}, "fixed": {"alpha": 0.5}}, ["alpha", "both as an axis and as fixed", "choose one"]),
    "unknown sweep key": ({"sweep": {"modee": "calibrated"}}, ["sweep", "'modee'", "allowed", "mode", "minimize"]),
    "unknown table": ({"fixd": {}}, ["'fixd'", "[sweep], [axes], [fixed]"]),
    "table not a table": ({"fixed": 3}, ["fixed", "expected a table"]),
    "bad mode": ({"sweep": {"mode": "fast"}}, ["sweep.mode", "'fast'", "calibrated, first-principles"]),
    "bad dtype": ({"sweep": {"dtype": "float16"}}, ["sweep.dtype", "float32, float64"]),
    "minimize a non-axis": ({"sweep": {"minimize": "tp_decode"}, "axes": {"alpha": [0.5]}}, ["sweep.minimize", "'tp_decode'", "axes: alpha"]),
    "minimize not a name": ({"sweep": {"minimize": 3}}, ["sweep.minimize", "axis name"]),
    "calibrated without c_prefill": ({"sweep": {"mode": "calibrated"}, "fixed": {"c_decode": 0.9, "decode_batch": 128, "sigma_co": 0}},
                                     ["c_prefill", "required in calibrated mode", "USD/Mtok"]),
    "calibrated without decode_batch": ({"sweep": {"mode": "calibrated"}, "fixed": {"c_prefill": 0.3, "c_decode": 0.9, "sigma_co": 0}},
                                        ["decode_batch", "required in calibrated mode", "sequences"]),
    "calibrated without sigma_co": ({"sweep": {"mode": "calibrated"}, "fixed": {"c_prefill": 0.3, "c_decode": 0.9, "decode_batch": 128}},
                                    ["sigma_co", "required in calibrated mode", "sigma_co_loss", "paper-mid"]),
    "prompt without output": ({"fixed": {"prompt_tokens": 1000}}, ["prompt_tokens and output_tokens", "set both, or neither"]),
    "output without prompt": ({"axes": {"output_tokens": [100, 200]}}, ["prompt_tokens and output_tokens", "set both"]),
    "alpha axis with explicit lengths": ({"axes": {"alpha": [0.5, 0.6]}, "fixed": {"prompt_tokens": 100, "output_tokens": 10}},
                                         ["alpha", "cannot be set when prompt_tokens and output_tokens", "alpha + request_tokens"]),
    "fixed alpha with explicit lengths": ({"fixed": {"request_tokens": 500, "prompt_tokens": 100, "output_tokens": 10}},
                                          ["request_tokens", "cannot be set when prompt_tokens"]),
    "bandwidth with an interconnect": ({"axes": {"kv_bandwidth_gbps": [25, 50]}, "fixed": {"interconnect": "InfiniBand NDR"}},
                                       ["kv_bandwidth_gbps", "interconnect", "choose one"]),
    "range without num": ({"axes": {"alpha": {"start": 0.1, "stop": 0.9}}}, ["axes.alpha", "start, stop and num", "'num' is missing"]),
    "range with zero points": ({"axes": {"alpha": {"start": 0.1, "stop": 0.9, "num": 0}}}, ["axes.alpha.num", "whole number >= 1"]),
    "range with an unknown key": ({"axes": {"alpha": {"start": 0.1, "stop": 0.9, "num": 3, "step": 1}}}, ["axes.alpha", "'step'", "start, stop, num, log, unit"]),
    "log range through zero": ({"axes": {"kv_bandwidth_gbps": {"start": 0, "stop": 900, "num": 3, "log": True}}}, ["axes.kv_bandwidth_gbps", "log range", "> 0"]),
    "list in fixed": ({"fixed": {"alpha": [0.5]}}, ["fixed.alpha", "single value", "[axes]"]),
    "axis not a list": ({"axes": {"alpha": 0.5}}, ["axes.alpha", "list of values or a range table"]),
    "hardware without a price": ({"fixed": {"hardware": "A800-SXM4-80GB"}}, ["price_usd_per_gpu_hr", "no value", "set price_usd_per_gpu_hr in [fixed]"]),
}


@pytest.mark.parametrize("raw, parts", BAD.values(), ids=BAD.keys())
def test_bad_config_names_field_and_allowed(raw, parts):
    with pytest.raises(ConfigError) as e:
        config.from_dict(raw)
    msg = str(e.value)
    for part in parts:
        assert part in msg, f"{part!r} missing from: {msg}"


def test_unknown_catalog_name_lists_every_valid_name():
    with pytest.raises(ConfigError) as e:
        config.from_dict({"fixed": {"model": "Llama-70B"}})
    for name in catalog.names("models"):
        assert name in str(e.value)


def test_invalid_toml():
    with pytest.raises(ConfigError, match=r"cfg\.toml: not valid TOML.*line 2"):
        config.parse("[sweep]\nmode = = 'calibrated'\n", source="cfg.toml")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is not a file"):
        config.load(tmp_path)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --- good paths ------------------------------------------------------------------------------


def test_defaults_and_catalog_rows_in_edge_units():
    spec = config.from_dict({"fixed": {"model": "Llama-2-70B", "hardware": "H200-SXM-141GB"}})
    assert spec.mode == "first-principles" and spec.dims == [] and spec.size == 1
    f = spec.fixed
    # hardware.csv H200 row, models.csv Llama-2-70B row, registry defaults
    assert (f["hbm_gb"], f["hbm_tb_s"], f["price_usd_per_gpu_hr"]) == (141.0, 4.8, 5.408)
    assert (f["layers"], f["kv_heads"], f["head_dim"]) == (80.0, 8.0, 128.0)
    assert (f["mfu"], f["mbu"], f["eta"], f["memory_fraction"]) == (0.6, 0.8, 0.5, 0.9)
    assert f["tp_prefill"] == f["tp_decode"] == f["tp_colocated"] == 0.0  # "auto"
    assert math.isnan(f["c_prefill"]) and math.isnan(f["prompt_tokens"])
    assert spec.fixed_labels == {"model": "Llama-2-70B", "hardware": "H200-SXM-141GB"}


def test_every_input_has_a_default_or_is_optional():
    spec = config.from_dict({})
    assert set(spec.fixed) == set(INPUTS)


def test_log_range():
    spec = config.from_dict({"axes": {"kv_bandwidth_gbps": {"start": 25, "stop": 900, "num": 5, "log": True}}})
    (dim,) = spec.dims
    np.testing.assert_allclose(dim.coord, 25.0 * 36.0 ** (np.arange(5) / 4), rtol=1e-14)
    np.testing.assert_allclose(np.diff(np.log(dim.coord)), np.log(36.0) / 4, rtol=1e-12)
    assert spec.shape == (5,)


def test_linear_range_with_unit():
    spec = config.from_dict({"axes": {"ttft_slo_ms": {"start": 0.1, "stop": 0.5, "num": 5, "unit": "s"}}})
    np.testing.assert_allclose(spec.dims[0].params["ttft_slo_ms"], [100, 200, 300, 400, 500], rtol=1e-14)


def test_unit_strings_convert_to_edge_units():
    spec = config.from_dict(
        {
            "fixed": {"ttft_slo_ms": "0.5 s", "kv_bandwidth_gbps": "400 Gbps", "allreduce_latency_us": "0.02 ms"},
            "axes": {"tpot_slo_ms": ["0.03 s", 50, "80 ms"]},
        }
    )
    assert spec.fixed["ttft_slo_ms"] == 500.0
    assert spec.fixed["kv_bandwidth_gbps"] == 50.0  # 400 Gb/s = 50 GB/s
    assert spec.fixed["allreduce_latency_us"] == pytest.approx(20.0, rel=1e-14)
    np.testing.assert_allclose(spec.dims[0].coord, [30.0, 50.0, 80.0], rtol=1e-14)


def test_explicit_lengths_and_interconnect():
    spec = config.from_dict({"axes": {"prompt_tokens": [100, 1000]}, "fixed": {"output_tokens": 50, "interconnect": "InfiniBand NDR"}})
    assert spec.fixed["output_tokens"] == 50.0 and spec.fixed["link_gb_s"] == 50.0  # interconnects.csv
    np.testing.assert_array_equal(spec.dims[0].params["prompt_tokens"], [100.0, 1000.0])


def test_catalog_axis_carries_its_columns():
    spec = config.from_dict({"axes": {"slo": ["paper-tight", "mooncake-fast25"], "alpha": [0.5, 0.9]}})
    slo, alpha = spec.dims
    assert list(slo.coord) == ["paper-tight", "mooncake-fast25"] and spec.shape == (2, 2)
    # slo_contracts.csv rows; paper_calibration.csv gives paper-tight a capacity loss only
    np.testing.assert_array_equal(slo.params["ttft_slo_ms"], [200.0, 30000.0])
    np.testing.assert_array_equal(slo.params["tpot_kind"], [0.0, 1.0])
    assert slo.params["sigma_co_loss"][0] == 0.32 and math.isnan(slo.params["sigma_co_loss"][1])
    assert "ttft_slo_ms" not in spec.dims[1].params


def test_explicit_value_overrides_the_catalog_row():
    spec = config.from_dict({"axes": {"hardware": ["H100-SXM5-80GB", "H200-SXM-141GB"]}, "fixed": {"price_usd_per_gpu_hr": 2.0}})
    assert "price_usd_per_gpu_hr" not in spec.dims[0].params
    assert spec.fixed["price_usd_per_gpu_hr"] == 2.0
    np.testing.assert_array_equal(spec.dims[0].params["hbm_gb"], [80.0, 141.0])


def test_calibrated_sigma_from_the_slo_bin():
    raw = {"sweep": {"mode": "calibrated"}, "fixed": {"c_prefill": 0.3, "c_decode": 0.9, "decode_batch": 128, "slo": "paper-mid"}}
    assert config.from_dict(raw).fixed["sigma_co_loss"] == 0.15  # paper_calibration.csv
    raw["fixed"]["sigma_co"] = 0.2  # an explicit sigma_co overrides the bin's loss
    spec = config.from_dict(raw)
    assert spec.fixed["sigma_co"] == 0.2 and math.isnan(spec.fixed["sigma_co_loss"])


def test_paper_config_parses():
    spec = config.load("sweeps/paper_breakeven.toml")
    assert spec.mode == "calibrated" and spec.name == "paper_breakeven"
    assert spec.shape == (78, 48, 3)
    assert [d.name for d in spec.dims] == ["alpha", "kv_bandwidth_gbps", "slo"]
    assert spec.dims[1].coord[0] == pytest.approx(25.0) and spec.dims[1].coord[-1] == pytest.approx(900.0)
    assert len(spec.config_hash) == 16


def test_categorical_names_are_catalogs():
    for name, kind in CATEGORICAL.items():
        assert catalog.names(kind), name


def test_catalog_axis_columns_align_when_rows_differ():
    # Only the paper's SLO bins carry sigma_co_loss (paper_calibration.csv): every column of
    # a catalog dim has one value per label, NaN where the row has none.
    spec = config.from_dict({"axes": {"slo": ["mooncake-fast25", "paper-tight", "distserve-chat-opt13b"]}})
    (dim,) = spec.dims
    for k, v in dim.params.items():
        assert v.shape == (3,), k
    np.testing.assert_array_equal(dim.params["sigma_co_loss"], [np.nan, 0.32, np.nan])
    # calibrated mode then needs sigma_co for the bins without a loss
    with pytest.raises(ConfigError, match="sigma_co: required in calibrated mode"):
        config.from_dict({"sweep": {"mode": "calibrated"}, "axes": {"slo": ["mooncake-fast25", "paper-tight"]},
                          "fixed": {"c_prefill": 0.3, "c_decode": 0.9, "decode_batch": 128}})
