"""Predicting published anchors (MODEL.md §7a) in one compiled, batched evaluation.

Each anchor is predicted under its own conditions (model, GPU, GPUs per instance,
prompt/output lengths, TTFT/TPOT contract, ``tpot_kind``, attainment, KV bandwidth) as the
ratio of SLO-compliant goodput per GPU, system over baseline, each architecture at its
own best operating point with fluid pools (``arrival_rate = inf``, MODEL.md §5-§6)::

    predicted = goodput_<arch>(anchor) / goodput_<baseline_arch>(anchor)

with ``pd -> goodput_pd``, ``chunked -> goodput_co``, ``cb -> goodput_cb``. Every GPU of an
anchor has the same type and price, so price cancels: where the catalog has no price (the
A800) the prediction uses :data:`PLACEHOLDER_PRICE`, which changes no ratio.

GPUs per instance: every pool gets the anchor's ``gpus_per_instance``, except for
systems that searched their own parallelism (DistServe's placement search,
:data:`frontier_jax.anchors.TP_SEARCH_SYSTEMS`): there the disaggregated goodput is the
best over tp_prefill, tp_decode in {1, 2, 4, 8} up to the anchor's GPUs per instance
(MODEL.md §7a); the colocated baseline keeps the anchor's GPUs per instance.

Runtime: :func:`make_predictor` builds one ``jit`` of a ``vmap`` over a stacked batch of
anchors (and, inside, over the parallelism candidates), with the fitted parameters as a
separate argument; it returns the prediction and its Jacobian with respect to those
parameters (forward mode, ``jax.jacfwd``) so that a fit compiles once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from . import anchors as anchors_mod
from . import catalog, config
from .sweep import to_si

PLACEHOLDER_PRICE = 1.0
"""USD/GPU-h used where the catalog has no price; it cancels in every goodput ratio."""

TP_CHOICES = (1, 2, 4, 8)
"""Parallelism candidates of the placement search (MODEL.md §7a)."""

FIT_INPUTS = ("allreduce_latency_us", "eta", "kappa", "mbu", "mfu", "step_overhead_ms")
"""Global model inputs a fit may move; the shared compiled predictor takes all of them."""

PAD = 8
"""Anchors per compiled batch (shorter lists are padded, longer ones split or padded)."""

ARCH_INDEX = {"pd": 0, "chunked": 1, "co": 1, "cb": 2}
GOODPUTS = ("goodput_pd", "goodput_co", "goodput_cb")


def anchor_config(a: anchors_mod.Anchor) -> dict:
    """The ``[fixed]`` table (edge units) that reproduces an anchor's conditions.

    Parameters
    ----------
    a : Anchor
        A predictable anchor.

    Returns
    -------
    dict
        Config entries for :func:`frontier_jax.config.from_dict`.
    """
    n = int(a.gpus)
    fixed = {
        "model": a.model,
        "hardware": a.gpu,
        "prompt_tokens": a.prompt_tokens,
        "output_tokens": a.output_tokens,
        "ttft_slo_ms": a.ttft_slo_ms,
        "tpot_slo_ms": a.tpot_slo_ms,
        "tpot_kind": a.tpot_kind,
        "attainment": a.attainment,
        "tp_prefill": n,
        "tp_decode": n,
        "tp_colocated": n,
        "arrival_rate": math.inf,
    }
    if not math.isnan(a.kv_bandwidth_gbps):
        fixed["kv_bandwidth_gbps"] = a.kv_bandwidth_gbps
    hw = catalog.input_values("hardware", a.gpu)
    if hw["price_usd_per_gpu_hr"] is None:
        fixed["price_usd_per_gpu_hr"] = PLACEHOLDER_PRICE
    return fixed


def tp_candidates(a: anchors_mod.Anchor) -> list[tuple[int, int]]:
    """(tp_prefill, tp_decode) pairs the prediction takes the best of [GPUs]."""
    n = int(a.gpus)
    if not a.tp_search:
        return [(n, n)]
    choices = [t for t in TP_CHOICES if t <= n] or [n]
    return [(tp, td) for tp in choices for td in choices]


@dataclass(frozen=True)
class Batch:
    """Stacked SI inputs of a list of anchors, ready for :func:`make_predictor`.

    Attributes
    ----------
    inputs : dict of numpy.ndarray
        Every registry input, shape (n,), SI.
    tp_prefill, tp_decode : numpy.ndarray
        Parallelism candidates, shape (n, K) [GPUs] (padded with the first candidate).
    tp_valid : numpy.ndarray
        Which candidates are real, shape (n, K) [bool].
    system, baseline : numpy.ndarray
        Architecture index (0 pd, 1 co, 2 cb) of system and baseline, shape (n,).
    ids : tuple of str
        Anchor ids in order.
    """

    inputs: dict
    tp_prefill: np.ndarray
    tp_decode: np.ndarray
    tp_valid: np.ndarray
    system: np.ndarray
    baseline: np.ndarray
    ids: tuple

    def arrays(self):
        """The pytree passed to the compiled predictor."""
        return {
            "p": self.inputs, "tp_p": self.tp_prefill, "tp_d": self.tp_decode, "tp_ok": self.tp_valid,
            "sys": self.system, "base": self.baseline,
        }


def batch(anchors: list, k: int | None = None) -> Batch:
    """Stack predictable anchors into one :class:`Batch` (K = most candidates, or ``k``).

    Raises
    ------
    ValueError
        If an anchor is not predictable or its conditions fail config validation
        (the message names the anchor and the field).
    """
    if not anchors:
        raise ValueError("no anchors to predict")
    rows, cands = [], []
    for a in anchors:
        if not a.predictable:
            raise ValueError(f"anchor {a.anchor_id}: not predictable ({a.reason})")
        try:
            spec = config.from_dict({"sweep": {"mode": "first-principles"}, "fixed": anchor_config(a)})
        except config.ConfigError as e:
            raise ValueError(f"anchor {a.anchor_id}: {e}") from None
        rows.append({n: float(to_si(n, v)) for n, v in spec.fixed.items()})
        cands.append(tp_candidates(a))
    kk = max(len(c) for c in cands) if k is None else k
    if kk < max(len(c) for c in cands):
        raise ValueError(f"k = {kk} is smaller than the number of parallelism candidates")
    n = len(anchors)
    tp_p = np.ones((n, kk))
    tp_d = np.ones((n, kk))
    ok = np.zeros((n, kk), dtype=bool)
    for i, c in enumerate(cands):
        padded = c + [c[0]] * (kk - len(c))
        tp_p[i] = [x[0] for x in padded]
        tp_d[i] = [x[1] for x in padded]
        ok[i, : len(c)] = True
    names = rows[0].keys()
    inputs = {name: np.asarray([r[name] for r in rows], dtype=float) for name in names}
    return Batch(
        inputs=inputs, tp_prefill=tp_p, tp_decode=tp_d, tp_valid=ok,
        system=np.asarray([ARCH_INDEX[a.arch] for a in anchors], dtype=np.int32),
        baseline=np.asarray([ARCH_INDEX[a.baseline_arch] for a in anchors], dtype=np.int32),
        ids=tuple(a.anchor_id for a in anchors),
    )


def _goodputs(p, tp_p, tp_d, tp_ok):
    """(goodput_pd best over the candidates, goodput_co, goodput_cb, index of the best) [tokens/s/GPU]."""
    from .model.evaluate import evaluate

    def at(tpp, tpd):
        q = dict(p)
        q["tp_prefill"] = tpp
        q["tp_decode"] = tpd
        out = evaluate(q, "first-principles")
        return jnp.stack([out[g] for g in GOODPUTS])

    g = jax.vmap(at)(tp_p, tp_d)  # (K, 3)
    pd = jnp.where(tp_ok, g[:, 0], -jnp.inf)
    best = jnp.argmax(pd)
    return jnp.stack([g[best, 0], g[0, 1], g[0, 2]]), best


def _ratio(theta, arrays):
    """ln(goodput_system / goodput_baseline) per anchor, and the chosen candidate index."""

    def one(p, tp_p, tp_d, tp_ok, sys, base):
        p = {**p, **theta}
        g, best = _goodputs(p, tp_p, tp_d, tp_ok)
        gs, gb = g[sys], g[base]
        ok = (gs > 0) & (gb > 0)
        # infeasible architectures give goodput 0: ln ratio is -inf / +inf (double-where)
        lr = jnp.log(jnp.where(ok, gs, 1.0)) - jnp.log(jnp.where(ok, gb, 1.0))
        lr = jnp.where(ok, lr, jnp.where(gs > 0, jnp.inf, jnp.where(gb > 0, -jnp.inf, jnp.nan)))
        return lr, g, best

    return jax.vmap(one)(arrays["p"], arrays["tp_p"], arrays["tp_d"], arrays["tp_ok"], arrays["sys"], arrays["base"])


@lru_cache(maxsize=16)
def make_predictor(theta_names: tuple, jacobian: bool = True):
    """A jitted ``f(theta, arrays) -> dict`` for a batch of anchors.

    Parameters
    ----------
    theta_names : tuple of str
        Registry inputs that the caller sets (SI), overriding every anchor's value.
    jacobian : bool
        Whether to return d ln ratio / d theta as well (forward mode).

    Returns
    -------
    callable
        ``f(theta: dict name -> scalar SI, arrays: Batch.arrays()) -> dict`` with
        ``ln_ratio`` (n,), ``goodput`` (n, 3) [tokens/s/GPU], ``best`` (n,) candidate index
        and, with ``jacobian``, ``jac``: dict name -> (n,) [1/SI unit].
    """

    def f(theta, arrays):
        lr, g, best = _ratio(theta, arrays)
        out = {"ln_ratio": lr, "goodput": g, "best": best}
        if jacobian and theta_names:
            jac = jax.jacfwd(lambda th: _ratio(th, arrays)[0])(theta)
            out["jac"] = jac
        return out

    return jax.jit(f)


def theta_si(values: dict) -> dict:
    """Edge-unit parameter values -> SI scalars (float64 arrays)."""
    return {n: jnp.asarray(to_si(n, v), dtype=jnp.float64) for n, v in values.items()}


def padded_batch(anchors: list) -> Batch:
    """:func:`batch` padded to a multiple of :data:`PAD` anchors and K = 16 candidates.

    Every list of up to 8 anchors has the same shape, so every caller (fit, leave-one-out,
    validation, tests) shares one compiled predictor. Padding rows repeat the first anchor.
    """
    n = len(anchors)
    n_pad = max(PAD, -(-n // PAD) * PAD)
    padded = list(anchors) + [anchors[0]] * (n_pad - n)
    return batch(padded, k=len(TP_CHOICES) ** 2)


def predictor():
    """The compiled predictor every caller shares: all of :data:`FIT_INPUTS`, with Jacobian."""
    return make_predictor(FIT_INPUTS, jacobian=True)


def predict(anchors: list, params: dict | None = None) -> list[dict]:
    """Predict anchors with default or given parameters (edge units).

    Parameters
    ----------
    anchors : list of Anchor
        Any rows; unpredictable ones are returned with ``predicted = None``.
    params : dict, optional
        Values of :data:`FIT_INPUTS` in edge units (e.g. ``{"eta": 0.7}``) set for every
        anchor; the others keep their registry defaults. Calibrated-mode capacity losses
        (``sigma_co_loss@<bin>``, from a fit) are accepted and ignored: anchors are
        predicted from first principles, where sigma_co is computed.

    Returns
    -------
    list of dict
        Per anchor: ``anchor_id``, ``reported`` (number or [low, high]), ``predicted``
        (ratio, or None), ``residual_ln`` (ln predicted - ln reported; for an interval
        the log distance to the nearest end, 0 inside), ``use``, ``note`` (why not
        predictable, or the parallelism chosen).
    """
    from .variables import INPUTS

    params = dict(params or {})
    for n in list(params):
        if n.startswith("sigma_co_loss@"):
            params.pop(n)
        elif n not in FIT_INPUTS:
            raise ValueError(f"parameter {n!r}: only {', '.join(FIT_INPUTS)} (and sigma_co_loss@<bin>) can be set")
        elif not INPUTS[n].in_range(float(params[n])):
            raise ValueError(f"parameter {n} = {params[n]!r} is out of range; allowed: {INPUTS[n].allowed()}")
    theta = {n: float(params.get(n, INPUTS[n].default)) for n in FIT_INPUTS}
    ok = [a for a in anchors if a.predictable]
    preds = {}
    f = predictor()
    for start in range(0, len(ok), PAD):
        chunk = ok[start:start + PAD]
        b = padded_batch(chunk)
        out = f(theta_si(theta), b.arrays())
        lr = np.asarray(out["ln_ratio"])
        best = np.asarray(out["best"])
        for i, a in enumerate(chunk):
            note = ""
            if a.tp_search:
                tp, td = b.tp_prefill[i, best[i]], b.tp_decode[i, best[i]]
                note = f"placement search: tp_prefill={int(tp)}, tp_decode={int(td)}"
            preds[a.anchor_id] = (float(np.exp(lr[i])), note)
    rows = []
    for a in anchors:
        if a.anchor_id in preds:
            value, note = preds[a.anchor_id]
            rows.append(_row(a, value, note))
        else:
            rows.append({"anchor_id": a.anchor_id, "reported": _json_num(a.reported), "predicted": None,
                         "residual_ln": None, "use": a.use, "note": f"not predictable: {a.reason}"})
    return rows


def residual_ln(a: anchors_mod.Anchor, ln_pred: float) -> float:
    """ln predicted - ln reported; for an interval, the signed log distance outside it [1]."""
    if a.is_interval:
        lo, hi = math.log(a.low), math.log(a.high)
        return ln_pred - hi if ln_pred > hi else (ln_pred - lo if ln_pred < lo else 0.0)
    return ln_pred - math.log(a.value)


def _row(a, value, note):
    ln_pred = math.log(value) if value > 0 else -math.inf
    res = residual_ln(a, ln_pred) if math.isfinite(ln_pred) else (math.inf if ln_pred > 0 else -math.inf)
    return {"anchor_id": a.anchor_id, "reported": _json_num(a.reported), "predicted": value,
            "residual_ln": res, "use": a.use, "note": note}


def _json_num(x):
    if isinstance(x, list):
        return [float(v) for v in x]
    return float(x)
