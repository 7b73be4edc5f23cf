"""M/D/1 waiting-time distribution, its quantiles and the utilization they allow.

MODEL.md §5.  Every queue is M/D/1: Poisson arrivals, deterministic service
time ``s``, utilization ``rho``.  All functions work in the dimensionless
waiting time ``w = t / s`` (multiply by ``s`` for seconds) and are elementwise
with explicit broadcasting, pure, dtype preserving (float32 in, float32 out)
and differentiable (``jax.grad``/``jvp``/``jacfwd``, also under ``jit`` and
``vmap``).

Waiting-time CDF ``F(w) = P(W <= w s)`` used throughout:

* ``0 <= w <= 2``: Erlang's exact M/D/1 formula
  ``F(w) = (1 - rho) sum_{k=0}^{floor(w)} (rho (k - w))^k / k! exp(-rho (k - w))``,
  i.e. ``F = (1 - rho) exp(rho w)`` on ``[0, 1)`` and
  ``F = (1 - rho) [exp(rho w) - rho (w - 1) exp(rho (w - 1))]`` on ``[1, 2]``.
  ``F(0) = 1 - rho`` (an arriving customer finds the server idle).
* ``w > 2``: the Cramér–Lundberg exponential tail, *matched to the exact
  value at w = 2* so the CDF and its quantiles are continuous:
  ``P(W > w s) = (1 - F(2)) exp(-x (w - 2))``, where ``x > 0`` solves
  ``rho (exp(x) - 1) = x`` (the Lundberg exponent).  The textbook form
  ``C exp(-x w)`` with ``C = (1 - rho) / (x + rho - 1)`` has the same decay;
  the two differ only in the prefactor (``(1 - F(2)) exp(2x)`` vs ``C``),
  which agree closely for all but small ``rho`` (see tests/test_queueing.py).

Measured against the exact distribution (all ``floor(w)`` Erlang terms, in
200-digit arithmetic, rho in (0, 0.99)), the quantile error is 0 for ``w <= 2``
and, beyond, at most 0.35 % (q = 0.9), 0.8 % (q = 0.99), 1.6 % (q = 0.999) and
2.5 % (q = 0.9999), always on the low side and worst for ``w`` just above 2 at
small ``rho``; the plain ``C exp(-x w)`` form would be closer there (0.4 % at
q = 0.999) but jumps at ``w = 2``.
"""
from __future__ import annotations

import math

import jax.numpy as jnp

from frontier_jax.model.roots import bisect_increasing

__all__ = [
    "RHO_MAX",
    "md1_cdf",
    "lundberg_exponent",
    "md1_wait_quantile",
    "md1_max_utilization",
]

RHO_MAX = 0.99
"""float : Highest utilization the engine lets any queue run at [1].

Waiting times diverge like 1/(1 - rho); above 0.99 the model would be
extrapolating a regime no real deployment operates in."""

# P(W > 2s) = 1 - F(2) = sum_{n>=3} c_n rho^n with c_n = (n-2)(2^(n-1) - n)/n! > 0.
# (Expanding (1-rho)[e^{2 rho} - rho e^rho] term by term.)  All terms are positive,
# so the series has no cancellation, unlike 1 - F(2) for small rho.  Terms up to
# n = 27 leave a truncation error < 2e-19 for rho <= 1.
_P2_COEFFS = tuple((n - 2) * (2 ** (n - 1) - n) / math.factorial(n) for n in range(3, 28))


def _float_dtype(*args):
    dtype = jnp.result_type(*args)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return dtype


def _as_float_arrays(*args):
    dtype = _float_dtype(*args)
    return jnp.broadcast_arrays(*(jnp.asarray(a, dtype=dtype) for a in args))


def _p2_over_rho3(rho):
    """P(W > 2s) / rho^3 as a polynomial in rho (Horner) [1]."""
    acc = jnp.zeros_like(rho) + _P2_COEFFS[-1]
    for c in reversed(_P2_COEFFS[:-1]):
        acc = acc * rho + c
    return acc


