"""The one registry of variables: every input and output of MODEL.md §2.

Each input maps its interface name (config key, CLI name, Dataset dim) to the unit humans
use at the edge, the factor to SI, the valid range (in edge units), the default and a
one-line description. Config validation, the CLI's ``frontier params`` help and the netCDF
attributes are all generated from this table; nothing else in the package spells a unit.

Internally everything is SI (MODEL.md §1): seconds, bytes, FLOP, FLOP/s, B/s, USD,
USD per GPU-second, requests per second.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

INF = math.inf


@dataclass(frozen=True)
class Input:
    """One input parameter.

    Attributes
    ----------
    name : str
        Interface name (config key, Dataset dim).
    unit : str
        Unit at the edge (config, CLI, plots, Dataset coordinates).
    si : float
        Multiply an edge value by this to get SI.
    lo, hi : float
        Valid range in edge units; ``lo_open``/``hi_open`` make the ends exclusive.
    default : float or None
        Default in edge units; None means "not set" (derived or optional).
    doc : str
        One line: what it is, and where a default comes from.
    choices : tuple of str
        For categorical-coded inputs (e.g. ``tpot_kind``): labels coded 0, 1, ...
    integer : bool
        Whether only whole numbers are allowed.
    auto : bool
        Whether the string ``"auto"`` is accepted (coded as 0).
    """

    name: str
    unit: str
    si: float
    lo: float
    hi: float
    default: float | None
    doc: str
    group: str
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    integer: bool = False
    auto: bool = False

    def allowed(self) -> str:
        """Human description of the allowed values [str]."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        kind = "a whole number" if self.integer else "a number"
        unit = "" if self.unit in ("", "1") else f" {self.unit}"
        text = f"{kind} in {left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}{unit}"
        if self.auto:
            text += ' or "auto"'
        return text

    def in_range(self, v: float) -> bool:
        """Whether an edge-unit value lies in the valid range."""
        if math.isnan(v):
            return False
        lo_ok = v > self.lo if self.lo_open else v >= self.lo
        hi_ok = v < self.hi if self.hi_open else v <= self.hi
        if self.integer and math.isfinite(v) and v != int(v):
            return False
        return lo_ok and hi_ok


def _fmt(x: float) -> str:
    if x == INF:
        return "inf"
    if x == -INF:
        return "-inf"
    return f"{x:g}"


@dataclass(frozen=True)
class Output:
    """One output variable: SI value times ``scale`` is stored with ``units``."""

    name: str
    units: str
    scale: float
    long_name: str
    kind: str = "float"  # float | int | bool | flags


