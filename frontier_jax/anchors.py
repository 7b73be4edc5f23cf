"""Published anchors: load and validate files in the format of ``data/anchors.csv``.

An anchor is one comparison a cited paper reported under its own conditions (model, GPU,
GPUs per instance, prompt/output lengths, SLO, attainment): the ratio of SLO-compliant
goodput per GPU of a system (``arch``) over its baseline (``baseline_arch``), as a number
(``value``) or an interval (``value_low``..``value_high``). MODEL.md §7a.

Validation happens here, in plain Python, before anything is traced:

- a missing required column, an unknown model or GPU name, a negative number, a
  duplicated ``anchor_id`` or an unknown ``use``/``arch``/``tpot_kind`` raise
  :class:`AnchorError` (a ``ValueError``) naming the file, the row and the column;
- a row the model cannot predict (no absolute SLO, a metric that is not a goodput
  ratio, two GPU types, an unknown model) is kept with ``predictable = False`` and the
  missing feature named in ``reason``; a ``use = fit`` row must be predictable.

Edge units as in the CSV: tokens, GB/s, ms. An empty cell means unknown, never zero.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import catalog

REQUIRED = (
    "anchor_id", "system", "arch", "baseline_arch", "model", "gpu", "gpus_per_instance",
    "prompt_tokens", "output_tokens", "kv_bandwidth_gbps", "ttft_slo_ms", "tpot_slo_ms",
    "tpot_kind", "attainment", "metric", "value", "value_low", "value_high", "use",
)
"""Columns a file must have (others, such as ``notes`` and ``source``, are kept as text)."""

NUMERIC = (
    "gpus_per_instance", "prompt_tokens", "output_tokens", "kv_bandwidth_gbps", "ttft_slo_ms",
    "tpot_slo_ms", "attainment", "value", "value_low", "value_high",
)

ARCH_CODES = {"pd": 0, "chunked": 1, "co": 1, "cb": 2}
"""Architecture labels of the file -> output suffix index (0 goodput_pd, 1 goodput_co, 2 goodput_cb)."""

GOODPUT_METRICS = (
    "goodput_per_gpu_ratio", "capacity_ratio", "requests_served_ratio",
    "throughput_ratio_iso_cost", "throughput_ratio",
)
"""Metrics that are a ratio of SLO-compliant goodput per GPU at one GPU type (MODEL.md §7a)."""

USES = ("fit", "context")
TPOT_KINDS = ("mean", "tbt")

TP_SEARCH_SYSTEMS = {
    "DistServe": "DistServe searches its prefill/decode parallelism (placement search, DistServe §4)",
}
"""Systems whose prediction takes the best tp_prefill, tp_decode in {1, 2, 4, 8} within
the anchor's GPUs per instance (MODEL.md §7a)."""


class AnchorError(ValueError):
    """An anchors file that cannot be read; the message names the file, row and column."""


@dataclass(frozen=True)
class Anchor:
    """One validated row.

    Attributes
    ----------
    anchor_id, system, arch, baseline_arch, model, gpu, metric, use : str
        As in the file (``arch``/``baseline_arch``: pd, chunked or cb).
    gpus : float
        GPUs per instance [GPUs] (NaN when unknown).
    prompt_tokens, output_tokens : float
        Mean (or median, see ``lengths_are``) lengths [tokens].
    kv_bandwidth_gbps : float
        Prefill->decode bandwidth per instance pair [GB/s]; NaN where no transfer happens.
    ttft_slo_ms, tpot_slo_ms : float
        Contracts [ms]; ``tpot_kind`` is 'mean' or 'tbt'; ``attainment`` the quantile [1].
    value : float
        Reported ratio [1], NaN for an interval.
    low, high : float
        Reported interval [1], NaN for a point value.
    predictable : bool
        Whether the model can predict the row; ``reason`` names the missing feature if not.
    tp_search : bool
        Whether the prediction searches tp_prefill/tp_decode (DistServe's placement search).
    row : dict
        The raw row (text), for reports.
    """

    anchor_id: str
    system: str
    arch: str
    baseline_arch: str
    model: str
    gpu: str
    gpus: float
    prompt_tokens: float
    output_tokens: float
    kv_bandwidth_gbps: float
    ttft_slo_ms: float
    tpot_slo_ms: float
    tpot_kind: str
    attainment: float
    metric: str
    value: float
    low: float
    high: float
    use: str
    predictable: bool
    reason: str
    tp_search: bool
    row: dict

    @property
    def is_interval(self) -> bool:
        """Whether the reported number is an interval [low, high]."""
        return math.isnan(self.value)

    @property
    def reported(self):
        """The reported number, or [low, high] for an interval (JSON form)."""
        return [self.low, self.high] if self.is_interval else self.value

    def reported_text(self) -> str:
        """The reported number as text, e.g. '5.7' or '2.0-4.6'."""
        if self.is_interval:
            if math.isnan(self.low):
                return ""
            return f"{self.low:g}-{self.high:g}"
        return "" if math.isnan(self.value) else f"{self.value:g}"