def _tail_at_two(rho):
    """P(W > 2s) = 1 - F(2) for rho in [0, 1], accurate also for small rho [1]."""
    return rho * rho * rho * _p2_over_rho3(rho)


def _log_tail_at_two(rho_log):
    """log P(W > 2s) from log(rho); no underflow for tiny rho [1]."""
    return 3.0 * rho_log + jnp.log(_p2_over_rho3(jnp.exp(rho_log)))


def _log_cdf_01(w, rho):
    """log F(w) for w in [0, 1): log(1 - rho) + rho w [1]."""
    return jnp.log1p(-rho) + rho * w


def _log_cdf_12(w, rho):
    """log F(w) for w in [1, 2]: log(1 - rho) + rho u + log(e^rho - rho u), u = w - 1 [1]."""
    u = w - 1.0
    return jnp.log1p(-rho) + rho * u + jnp.log(jnp.exp(rho) - rho * u)


def _log_rho_of_x(x):
    """log rho for Lundberg exponent x > 0: rho = x / (e^x - 1) [1]."""
    return jnp.log(x) - x - jnp.log(-jnp.expm1(-x))


def _lundberg_residual(x, rho):
    """log((e^x - 1)/x) + log(rho): strictly increasing in x > 0, zero at the exponent [1]."""
    pos = x > 0
    xs = jnp.where(pos, x, 1.0)
    small = xs <= 1.0
    x_small = jnp.where(small, xs, 1.0)
    x_big = jnp.where(small, 2.0, xs)
    log_ratio = jnp.where(
        small,
        jnp.log(jnp.expm1(x_small) / x_small),  # ratio ~ 1 + x/2: log of an accurate number
        x_big + jnp.log(-jnp.expm1(-x_big)) - jnp.log(x_big),  # no overflow for large x
    )
    return jnp.where(pos, log_ratio, 0.0) + jnp.log(rho)


def _lundberg_bracket(rho):
    """Bracket [lo, hi] of the Lundberg exponent for rho in (0, 1) [1].

    x / (e^x - 1) >= 1 - x/2 gives lo = 2 (1 - rho); hi = min(2 (1 - rho) / rho,
    2 log(2 / rho)) lies right of the root (MODEL.md §5).
    """
    lo = 2.0 * (1.0 - rho)
    hi = jnp.minimum(2.0 * (1.0 - rho) / rho, 2.0 * jnp.log(2.0 / rho))
    return lo, hi


def lundberg_exponent(rho):
    """Lundberg (Cramér) exponent of the M/D/1 waiting time.

    Parameters
    ----------
    rho : array
        Server utilization [1].

    Returns
    -------
    array
        ``x > 0`` solving ``rho (exp(x) - 1) = x`` for ``0 < rho < 1``, so that
        ``P(W > t) ~ exp(-x t / s)`` [1].  ``+inf`` for ``rho <= 0`` and ``0``
        for ``rho >= 1``.

    Notes
    -----
    Root of the increasing ``log((e^x - 1)/x) + log(rho)`` by bisection; the
    derivative ``dx/drho = -(1/rho) / (1/(1 - e^-x) - 1/x)`` comes from the
    implicit function theorem.
    """
    (rho,) = _as_float_arrays(rho)
    valid = (rho > 0) & (rho < 1)
    rs = jnp.where(valid, rho, 0.5)
    lo, hi = _lundberg_bracket(rs)
    x = bisect_increasing(lambda x: _lundberg_residual(x, rs), lo, hi)
    return jnp.where(valid, x, jnp.where(rho <= 0, jnp.inf, 0.0))