def _inputs() -> list[Input]:
    I = Input
    return [
        # workload
        I("alpha", "1", 1.0, 0.0, 1.0, 0.85, "prefill share P/(P+D); default: the Azure 2023 conversation trace (0.845)", "workload", lo_open=True, hi_open=True),
        I("request_tokens", "tokens", 1.0, 1.0, 1e7, 1360.0, "served tokens per request T = P + D; default: Azure conversation means 1154.7 + 211.1 rounded", "workload"),
        I("prompt_tokens", "tokens", 1.0, 0.0, 1e7, None, "input tokens P; with output_tokens, replaces alpha and request_tokens", "workload", lo_open=True),
        I("output_tokens", "tokens", 1.0, 0.0, 1e7, None, "output tokens D; with prompt_tokens, replaces alpha and request_tokens", "workload", lo_open=True),
        # load
        I("arrival_rate", "req/s", 1.0, 0.0, INF, INF, "offered rate to the whole deployment; inf = fluid pools (MODEL.md §7)", "load", lo_open=True),
        I("hybrid_fraction", "1", 1.0, 0.0, 1.0, 0.0, "share of traffic routed through the disaggregated path in the hybrid of paper §7.4", "load"),
        # SLO
        I("ttft_slo_ms", "ms", 1e-3, 0.0, 1e8, 500.0, "TTFT contract at the attainment quantile; default: the paper's middle bin", "slo", lo_open=True),
        I("tpot_slo_ms", "ms", 1e-3, 0.0, 1e7, 50.0, "TPOT contract at the attainment quantile; default: the paper's middle bin", "slo", lo_open=True),
        I("tpot_kind", "", 1.0, 0.0, 1.0, 0.0, "what TPOT means: 'mean' per-request mean time per output token (DistServe), 'tbt' per-gap time between tokens (Sarathi, Mooncake)", "slo", choices=("mean", "tbt")),
        I("attainment", "1", 1.0, 0.0, 1.0, 0.99, "q, the fraction of requests (or gaps) that must meet the contract", "slo", lo_open=True, hi_open=True),
        # hardware
        I("peak_tflops", "TFLOPS", 1e12, 0.0, 1e6, 989.4, "dense peak per GPU at the weight precision; default: H100 SXM BF16", "hardware", lo_open=True),
        I("hbm_tb_s", "TB/s", 1e12, 0.0, 1e4, 3.35, "HBM bandwidth per GPU; default: H100 SXM", "hardware", lo_open=True),
        I("hbm_gb", "GB", 1e9, 0.0, 1e5, 80.0, "HBM capacity per GPU; default: H100 SXM", "hardware", lo_open=True),
        I("price_usd_per_gpu_hr", "USD/GPU-h", 1.0 / 3600.0, 0.0, 1e4, 4.916, "price of one GPU-hour; default: AWS capacity block p5 (hardware.csv)", "hardware", lo_open=True),
        I("scaleup_gb_s", "GB/s", 1e9, 0.0, 1e6, 450.0, "scale-up (NVLink) bandwidth per GPU per direction, used by tensor-parallel all-reduces; default: NVLink 4", "hardware", lo_open=True),
        # efficiency
        I("mfu", "1", 1.0, 0.0, 1.0, 0.6, "achieved fraction of peak FLOPS, u_F; default: H100 prefill profiles of Llama-2-70B reach ~65%", "efficiency", lo_open=True),
        I("mbu", "1", 1.0, 0.0, 1.0, 0.8, "achieved fraction of HBM bandwidth, u_W; default: public simulators use 0.8, profiles ~82%", "efficiency", lo_open=True),
        I("step_overhead_ms", "ms", 1e-3, 0.0, 1e4, 0.0, "fixed overhead t_0 per forward pass (scheduler, launch)", "efficiency"),
        # parallelism
        I("tp_prefill", "GPUs", 1.0, 1.0, 1024.0, None, "GPUs per prefill instance N_p; auto: smallest power of two with weights <= half the usable memory", "parallelism", integer=True, auto=True),
        I("tp_decode", "GPUs", 1.0, 1.0, 1024.0, None, "GPUs per decode instance N_d; auto as tp_prefill", "parallelism", integer=True, auto=True),
        I("tp_colocated", "GPUs", 1.0, 1.0, 1024.0, None, "GPUs per colocated instance N_c; auto as tp_prefill", "parallelism", integer=True, auto=True),
        # model
        I("params_b", "1e9 params", 1e9, 0.0, 1e5, 68.98, "total parameters (weight bytes); default: Llama-2-70B", "model", lo_open=True),
        I("active_params_b", "1e9 params", 1e9, 0.0, 1e5, 68.98, "active parameters per token (FLOPs; MoE < total)", "model", lo_open=True),
        I("layers", "layers", 1.0, 1.0, 1e4, 80.0, "transformer layers L (all-reduces per pass)", "model", integer=True),
        I("attention_layers", "layers", 1.0, 0.0, 1e4, 80.0, "layers that carry KV, L_attn (< layers for a hybrid)", "model", integer=True),
        I("hidden", "1", 1.0, 1.0, 1e6, 8192.0, "model width d_m", "model", integer=True),
        I("kv_heads", "1", 1.0, 1.0, 1e4, 8.0, "key/value heads h_kv after GQA", "model", integer=True),
        I("head_dim", "1", 1.0, 1.0, 1e5, 128.0, "head dimension d", "model", integer=True),
        I("state_bytes_per_seq", "B", 1.0, 0.0, 1e12, 0.0, "constant per-sequence state of a hybrid's non-attention layers", "model"),
        I("weight_bytes", "B", 1.0, 0.0, 8.0, 2.0, "bytes per weight element b_w; default BF16", "model", lo_open=True),
        I("kv_bytes", "B", 1.0, 0.0, 8.0, 2.0, "bytes per KV element b_kv; default BF16 (1 = FP8)", "model", lo_open=True),
        # transfer
        I("kv_bandwidth_gbps", "GB/s", 1e9, 0.0, 1e6, 450.0, "KV bandwidth B per prefill->decode instance pair; default: one NVLink 4 direction", "transfer", lo_open=True),
        I("link_gb_s", "GB/s", 1e9, 0.0, 1e6, None, "per-GPU link rate of an interconnect; when set, B = link_gb_s * min(N_p, N_d)", "transfer", lo_open=True),
        I("eta", "1", 1.0, 0.0, 1.0, 0.5, "share of the KV transfer hidden behind decode; default: paper §6.2", "transfer"),
        I("max_link_utilization", "1", 1.0, 0.0, 0.99, 0.8, "highest utilization of a prefill->decode link", "transfer", lo_open=True),
        # colocation and communication
        I("kappa", "1", 1.0, 0.0, 10.0, 0.0, "extra time of a mixed prefill+decode pass, as a fraction; default 0: no evidence yet", "colocation"),
        I("allreduce_latency_us", "us", 1e-6, 0.0, 1e6, 10.0, "latency of one tensor-parallel all-reduce a_ar; default: a small NVLink all-reduce", "communication"),
        # scheduler
        I("max_batch", "sequences", 1.0, 1.0, 1e7, 256.0, "scheduler cap on running sequences b_max; default: vLLM max_num_seqs", "scheduler"),
        I("memory_fraction", "1", 1.0, 0.0, 1.0, 0.9, "usable fraction of HBM m_f; default: vLLM gpu_memory_utilization", "scheduler", lo_open=True),
        # calibrated mode (paper §3 scalars)
        I("c_prefill", "USD/Mtok", 1.0, 0.0, 1e6, None, "calibrated mode: cost per 1e6 prefill tokens", "calibrated"),
        I("c_decode", "USD/Mtok", 1.0, 0.0, 1e6, None, "calibrated mode: cost per 1e6 decode tokens", "calibrated"),
        I("sigma_co", "USD/Mtok", 1.0, -1e6, 1e6, None, "calibrated mode: colocation slack per 1e6 served tokens", "calibrated"),
        I("sigma_co_loss", "1", 1.0, 0.0, 1.0, None, "calibrated mode: colocation slack as a capacity loss l; sigma_co = l/(1-l) * (alpha c_prefill + (1-alpha) c_decode)", "calibrated", hi_open=True),
        I("decode_batch", "sequences", 1.0, 0.0, 1e7, None, "calibrated mode: realized decode batch b_dec", "calibrated", lo_open=True),
    ]