def default_path() -> Path:
    """The packaged ``data/anchors.csv``."""
    return Path(str(resources.files("frontier_jax").joinpath("data", "anchors.csv")))


def _number(text: str):
    """float, NaN for an empty cell, or None when the text is not a number."""
    t = text.strip()
    if t == "":
        return math.nan
    try:
        return float(t)
    except ValueError:
        return None


def _names(kind: str, text: str, where: str) -> list:
    """Catalog names in a cell ('' -> [], 'A / B' -> [A, B]); unknown names raise."""
    t = text.strip()
    if not t:
        return []
    parts = [s.strip() for s in t.split(" / ")]
    valid = catalog.names(kind)
    for s in parts:
        if s not in valid:
            raise AnchorError(f"{where}: {s!r} is not a known {'GPU' if kind == 'hardware' else 'model'}; "
                              f"valid names: {', '.join(valid)}")
    return parts


def load(path: str | Path | None = None) -> list[Anchor]:
    """Read and validate an anchors file (default: the packaged ``data/anchors.csv``).

    Raises
    ------
    AnchorError
        Missing columns, unknown names, negative or malformed numbers, duplicated ids,
        or a ``use = fit`` row the model cannot predict.
    """
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise AnchorError(f"anchors file {str(path)!r} {what}; give a CSV in the format of data/anchors.csv")
    text = path.read_text()
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise AnchorError(f"anchors file {str(path)!r}: missing columns {missing}; "
                          f"required: {', '.join(REQUIRED)}")
    out, seen = [], set()
    for i, raw in enumerate(reader, start=2):  # line numbers as an editor shows them
        row = {k: (v or "") for k, v in raw.items() if k is not None}
        if not any(v.strip() for v in row.values()):
            continue
        out.append(_row(row, f"{path.name} line {i}", seen))
    if not out:
        raise AnchorError(f"anchors file {str(path)!r} has no rows")
    return out