def md1_cdf(w, rho):
    """M/D/1 waiting-time CDF with the matched exponential tail.

    Parameters
    ----------
    w : array
        Waiting time in units of the service time, ``t / s`` [1].
    rho : array
        Server utilization [1].

    Returns
    -------
    array
        ``P(W <= w s)`` [1]: Erlang's exact formula for ``w <= 2``; for
        ``w > 2`` the Cramér–Lundberg tail matched to the exact value at
        ``w = 2``, ``1 - (1 - F(2)) exp(-x (w - 2))``.  0 for ``w < 0``;
        for ``rho <= 0`` a unit step at 0; 0 everywhere for ``rho >= 1``.
    """
    w, rho = _as_float_arrays(w, rho)
    valid = (rho > 0) & (rho < 1)
    rs = jnp.where(valid, rho, 0.5)
    x = lundberg_exponent(rs)
    f01 = jnp.exp(_log_cdf_01(jnp.clip(w, 0.0, 1.0), rs))
    f12 = jnp.exp(_log_cdf_12(jnp.clip(w, 1.0, 2.0), rs))
    f_tail = 1.0 - _tail_at_two(rs) * jnp.exp(-x * (jnp.maximum(w, 2.0) - 2.0))
    f = jnp.where(w < 1, f01, jnp.where(w <= 2, f12, f_tail))
    f = jnp.where(w < 0, 0.0, f)
    step = jnp.where(w >= 0, 1.0, 0.0)
    return jnp.where(valid, f, jnp.where(rho <= 0, step, 0.0))


def md1_wait_quantile(rho, q):
    """q-quantile of the M/D/1 waiting time in queue, in service times.

    Parameters
    ----------
    rho : array
        Server utilization [1].
    q : array
        Quantile level, e.g. 0.99 [1].

    Returns
    -------
    array
        ``w_q = W_q / s`` [1], the smallest ``w`` with ``md1_cdf(w, rho) >= q``:

        * exactly 0 where ``rho <= 1 - q`` (a fraction ``1 - rho`` of arrivals
          do not wait);
        * ``log(q / (1 - rho)) / rho`` where ``q <= F(1) = (1 - rho) e^rho``;
        * the root of ``F(w) = q`` on ``[1, 2]`` where ``F(1) < q <= F(2)``;
        * ``2 + log((1 - F(2)) / (1 - q)) / x`` beyond (matched tail).

        Continuous in ``rho`` and ``q``.  0 where ``rho <= 0`` or ``q <= 0``;
        else ``+inf`` where ``rho >= 1`` or ``q >= 1``.

    Notes
    -----
    Gradients with respect to ``rho`` and ``q`` are finite everywhere and
    exact away from the branch points (where ``W_q`` has kinks: the M/D/1
    waiting-time density jumps at ``w = 1``).  The ``[1, 2]`` root and the
    Lundberg exponent share one vectorized bisection.
    """
    rho, q = _as_float_arrays(rho, q)
    ok = (rho > 0) & (rho < 1) & (q > 0) & (q < 1)
    rs = jnp.where(ok, rho, 0.5)
    qs = jnp.where(ok, q, 0.75)
    log_q = jnp.log(qs)
    log_1mr = jnp.log1p(-rs)
    p2 = _tail_at_two(rs)

    zero = qs <= 1.0 - rs
    first = log_q <= log_1mr + rs  # q <= F(1)
    tail = (1.0 - qs) < p2  # q > F(2)

    # One bisection for both roots: w in [1, 2] (middle branch) or the Lundberg
    # exponent x (tail branch); each element solves the one its branch needs.
    x_lo, x_hi = _lundberg_bracket(rs)

    def residual(y):
        y_mid = jnp.where(tail, 1.5, y)
        y_tail = jnp.where(tail, y, 1.0)
        r_mid = _log_cdf_12(y_mid, rs) - log_q
        r_tail = _lundberg_residual(y_tail, rs)
        return jnp.where(tail, r_tail, r_mid)

    y = bisect_increasing(residual, jnp.where(tail, x_lo, 1.0), jnp.where(tail, x_hi, 2.0))

    w_first = (log_q - log_1mr) / rs
    x = jnp.where(tail, y, 1.0)
    ratio = jnp.where(tail, p2, 1.0) / jnp.where(tail, 1.0 - qs, 0.5)
    w_tail = 2.0 + jnp.log(ratio) / x
    w = jnp.where(zero, 0.0, jnp.where(first, w_first, jnp.where(tail, w_tail, y)))

    trivial = (rho <= 0) | (q <= 0)
    return jnp.where(ok, w, jnp.where(trivial, 0.0, jnp.inf))


