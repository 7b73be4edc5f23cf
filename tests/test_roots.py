"""Tests for frontier_jax.model.roots: bracketing roots with implicit-function gradients.

Sources: the roots are known in closed form (sqrt, log, cube root); reference
derivatives are the analytic ones and central finite differences (float64).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontier_jax.model.roots import bisect_decreasing, bisect_increasing


def sqrt_root(a, lo=0.0, hi=20.0):
    return bisect_increasing(lambda x: x * x - a, lo, hi)


def log_root(a, b):
    """Root of exp(b x) - a, i.e. log(a) / b, on [-50, 50]."""
    return bisect_increasing(lambda x: jnp.exp(b * x) - a, -50.0, 50.0)


A = jnp.array([1e-3, 0.5, 2.0, 9.0, 123.4])


def test_known_roots_float64():
    np.testing.assert_allclose(sqrt_root(A), jnp.sqrt(A), rtol=1e-14)
    np.testing.assert_allclose(log_root(A, 1.0), jnp.log(A), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(log_root(A, 3.0), jnp.log(A) / 3.0, rtol=1e-13, atol=1e-15)
    cbrt = bisect_decreasing(lambda x: A - x**3, 0.0, 10.0)
    np.testing.assert_allclose(cbrt, jnp.cbrt(A), rtol=1e-14)


def test_output_shape_follows_parameters():
    # Scalar bracket, array parameter: the root has the parameter's shape.
    a = A.reshape(5, 1) * jnp.ones((1, 3))
    x = sqrt_root(a)
    assert x.shape == (5, 3)
    np.testing.assert_allclose(x, jnp.sqrt(a), rtol=1e-14)


def test_clamped_results_and_their_derivatives():
    # f(lo) > 0 -> lo ; f(hi) < 0 -> hi (root outside the bracket).
    a = jnp.array([0.25, 4.0, 400.0])
    lo, hi = 1.0, 10.0
    x = sqrt_root(a, lo, hi)
    np.testing.assert_array_equal(x, jnp.array([1.0, 2.0, 10.0]))
    g = jax.grad(lambda a: sqrt_root(a, lo, hi).sum())(a)
    np.testing.assert_allclose(g, jnp.array([0.0, 0.25, 0.0]), atol=1e-15, rtol=1e-12)
    # Derivative of a clamped result with respect to the bracket end it sits on is 1.
    d_lo, d_hi = jax.jacfwd(sqrt_root, argnums=(1, 2))(a, 1.0, 10.0)
    np.testing.assert_array_equal(d_lo, jnp.array([1.0, 0.0, 0.0]))
    np.testing.assert_array_equal(d_hi, jnp.array([0.0, 0.0, 1.0]))  # 0 for the interior root


def test_no_nan_gradient_where_f_is_flat_at_the_clamp():
    # f(x) = x**3 - a has f_x = 0 at x = 0, the clamp point for a < 0.
    f = lambda a: bisect_increasing(lambda x: x**3 - a, 0.0, 2.0)  # noqa: E731
    g = jax.vmap(jax.grad(f))(jnp.array([-1.0, 0.0, 1.0]))
    assert bool(jnp.all(jnp.isfinite(g)))
    np.testing.assert_allclose(g[2], 1.0 / 3.0, rtol=1e-12)


def test_gradient_matches_analytic_and_finite_differences():
    # d sqrt(a)/da = 1 / (2 sqrt(a)), reverse and forward mode.
    g_rev = jax.grad(lambda a: sqrt_root(a).sum())(A)
    g_fwd = jnp.diag(jax.jacfwd(sqrt_root)(A))
    np.testing.assert_allclose(g_rev, 0.5 / jnp.sqrt(A), rtol=1e-12)
    np.testing.assert_allclose(g_fwd, 0.5 / jnp.sqrt(A), rtol=1e-12)

    # Two closed-over parameters; x = log(a) / b.  Vectorized over the test points.
    a0 = jnp.array([0.3, 7.0, 123.0])
    b0 = jnp.array([2.0, 0.5, 1.7])
    ga, gb = jax.vmap(jax.grad(log_root, argnums=(0, 1)))(a0, b0)
    np.testing.assert_allclose(ga, 1.0 / (a0 * b0), rtol=1e-12)
    np.testing.assert_allclose(gb, -jnp.log(a0) / b0**2, rtol=1e-12)
    h = 1e-6
    f = jax.jit(log_root)
    fd_a = (f(a0 * (1 + h), b0) - f(a0 * (1 - h), b0)) / (2 * h * a0)
    fd_b = (f(a0, b0 * (1 + h)) - f(a0, b0 * (1 - h))) / (2 * h * b0)
    np.testing.assert_allclose(ga, fd_a, rtol=1e-7)
    np.testing.assert_allclose(gb, fd_b, rtol=1e-7)


def test_gradient_is_implicit_not_unrolled():
    # With only 3 bisection steps the root is crude, but its derivative is still
    # -f_theta / f_x at the returned point (here 1 / (2 x)), which an unrolled
    # derivative of the iterations would not give (it would be 0 for bisection).
    x, g = jax.value_and_grad(lambda a: bisect_increasing(lambda x: x * x - a, 0.0, 20.0, iters=3))(2.0)
    np.testing.assert_allclose(g, 1.0 / (2.0 * x), rtol=1e-12)


def test_vmap_and_jit():
    f = jax.jit(jax.vmap(jax.grad(lambda a: sqrt_root(a))))
    np.testing.assert_allclose(f(A), 0.5 / jnp.sqrt(A), rtol=1e-12)
    loop = jnp.stack([sqrt_root(a) for a in A])
    np.testing.assert_allclose(jax.vmap(sqrt_root)(A), loop, rtol=1e-15)
    np.testing.assert_allclose(jax.jit(sqrt_root)(A), jnp.sqrt(A), rtol=1e-14)


def test_float32_path():
    a = A.astype(jnp.float32)
    x = sqrt_root(a)  # Python-float bracket defers to the parameters' dtype
    assert x.dtype == jnp.float32
    np.testing.assert_allclose(x, np.sqrt(np.asarray(a, np.float64)), rtol=3e-7)
    x = sqrt_root(a, jnp.float32(0.0), jnp.float32(20.0))
    assert x.dtype == jnp.float32
    g = jax.grad(lambda a: sqrt_root(a).sum())(a)
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, 0.5 / np.sqrt(np.asarray(a, np.float64)), rtol=1e-6)


_sqrt_root_jit = jax.jit(sqrt_root)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-6, max_value=399.0))
def test_sqrt_root_property(a):
    np.testing.assert_allclose(_sqrt_root_jit(a), np.sqrt(a), rtol=1e-13)


@pytest.mark.parametrize("iters", [10, 30, 80])
def test_explicit_iteration_count(iters):
    x = bisect_increasing(lambda x: x * x - 2.0, 0.0, 2.0, iters=iters)
    # bisection to width 2**(1-iters), then two regula-falsi steps
    assert abs(float(x) - np.sqrt(2.0)) <= max(2.0 ** (1 - iters), 1e-15)