def _row(row: dict, where: str, seen: set) -> Anchor:
    aid = row["anchor_id"].strip()
    if not aid:
        raise AnchorError(f"{where}: anchor_id is empty")
    where = f"{where} ({aid})"
    if aid in seen:
        raise AnchorError(f"{where}: anchor_id {aid!r} appears more than once")
    seen.add(aid)
    use = row["use"].strip()
    if use not in USES:
        raise AnchorError(f"{where}: use {use!r} is not allowed; allowed: {', '.join(USES)}")
    reasons = []

    nums = {}
    for col in NUMERIC:
        v = _number(row[col])
        if v is None:
            # text such as '200 (A100) / 400 (H100)': a comparison across two conditions
            reasons.append(f"{col} is not one number ({row[col]!r})")
            v = math.nan
        elif v < 0:
            raise AnchorError(f"{where}: {col} = {v:g} is negative; allowed: a number >= 0 (or empty for unknown)")
        nums[col] = v

    models = _names("models", row["model"], f"{where}: model")
    gpus = _names("hardware", row["gpu"], f"{where}: gpu")
    for col in ("arch", "baseline_arch"):
        a = row[col].strip()
        if a and a not in ARCH_CODES:
            raise AnchorError(f"{where}: {col} {a!r} is not allowed; allowed: pd, chunked, cb (or empty)")
    kind = row["tpot_kind"].strip()
    if kind and kind not in TPOT_KINDS:
        raise AnchorError(f"{where}: tpot_kind {kind!r} is not allowed; allowed: mean, tbt (or empty)")
    att = nums["attainment"]
    if not math.isnan(att) and not 0 < att < 1:
        raise AnchorError(f"{where}: attainment = {att:g} is out of range; allowed: a number in (0, 1)")
    for col in ("value", "value_low", "value_high", "prompt_tokens", "output_tokens", "ttft_slo_ms",
                "tpot_slo_ms", "gpus_per_instance", "kv_bandwidth_gbps"):
        if nums[col] == 0:
            raise AnchorError(f"{where}: {col} = 0; allowed: a number > 0 (or empty for unknown)")
    g = nums["gpus_per_instance"]
    if not math.isnan(g) and (g != int(g) or g < 1):
        raise AnchorError(f"{where}: gpus_per_instance = {g:g}; allowed: a whole number >= 1")
    value, low, high = nums["value"], nums["value_low"], nums["value_high"]
    if not math.isnan(value) and not (math.isnan(low) and math.isnan(high)):
        raise AnchorError(f"{where}: give either value or value_low..value_high, not both")
    if math.isnan(low) != math.isnan(high):
        raise AnchorError(f"{where}: an interval needs both value_low and value_high")
    if not math.isnan(low) and low > high:
        raise AnchorError(f"{where}: value_low = {low:g} > value_high = {high:g}")

    # What the model needs (MODEL.md §7a); the first missing feature is named.
    metric = row["metric"].strip()
    if metric not in GOODPUT_METRICS:
        reasons.append(f"metric {metric!r} is not a ratio of goodput per GPU (allowed: {', '.join(GOODPUT_METRICS)})")
    if len(gpus) > 1:
        reasons.append("two GPU types (heterogeneous pools are not modelled)")
    elif not gpus:
        reasons.append("no GPU given")
    if len(models) != 1:
        reasons.append("no single model given")
    arch, base = row["arch"].strip(), row["baseline_arch"].strip()
    if not arch or not base:
        reasons.append("no system/baseline architecture pair")
    if math.isnan(value) and math.isnan(low):
        reasons.append("no reported number")
    missing_slo = [c for c in ("ttft_slo_ms", "tpot_slo_ms", "attainment") if math.isnan(nums[c])]
    if missing_slo or not kind:
        reasons.append("no absolute SLO contract (" + ", ".join(missing_slo + ([] if kind else ["tpot_kind"]))
                       + " empty; slowdown-style SLOs are not modelled)")
    for c in ("prompt_tokens", "output_tokens", "gpus_per_instance"):
        if math.isnan(nums[c]):
            reasons.append(f"{c} unknown")
    if "pd" in (arch, base) and math.isnan(nums["kv_bandwidth_gbps"]):
        reasons.append("kv_bandwidth_gbps empty for a disaggregated system")
    # de-duplicate while keeping order
    reasons = list(dict.fromkeys(reasons))
    predictable = not reasons
    if use == "fit" and not predictable:
        raise AnchorError(f"{where}: a use = fit row must be predictable; {'; '.join(reasons)}")
    return Anchor(
        anchor_id=aid, system=row["system"].strip(), arch=arch, baseline_arch=base,
        model=models[0] if len(models) == 1 else row["model"].strip(),
        gpu=gpus[0] if len(gpus) == 1 else row["gpu"].strip(),
        gpus=g, prompt_tokens=nums["prompt_tokens"], output_tokens=nums["output_tokens"],
        kv_bandwidth_gbps=nums["kv_bandwidth_gbps"], ttft_slo_ms=nums["ttft_slo_ms"],
        tpot_slo_ms=nums["tpot_slo_ms"], tpot_kind=kind, attainment=att, metric=metric,
        value=value, low=low, high=high, use=use, predictable=predictable,
        reason="; ".join(reasons), tp_search=row["system"].strip() in TP_SEARCH_SYSTEMS, row=dict(row),
    )
