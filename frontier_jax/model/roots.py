"""Vectorized bracketing root finders with implicit-function-theorem gradients.

The model solves many small scalar equations elementwise (one per queue, per
configuration of a sweep): ``f(x) = 0`` for a monotone ``f`` on a known bracket.
The roots here are found by a fixed number of bisection steps followed by two
regula-falsi steps (which never leave the current bracket), so the cost is
static and the functions are safe inside ``jit``/``vmap``.

Derivatives never flow through the iterations: the root is wrapped in
:func:`jax.lax.custom_root`, so for ``f(x; theta) = 0``

    dx/dtheta = -f_theta / f_x

(implicit function theorem), in forward and reverse mode.  Results that were
clamped to a bracket end carry the derivative of that bracket end instead.

Contract for ``f``: it maps an array ``x`` to an array of the broadcast shape
and acts *elementwise* in ``x`` (element ``i`` of the output depends only on
element ``i`` of ``x``); it may close over traced arrays (parameters ``theta``)
and broadcast ``x`` against them.  The diagonal Jacobian ``f_x`` is obtained by
pushing a vector of ones through the linearized ``f``, which is only correct
for elementwise functions.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["bisect_increasing", "bisect_decreasing", "default_iters"]

_POLISH_STEPS = 2


def default_iters(dtype) -> int:
    """Number of bisection steps used for a floating dtype.

    Parameters
    ----------
    dtype : numpy dtype
        Floating dtype of the bracket [1].

    Returns
    -------
    int
        Mantissa bits of ``dtype`` (52 for float64, 23 for float32): after
        that many halvings the bracket is ~eps times its initial width, and the
        two regula-falsi steps that follow square the remaining relative error
        for smooth ``f`` [1].
    """
    return int(jnp.finfo(dtype).nmant)


def _bracket(f: Callable, lo, hi):
    """Broadcast ``lo``/``hi`` to each other and to the output of ``f``; return f there too.

    The working dtype is that of the bracket; Python-scalar (weakly typed)
    bracket ends defer to the dtype of ``f``'s output, so ``f`` closing over
    float32 parameters gives a float32 root.
    """
    lo = jnp.asarray(lo)
    hi = jnp.asarray(hi)
    if not jnp.issubdtype(jnp.result_type(lo, hi), jnp.floating):
        lo = lo.astype(jnp.result_type(float))
        hi = hi.astype(jnp.result_type(float))
    shape = jnp.broadcast_shapes(lo.shape, hi.shape)
    lo = jnp.broadcast_to(lo, shape)
    hi = jnp.broadcast_to(hi, shape)
    f_lo = jnp.asarray(f(lo))
    dtype = jnp.result_type(lo, hi, f_lo)
    shape = jnp.broadcast_shapes(shape, f_lo.shape)  # f may broadcast x against its parameters
    lo = jnp.broadcast_to(lo.astype(dtype), shape)
    hi = jnp.broadcast_to(hi.astype(dtype), shape)
    f_lo = jnp.broadcast_to(f_lo.astype(dtype), shape)
    f_hi = jnp.asarray(f(hi)).astype(dtype)
    return lo, hi, f_lo, f_hi


def _solve_bracketed(f: Callable, lo, hi, f_lo, f_hi, iters: int):
    """Bisection, then regula falsi, on ``[lo, hi]`` for increasing ``f`` (no gradients).

    One loop of ``iters + _POLISH_STEPS`` steps, each evaluating ``f`` once at
    the bracket midpoint (first ``iters`` steps) or at the regula-falsi point
    clipped to the bracket (last steps); the bracket shrinks around the sign
    change either way.  Returns the last evaluated point.
    """

    def step(i, carry):
        a, b, fa, fb, _ = carry
        mid = 0.5 * (a + b)
        den = fb - fa
        ok = (den > 0) & jnp.isfinite(den) & jnp.isfinite(fa)
        x_rf = jnp.clip(a - fa * (b - a) / jnp.where(ok, den, 1.0), a, b)
        x = jnp.where((i >= iters) & ok, x_rf, mid)
        fx = f(x)
        left = fx < 0  # root lies in [x, b]
        return (
            jnp.where(left, x, a),
            jnp.where(left, b, x),
            jnp.where(left, fx, fa),
            jnp.where(left, fb, fx),
            x,
        )

    carry = (lo, hi, f_lo, f_hi, 0.5 * (lo + hi))
    return jax.lax.fori_loop(0, iters + _POLISH_STEPS, step, carry)[-1]


def bisect_increasing(f: Callable, lo, hi, *, iters: int | None = None):
    """Elementwise root of an increasing function on a bracket, with IFT gradients.

    Parameters
    ----------
    f : callable
        ``f(x) -> array``, elementwise in ``x`` and increasing on ``[lo, hi]``
        (more precisely: ``f < 0`` left of the root and ``f > 0`` right of it).
        May close over traced arrays; must be finite on ``[lo, hi]`` [units of f].
    lo, hi : array
        Bracket ends, ``lo < hi``, broadcastable to each other and to ``f``'s
        output [units of x].
    iters : int, optional
        Bisection steps; default :func:`default_iters` of the bracket dtype [1].

    Returns
    -------
    array
        ``x`` in ``[lo, hi]`` with ``f(x) ~ 0``; ``lo`` where ``f(lo) > 0`` and
        ``hi`` where ``f(hi) < 0`` (clamped: callers detect these by
        comparing with the bracket) [units of x].  Dtype is that of the
        bracket.

    Notes
    -----
    Differentiable (forward and reverse) with respect to anything ``f``
    closes over, through :func:`jax.lax.custom_root`:
    ``dx/dtheta = -f_theta / f_x`` at the root.  Clamped elements get the
    derivative of the bracket end they were clamped to, and never NaN.
    """
    lo, hi, f_lo, f_hi = _bracket(f, lo, hi)
    if iters is None:
        iters = default_iters(lo.dtype)
    below = f_lo > 0  # root left of the bracket -> clamp to lo
    above = (f_hi < 0) & ~below  # root right of the bracket -> clamp to hi
    clamped = jax.lax.stop_gradient(below | above)
    x_clamp = jax.lax.stop_gradient(jnp.where(below, lo, hi))
    lo_c, hi_c = jax.lax.stop_gradient(lo), jax.lax.stop_gradient(hi)
    f_lo_c, f_hi_c = jax.lax.stop_gradient(f_lo), jax.lax.stop_gradient(f_hi)

    def residual(x):
        # Clamped elements get the residual x - x_clamp (root x_clamp, unit slope),
        # so the implicit derivative there is 0 and never divides by a bad f_x.
        # Double where: f is evaluated at a harmless in-bracket point there.
        x_in = jnp.where(clamped, lo_c, x)
        return jnp.where(clamped, x - x_clamp, f(x_in).astype(x.dtype))

    def solve(g, x0):
        del x0
        root = _solve_bracketed(g, lo_c, hi_c, jnp.where(clamped, lo_c - x_clamp, f_lo_c),
                                jnp.where(clamped, hi_c - x_clamp, f_hi_c), iters)
        return jnp.where(clamped, x_clamp, root)

    def tangent_solve(g, y):
        slope = g(jnp.ones_like(y))  # diagonal of df/dx (f is elementwise)
        ok = (slope != 0) & jnp.isfinite(slope)
        return y / jnp.where(ok, slope, 1.0)

    x = jax.lax.custom_root(residual, 0.5 * (lo_c + hi_c), solve, tangent_solve)
    return jnp.where(below, lo, jnp.where(above, hi, x))


def bisect_decreasing(f: Callable, lo, hi, *, iters: int | None = None):
    """Elementwise root of a decreasing function on a bracket, with IFT gradients.

    Parameters
    ----------
    f : callable
        ``f(x) -> array``, elementwise in ``x`` and decreasing on ``[lo, hi]``
        [units of f].
    lo, hi : array
        Bracket ends, ``lo < hi`` [units of x].
    iters : int, optional
        Bisection steps; default :func:`default_iters` of the bracket dtype [1].

    Returns
    -------
    array
        ``x`` with ``f(x) ~ 0``; ``lo`` where ``f(lo) < 0`` and ``hi`` where
        ``f(hi) > 0`` (clamped) [units of x].

    Notes
    -----
    Same as :func:`bisect_increasing` applied to ``-f``.
    """
    return bisect_increasing(lambda x: -f(x), lo, hi, iters=iters)