INPUTS: dict[str, Input] = {v.name: v for v in _inputs()}

# Catalog-valued (label) parameters: which catalog they name and which numeric inputs
# each row provides (catalog column -> input name, with the conversion to edge units).
CATEGORICAL = {
    "hardware": "hardware",
    "model": "models",
    "interconnect": "interconnects",
    "slo": "slo",
}

MODES = ("calibrated", "first-principles")


def _outputs() -> list[Output]:
    O = Output
    ms = 1e3
    per_m = 1.0  # cost outputs are computed directly in USD per 1e6 tokens
    out = [
        O("prompt_tokens", "tokens", 1.0, "input tokens per request P"),
        O("output_tokens", "tokens", 1.0, "output tokens per request D"),
        O("kv_bytes_per_request", "B", 1.0, "KV (plus state) bytes moved prefill -> decode per request"),
        O("t_kv", "ms", ms, "KV transfer time per request over the pair bandwidth"),
        O("c_prefill", "USD/Mtok", per_m, "prefill cost per 1e6 prefill tokens (phases isolated)"),
        O("c_decode", "USD/Mtok", per_m, "decode cost per 1e6 decode tokens (phases isolated)"),
        O("tau_kv", "USD/Mtok", per_m, "KV-transfer tax per 1e6 served tokens"),
        O("sigma_co", "USD/Mtok", per_m, "colocation slack per 1e6 served tokens (chunked prefill)"),
        O("cpm_pd", "USD/Mtok", per_m, "cost per 1e6 SLO-compliant served tokens, disaggregated"),
        O("cpm_co", "USD/Mtok", per_m, "cost per 1e6 SLO-compliant served tokens, colocated chunked prefill"),
        O("cpm_cb", "USD/Mtok", per_m, "cost per 1e6 SLO-compliant served tokens, colocated continuous batching"),
        O("delta_cpm", "USD/Mtok", per_m, "CPM_co - CPM_PD (> 0: disaggregation cheaper)"),
        O("delta_cpm_best_co", "USD/Mtok", per_m, "min(CPM_co, CPM_cb) - CPM_PD against the cheaper colocated option"),
        O("best_arch", "1", 1.0, "cheapest feasible architecture (0 pd, 1 co, 2 cb; -1 none)", "int"),
        O("cpm_hybrid", "USD/Mtok", per_m, "CPM of the hybrid routing hybrid_fraction of traffic through pd, the rest through co"),
    ]
    for a, what in (("pd", "disaggregated"), ("co", "chunked prefill"), ("cb", "continuous batching")):
        out += [
            O(f"ttft_{a}", "ms", ms, f"TTFT at the attainment quantile, {what}"),
            O(f"tpot_{a}", "ms", ms, f"TPOT at the attainment quantile (of the contract's kind), {what}"),
            O(f"goodput_{a}", "tokens/s/GPU", 1.0, f"SLO-compliant served tokens per second per GPU, {what}"),
            O(f"batch_{a}", "sequences", 1.0, f"running batch at the operating point, {what}"),
            O(f"t_prefill_{a}", "ms", ms, f"prefill pass time of one prompt, {what}"),
            O(f"t_step_{a}", "ms", ms, f"iteration time at the operating point, {what}"),
            O(f"feasible_{a}", "1", 1.0, f"whether the contract is attainable, {what}", "bool"),
            O(f"status_{a}", "1", 1.0, f"status bit flags, {what}", "flags"),
            O(f"cpm_output_{a}", "USD/Mtok_out", per_m, f"cost per 1e6 output tokens, {what}"),
            O(f"instances_{a}", "instances", 1.0, f"whole instances at the offered rate (NaN when fluid), {what}"),
        ]
    out += [
        O("chunk_co", "tokens", 1.0, "prefill chunk per busy iteration chi, chunked prefill"),
        O("rho_co", "1", 1.0, "share of iterations carrying a chunk rho_c, chunked prefill"),
        O("rho_pd", "1", 1.0, "prefill instance utilization, disaggregated"),
        O("link_utilization", "1", 1.0, "utilization of the prefill->decode link"),
    ]
    return out


OUTPUTS: dict[str, Output] = {o.name: o for o in _outputs()}

# Status bits (CF flag_masks / flag_meanings), MODEL.md §5 and STYLE.md.
STATUS_BITS = {
    "ttft_unattainable": 1,
    "tpot_unattainable": 2,
    "out_of_memory": 4,
    "link_bound": 8,
    "utilization_capped": 16,
    "term_undefined": 32,
}

ARCHS = ("pd", "co", "cb")
