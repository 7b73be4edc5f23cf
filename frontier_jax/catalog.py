"""Catalogs of hardware, models, interconnects, SLO contracts, traces, anchors and prices.

The CSVs in ``frontier_jax/data/`` are copies of the project's shared catalogs, source
column kept. ``load(kind)`` returns typed records (a frozen dataclass per row, fields
typed from the header); ``get(kind, name)`` looks one up and lists the valid names when
the name is unknown. ``input_values(kind, name)`` turns a row into the named inputs of
:mod:`frontier_jax.variables`, in edge units.
"""
from __future__ import annotations

import csv
import dataclasses
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path

FILES = {
    "hardware": ("hardware.csv", "gpu"),
    "models": ("models.csv", "model"),
    "interconnects": ("interconnects.csv", "link"),
    "slo": ("slo_contracts.csv", "name"),
    "traces": ("traces.csv", "trace"),
    "anchors": ("anchors.csv", "anchor_id"),
    "prices": ("prices.csv", None),
    "claims": ("paper_claims.csv", "claim_id"),
    "calibration": ("paper_calibration.csv", "slo"),
    "predictions": ("paper_predictions.csv", "prediction_id"),
}

# Columns kept as text even when they look numeric.
_TEXT = {"version", "paper", "kv_bandwidth_gbps", "value", "date", "gpus_per_instance", "paper_section"}


class CatalogError(ValueError):
    """An unknown catalog, name or malformed row."""


def _convert(col: str, raw: str):
    if col in _TEXT:
        return raw
    if raw == "":
        return math.nan  # empty means unknown, never zero (data/README.md)
    try:
        return float(raw)
    except ValueError:
        return raw


def read_rows(path: str | Path | None = None, kind: str | None = None) -> list[dict]:
    """Rows of a catalog CSV as dicts of converted values (empty cell -> NaN)."""
    if path is None:
        fname = FILES[kind][0]
        text = resources.files("frontier_jax").joinpath("data", fname).read_text()
    else:
        text = Path(path).read_text()
    reader = csv.DictReader(text.splitlines())
    return [{k: _convert(k, v or "") for k, v in row.items()} for row in reader]


@lru_cache(maxsize=None)
def _record_type(kind: str, columns: tuple[str, ...]):
    return dataclasses.make_dataclass(
        kind.capitalize() + "Record", [(c, object) for c in columns], frozen=True
    )


@lru_cache(maxsize=None)
def load(kind: str) -> tuple:
    """All rows of a catalog as typed, frozen records."""
    if kind not in FILES:
        raise CatalogError(f"unknown catalog {kind!r}; valid catalogs: {', '.join(FILES)}")
    rows = read_rows(kind=kind)
    cols = tuple(rows[0].keys()) if rows else ()
    rec = _record_type(kind, cols)
    return tuple(rec(**r) for r in rows)


def names(kind: str) -> list[str]:
    """Valid names (first key column) of a catalog."""
    key = FILES[kind][1]
    return [getattr(r, key) for r in load(kind)]


def get(kind: str, name: str):
    """One record by name; an unknown name raises with the list of valid names."""
    key = FILES[kind][1]
    for r in load(kind):
        if getattr(r, key) == name:
            return r
    raise CatalogError(
        f"{name!r} is not a known {kind} entry; valid names: {', '.join(names(kind))}"
    )


def _nan_to_none(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def input_values(kind: str, name: str) -> dict[str, float | None]:
    """The named inputs (edge units) that one catalog row provides.

    hardware -> peak_tflops, hbm_tb_s, hbm_gb, price_usd_per_gpu_hr, scaleup_gb_s;
    models -> params_b, active_params_b, layers, attention_layers, hidden, kv_heads,
    head_dim, state_bytes_per_seq; interconnects -> link_gb_s; slo -> ttft_slo_ms,
    tpot_slo_ms, tpot_kind (0 mean, 1 tbt), attainment, and the paper's calibrated
    sigma_co_loss where ``paper_calibration.csv`` has one. A value the catalog does not
    know (an empty cell) is None.
    """
    r = get(kind, name)
    if kind == "hardware":
        out = {
            "peak_tflops": r.bf16_dense_tflops,
            "hbm_tb_s": r.hbm_tb_s,
            "hbm_gb": r.hbm_gb,
            "price_usd_per_gpu_hr": r.default_price_usd_per_gpu_hr,
            "scaleup_gb_s": r.scaleup_gb_s_per_dir,
        }
    elif kind == "models":
        out = {
            "params_b": r.params_b,
            "active_params_b": r.active_params_b,
            "layers": r.layers,
            "attention_layers": r.attention_layers,
            "hidden": r.hidden,
            "kv_heads": r.kv_heads,
            "head_dim": r.head_dim,
            "state_bytes_per_seq": r.state_bytes_per_seq,
        }
    elif kind == "interconnects":
        out = {"link_gb_s": r.gb_s_per_direction}
    elif kind == "slo":
        out = {
            "ttft_slo_ms": r.ttft_ms,
            "tpot_slo_ms": r.tpot_ms,
            "tpot_kind": {"mean": 0.0, "tbt": 1.0}[r.tpot_kind],
            "attainment": r.attainment,
        }
        cal = {c.slo: c for c in load("calibration")}
        if name in cal:
            out["sigma_co_loss"] = cal[name].sigma_co_loss
    else:
        raise CatalogError(f"catalog {kind!r} does not provide model inputs")
    return {k: _nan_to_none(v) for k, v in out.items()}