def md1_max_utilization(w_max, q, rho_max=RHO_MAX):
    """Largest utilization whose M/D/1 waiting-time quantile meets a target.

    Parameters
    ----------
    w_max : array
        Target on the q-quantile of the waiting time, in service times,
        ``W_q,max / s`` [1].
    q : array
        Quantile level [1].
    rho_max : array, optional
        Utilization cap, in (0, 1); default :data:`RHO_MAX` [1].

    Returns
    -------
    array
        The largest ``rho`` in ``[0, rho_max]`` with
        ``md1_wait_quantile(rho, q) <= w_max`` [1]: ``1 - q`` for
        ``w_max = 0``; ``rho_max`` if even ``rho_max`` meets the target;
        0 for ``w_max < 0`` (the caller flags the contract unattainable).
        ``rho_max`` for ``q <= 0`` and 0 for ``q >= 1``.

    Notes
    -----
    ``W_q <= w_max`` iff ``F(w_max; rho) >= q``, and ``F`` decreases in
    ``rho`` at fixed ``w``, so the answer solves ``F(w_max; rho) = q``.  The
    CDF branch is fixed by ``w_max``, so no nested root is needed:

    * ``w_max <= 2``: solve ``log q - log F(w_max; rho) = 0`` for ``rho``;
    * ``w_max > 2``: parametrize by the Lundberg exponent ``x``
      (``rho = x / (e^x - 1)``, decreasing in ``x``) and solve
      ``log(1 - q) - log(1 - F(2; rho(x))) + x (w_max - 2) = 0`` for ``x``.

    Both are solved in one vectorized bisection; gradients with respect to
    ``w_max``, ``q`` and ``rho_max`` follow from the implicit function theorem.
    """
    w_max, q, rho_max = _as_float_arrays(w_max, q, rho_max)
    dtype = w_max.dtype
    ok = (w_max >= 0) & (q > 0) & (q < 1)
    ws = jnp.where(ok, w_max, 0.5)
    qs = jnp.where(ok, q, 0.5)
    log_q = jnp.log(qs)
    log_1mq = jnp.log1p(-qs)
    cap = jnp.clip(rho_max, 0.0, 1.0 - 4.0 * jnp.finfo(dtype).eps)

    tail = ws > 2.0
    w_first = jnp.where(ws < 1.0, ws, 0.5)  # double where: each formula on its own range
    w_mid = jnp.clip(ws, 1.0, 2.0)
    w_tail = jnp.where(tail, ws, 3.0)

    # Tail bracket in x.  lo: rho(x) >= 1 - x/2, so rho(2 (1 - cap)) >= cap.
    # hi: with L = -log(1 - q), the residual is >= 0 at L / (w - 2) (as 1 - F(2) <= 1)
    # and at 2 L + 4 (as 1 - F(2) <= rho(x) <= e^-L there).
    x_lo = 2.0 * (1.0 - cap)
    big_l = -log_1mq
    x_hi = jnp.maximum(jnp.minimum(big_l / (w_tail - 2.0), 2.0 * big_l + 4.0), 2.0 * x_lo)

    def residual(y):
        r = jnp.where(tail, 0.5 * cap, y)
        log_f = jnp.where(ws < 1.0, _log_cdf_01(w_first, r), _log_cdf_12(w_mid, r))
        r_cdf = log_q - log_f  # increasing in rho
        x = jnp.where(tail, y, 1.0)
        r_tail = log_1mq - _log_tail_at_two(_log_rho_of_x(x)) + x * (w_tail - 2.0)
        return jnp.where(tail, r_tail, r_cdf)

    y = bisect_increasing(residual, jnp.where(tail, x_lo, 0.0), jnp.where(tail, x_hi, cap))

    rho_tail = jnp.exp(_log_rho_of_x(jnp.where(tail, y, 1.0)))
    rho = jnp.minimum(jnp.where(tail, rho_tail, y), rho_max)
    edge = jnp.where((w_max < 0) | (q >= 1), 0.0, rho_max)
    return jnp.where(ok, rho, edge)
