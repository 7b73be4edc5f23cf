"""Fitting the model's global parameters to published anchors (MODEL.md §7, §7a).

**What is fitted.** theta_fit is a subset of :data:`FIT_PARAMS`: eta, kappa, mfu, mbu,
step_overhead_ms, allreduce_latency_us (default: eta and kappa), and the calibrated-mode
sigma_co capacity losses per paper SLO bin (``sigma_co_loss@paper-mid``...). The same
values hold for every anchor: there are no per-anchor knobs.

**Loss.** Over the anchors with ``use = fit`` (weights w_i, 1 by default, 0 to leave one out):

    L(theta) = sum_i w_i r_i(theta)^2,   r_i = ln predicted_i - ln reported_i

where for an interval anchor r_i is the signed log distance to the interval (0 inside it),
so an interval costs nothing inside [low, high]. Predictions come from
:func:`frontier_jax.validate.make_predictor`: one compiled, batched evaluation of every
anchor with d ln predicted / d theta by forward-mode autodiff, so the gradient
2 sum w_i r_i d r_i/d theta is exact and the whole fit (all starts, leave-one-out refits)
compiles once. Batches are padded to a multiple of :data:`PAD` anchors (weight 0) so
that files with up to 8 fit anchors share one compiled shape
(:func:`frontier_jax.validate.padded_batch`).

**Bounds by reparameterization.** theta = lo + (hi - lo) sigmoid(u) for a parameter with a
finite range (eta, kappa, mfu, mbu, sigma_co_loss), theta = lo + s softplus(u) for one
without a practical upper end (step_overhead_ms, allreduce_latency_us; s = 1 ms, 10 us).
The optimizer works on u.

**Optimizer.** optax's L-BFGS direction (``optax.scale_by_lbfgs``) with a backtracking
Armijo line search driven from Python (each trial point one call of the compiled
predictor, so no optimizer step is ever compiled). Several starts: the defaults and
random draws in a plausible range (seeded); the lowest loss wins. Projected: a parameter
within BOUND_TOL of an end of its range whose gradient pushes it further out is held there
(its gradient zeroed, its step 0, the L-BFGS memory reset when that set changes), so a
bound optimum stops the run instead of u creeping to +-inf (:func:`_held`).

**Convergence test.** An optimizer run converges when, at the same iterate,

    max_j |dL/du_j| <= GTOL   and   |L_prev - L| <= FTOL (1 + L)

within MAX_STEPS iterations. A fit is ``converged`` when its best start converged *and*
no fitted parameter ends at an end of its range (within BOUND_TOL = 1e-4 of its width): a parameter pinned
at a bound means the anchors ask for a value the model does not allow, so there is no
interior optimum to report. :func:`fit` raises :class:`FitNotConverged` then, unless
``allow_unconverged``.

**Standard errors.** The Hessian H of L in the parameters' edge units is the central
difference of the exact (autodiff) gradient. Noise model: each anchor's log residual is
independent Gaussian with one variance sigma^2 (interval anchors: only their distance
outside the interval counts), so -log likelihood = L/(2 sigma^2) and
Cov(theta) = 2 sigma^2 H^+ (pseudo-inverse), with sigma^2 = L/(n - k) estimated from the
n fit anchors and k parameters when n > k, else :data:`SIGMA_PRIOR` (stated in the
result). A parameter is *not identified* when the eigenvectors of the scaled Hessian
D H D (D = each parameter's scale) with eigenvalue below :data:`NULL_TOL` times the
largest (or below an absolute floor) carry more than half of its weight: the anchors
cannot move it, and it gets no error bar rather than a huge one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import anchors as anchors_mod
from . import catalog, io, validate
from .variables import INPUTS

MODEL_FIT_PARAMS = validate.FIT_INPUTS
"""Model inputs the fit can move; the compiled predictor always takes all of them."""

DEFAULT_PARAMS = ("eta", "kappa")

SOFTPLUS_SCALE = {"step_overhead_ms": 1.0, "allreduce_latency_us": 10.0}
"""Scale s of theta = lo + s softplus(u) for parameters without a practical upper end [edge units]."""

START_RANGE = {
    "eta": (0.05, 0.95), "kappa": (0.0, 1.0), "mfu": (0.3, 0.9), "mbu": (0.5, 0.95),
    "step_overhead_ms": (0.0, 5.0), "allreduce_latency_us": (1.0, 50.0),
}
"""Where random starts are drawn (edge units): plausible values, inside the valid range."""

GTOL = 1e-7
FTOL = 1e-12
MAX_STEPS = 200
BOUND_TOL = 1e-4
LINE_SEARCH_HALVINGS = 30
NULL_TOL = 1e-8
NULL_FLOOR = 1e-10
SIGMA_PRIOR = 0.1
"""Log-residual noise used when there are no more anchors than parameters [1] (10%)."""

SIGMA_BINS_PREFIX = "sigma_co_loss@"


class FitError(ValueError):
    """A fit that cannot be set up or evaluated (bad parameter names, no fit anchors...)."""


class FitNotConverged(RuntimeError):
    """The fit did not converge; ``result`` holds what it found."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    params : dict
        Fitted values [edge units].
    stderr : dict
        Standard errors [edge units]; None where not identified or at a bound.
    identified : dict
        Whether the anchors constrain each parameter (None: unknown, because the
        Hessian's row is not finite, a gradient being undefined beside the point, or
        the point is not a minimum along the parameter: negative curvature).
    at_bound : list of str
        Parameters that ended at an end of their range.
    loss : float
        L at the fit [1].
    steps : int
        Optimizer iterations of the best start.
    converged, optimizer_converged : bool
        See the module docstring.
    message : str
        Why it did (not) converge.
    anchors : list of dict
        Every fit anchor: anchor_id, reported, predicted, residual_ln, note.
    fixed : dict
        Values of the model parameters that were not fitted [edge units].
    sigma : float
        Log-residual noise used to scale the Hessian [1]; ``sigma_source`` says how.
    hessian : numpy.ndarray
        Hessian of L in edge units, rows/columns in ``names`` order.
    starts : list of dict
        Per start: start values, loss, steps, optimizer_converged.
    leave_one_out : list of dict or None
        Per fit anchor: anchor_id, reported, predicted (refit without it), residual_ln,
        converged, params.
    """

    names: tuple
    params: dict
    stderr: dict
    identified: dict
    at_bound: list
    loss: float
    steps: int
    converged: bool
    optimizer_converged: bool
    message: str
    anchors: list
    fixed: dict
    sigma: float
    sigma_source: str
    hessian: np.ndarray
    starts: list = field(default_factory=list)
    leave_one_out: list | None = None

    def to_json(self) -> dict:
        """JSON-ready dict (NaN/inf -> None)."""
        return io.json_ready({
            "params": self.params, "stderr": self.stderr, "identified": self.identified,
            "at_bound": self.at_bound, "converged": self.converged,
            "optimizer_converged": self.optimizer_converged, "message": self.message,
            "loss": self.loss, "steps": self.steps, "fixed": self.fixed, "sigma": self.sigma,
            "sigma_source": self.sigma_source,
            "hessian": {"names": list(self.names), "matrix": np.asarray(self.hessian).tolist()},
            "starts": self.starts, "anchors": self.anchors, "leave_one_out": self.leave_one_out,
            "convergence_test": f"max|dL/du| <= {GTOL:g} and |dL| <= {FTOL:g} (1 + L) within {MAX_STEPS} steps; "
                                f"no fitted parameter within {BOUND_TOL:g} of a bound",
        })


# --- parameters -------------------------------------------------------------------------


def sigma_bins() -> tuple:
    """Paper SLO bins with a calibrated capacity loss (paper_calibration.csv)."""
    return tuple(r.slo for r in catalog.load("calibration"))


def allowed_params() -> tuple:
    """Every name ``params`` may hold."""
    return MODEL_FIT_PARAMS + tuple(SIGMA_BINS_PREFIX + b for b in sigma_bins())


def parse_params(text: str | None) -> tuple:
    """'eta,kappa' -> ('eta', 'kappa'), validated; None -> the defaults."""
    if text is None:
        return DEFAULT_PARAMS
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names:
        raise FitError("--params: give at least one parameter; allowed: " + ", ".join(allowed_params()))
    return check_params(names)


def check_params(names) -> tuple:
    """Validate fit parameter names (no duplicates, each allowed)."""
    names = tuple(names)
    ok = allowed_params()
    for n in names:
        if n not in ok:
            raise FitError(f"parameter {n!r} cannot be fitted; allowed: {', '.join(ok)}")
    if len(set(names)) != len(names):
        raise FitError(f"parameters {list(names)}: a parameter appears more than once")
    return names


def _registry_name(n):
    return "sigma_co_loss" if n.startswith(SIGMA_BINS_PREFIX) else n


def bounds(n) -> tuple:
    """(lo, hi) [edge units] of a fit parameter."""
    v = INPUTS[_registry_name(n)]
    return v.lo, v.hi


def _softplus_param(n):
    return _registry_name(n) in SOFTPLUS_SCALE


def to_theta(n, u):
    """Unconstrained u -> theta [edge units] (sigmoid or softplus reparameterization)."""
    lo, hi = bounds(n)
    if _softplus_param(n):
        return lo + SOFTPLUS_SCALE[n] * np.logaddexp(0.0, u)
    return lo + (hi - lo) * _sigmoid(u)


def _sigmoid(u):
    """1/(1 + e^-u) without overflow for large |u|."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(u, dtype=float)))


def dtheta_du(n, u):
    """d theta / d u [edge units]."""
    lo, hi = bounds(n)
    if _softplus_param(n):
        return SOFTPLUS_SCALE[n] * _sigmoid(u)
    s = _sigmoid(u)
    return (hi - lo) * s * (1.0 - s)


def to_u(n, theta):
    """theta [edge units] -> u, theta clipped inside its open range first."""
    lo, hi = bounds(n)
    if _softplus_param(n):
        s = SOFTPLUS_SCALE[n]
        z = max((theta - lo) / s, 1e-9)
        return float(z + np.log(-np.expm1(-z)))  # inverse softplus
    f = (theta - lo) / (hi - lo)
    f = min(max(f, 1e-6), 1.0 - 1e-6)
    return float(np.log(f) - np.log1p(-f))


def scale(n, theta):
    """Typical size of a parameter for scaling the Hessian [edge units]."""
    lo, hi = bounds(n)
    if _softplus_param(n):
        return max(abs(theta), SOFTPLUS_SCALE[n])
    return max(abs(theta), 0.1 * (hi - lo)) if math.isfinite(hi - lo) else max(abs(theta), 1.0)


def _bound_side(n, u) -> int:
    """-1 within BOUND_TOL of the lower end, +1 of the upper end, else 0 [1]."""
    lo, hi = bounds(n)
    th = to_theta(n, u)
    if _softplus_param(n):
        return -1 if th - lo <= BOUND_TOL * SOFTPLUS_SCALE[n] else 0
    tol = BOUND_TOL * (hi - lo)
    return -1 if th - lo <= tol else (1 if hi - th <= tol else 0)


def _at_bound(n, u) -> bool:
    return _bound_side(n, u) != 0


# --- the loss -------------------------------------------------------------------------


class Problem:
    """The fit anchors stacked for the compiled predictor, with the loss and its gradient.

    Parameters
    ----------
    anchors : list of Anchor
        Fit anchors (predictable).
    names : tuple of str
        Fitted parameters.
    base : dict, optional
        Values [edge units] of the model parameters that are not fitted (default: registry defaults).
    """

    def __init__(self, anchors: list, names: tuple, base: dict | None = None):
        if not anchors:
            raise FitError("no anchors with use = fit to fit to")
        self.anchors = list(anchors)
        self.names = check_params(names)
        base = dict(base or {})
        for n in base:
            if n not in MODEL_FIT_PARAMS:
                raise FitError(f"base value for {n!r}: only {', '.join(MODEL_FIT_PARAMS)} can be set")
        self.base = {n: float(base.get(n, INPUTS[n].default)) for n in MODEL_FIT_PARAMS}
        n = len(self.anchors)
        self.batch = validate.padded_batch(self.anchors)
        self.n_pad = len(self.batch.ids)
        padded = self.anchors + [self.anchors[0]] * (self.n_pad - n)
        import jax

        self.arrays = jax.device_put(self.batch.arrays())  # once, not at every evaluation
        self.predictor = validate.predictor()
        self.weights = np.zeros(self.n_pad)
        self.weights[:n] = 1.0
        is_int = np.asarray([a.is_interval for a in padded])
        self.interval = is_int
        self.ln_lo = np.asarray([math.log(a.low) if a.is_interval else math.log(a.value) for a in padded])
        self.ln_hi = np.asarray([math.log(a.high) if a.is_interval else math.log(a.value) for a in padded])
        self.evaluations = 0

    def theta_all(self, theta: dict) -> dict:
        """Every model fit parameter [edge units]: fitted values over the base values."""
        out = dict(self.base)
        out.update({n: v for n, v in theta.items() if n in MODEL_FIT_PARAMS})
        return out

    def predict(self, theta: dict):
        """(ln predicted (n_pad,), d ln predicted / d theta_edge (n_pad, k), best candidate)."""
        th = self.theta_all(theta)
        out = self.predictor(validate.theta_si(th), self.arrays)
        self.evaluations += 1
        lr = np.asarray(out["ln_ratio"], dtype=float)
        jac = np.zeros((self.n_pad, len(self.names)))
        for j, n in enumerate(self.names):
            if n in MODEL_FIT_PARAMS:
                jac[:, j] = np.asarray(out["jac"][n], dtype=float) * INPUTS[n].si
            # sigma_co_loss@bin: enters calibrated mode only; every anchor is predicted
            # from first principles, so its column is exactly zero (not identified)
        return lr, jac, np.asarray(out["best"])

    def residuals(self, lr):
        """Signed log distance to the reported number or interval [1]."""
        return np.where(lr > self.ln_hi, lr - self.ln_hi, np.where(lr < self.ln_lo, lr - self.ln_lo, 0.0))

    def loss_grad(self, theta: dict, weights=None):
        """(L, dL/dtheta_edge (k,), residuals, ln predicted, jac)."""
        w = self.weights if weights is None else weights
        lr, jac, _ = self.predict(theta)
        r = self.residuals(lr)
        used = w > 0
        if not np.all(np.isfinite(lr[used])):
            return math.inf, np.full(len(self.names), np.nan), r, lr, jac
        active = (r != 0) & used
        loss = float(np.sum(w[used] * r[used] ** 2))
        grad = 2.0 * (w * np.where(active, r, 0.0)) @ np.where(active[:, None], jac, 0.0)
        return loss, grad, r, lr, jac


# --- optimizer ------------------------------------------------------------------------


def _minimize(problem: Problem, u0: np.ndarray, weights, max_steps=MAX_STEPS):
    """L-BFGS (optax direction) with Armijo backtracking on u. Returns a dict."""
    import jax.numpy as jnp
    import optax

    names = problem.names

    def f_and_g(u):
        theta = {n: float(to_theta(n, u[j])) for j, n in enumerate(names)}
        loss, g_theta, *_ = problem.loss_grad(theta, weights)
        g_u = g_theta * np.asarray([dtheta_du(n, u[j]) for j, n in enumerate(names)])
        return loss, g_u

    tx = optax.scale_by_lbfgs()
    update = _lbfgs_update()
    u = np.asarray(u0, dtype=float).copy()
    f, g = f_and_g(u)
    if not math.isfinite(f):
        return {"u": u, "loss": f, "steps": 0, "converged": False, "message": "a prediction is infinite or undefined at the start"}
    state = tx.init(jnp.asarray(u))
    message = f"no convergence within {max_steps} steps"
    converged = False
    steps = 0
    f_prev = math.inf
    held_prev = np.zeros(len(names), dtype=bool)
    for steps in range(1, max_steps + 1):
        held = _held(names, u, g)
        g_free = np.where(held, 0.0, g)
        if np.max(np.abs(g_free)) <= GTOL and abs(f_prev - f) <= FTOL * (1.0 + f):
            converged, message = True, "gradient and loss change below tolerance"
            if held.any():
                message += " (with " + ", ".join(n for n, h in zip(names, held) if h) + " held at a bound)"
            steps -= 1
            break
        if f == 0.0:
            converged, message = True, "zero loss (every anchor reproduced)"
            steps -= 1
            break
        if not np.array_equal(held, held_prev):
            state = tx.init(jnp.asarray(u))  # the free subspace changed: old curvature pairs do not apply
            held_prev = held
        d, state = update(jnp.asarray(g_free), state, jnp.asarray(u))
        d = np.where(held, 0.0, np.asarray(d, dtype=float))
        slope = float(g_free @ d)
        if not np.all(np.isfinite(d)) or slope <= 0:
            state = tx.init(jnp.asarray(u))
            d, slope = g_free.copy(), float(g_free @ g_free)
        t, accepted = 1.0, False
        for _ in range(LINE_SEARCH_HALVINGS):
            u_new = u - t * d
            f_new, g_new = f_and_g(u_new)
            if math.isfinite(f_new) and f_new <= f - 1e-4 * t * slope:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            # no decrease along the direction: stationary to round-off, or stuck
            if np.max(np.abs(g_free)) <= GTOL:
                converged, message = True, "gradient below tolerance (no further decrease possible)"
            else:
                message = "line search failed to decrease the loss"
            break
        f_prev, f, u, g = f, f_new, u_new, g_new
    return {"u": u, "loss": f, "steps": steps, "converged": converged, "message": message}


def _held(names, u, g):
    """Which parameters are held at a bound: within BOUND_TOL of an end, pushed outward [bool].

    With theta = lo + (hi - lo) sigmoid(u), a parameter whose optimum is an end of its
    range can only creep towards it: u runs off to +-inf while dL/du shrinks with the
    sigmoid's slope, and the L-BFGS curvature along u vanishes, so its direction grows
    without bound. Projected L-BFGS instead: such a parameter's gradient is zeroed, its
    step is 0 and convergence is tested on the others. :func:`_fit_problem` then reports
    the fit as not converged, at a bound.
    """
    # descent (-g) would move u further out: g > 0 at the lower end, g < 0 at the upper end
    side = np.asarray([_bound_side(n, u[j]) for j, n in enumerate(names)])
    return ((side < 0) & (np.asarray(g) > 0)) | ((side > 0) & (np.asarray(g) < 0))


@lru_cache(maxsize=1)
def _lbfgs_update():
    """optax's L-BFGS direction, jitted once (eagerly it recompiles its scans at every step)."""
    import jax
    import optax

    return jax.jit(optax.scale_by_lbfgs().update)


def _starts(names, base: dict, n_starts: int, seed: int):
    rng = np.random.default_rng(seed)
    first = []
    for n in names:
        v = base.get(n, INPUTS[_registry_name(n)].default) if n in MODEL_FIT_PARAMS else _sigma_default(n)
        first.append(to_u(n, v))
    starts = [np.asarray(first)]
    for _ in range(max(n_starts - 1, 0)):
        vals = []
        for n in names:
            lo, hi = START_RANGE.get(_registry_name(n), (0.05, 0.5))
            vals.append(to_u(n, rng.uniform(lo, hi)))
        starts.append(np.asarray(vals))
    return starts


def _sigma_default(n):
    b = n[len(SIGMA_BINS_PREFIX):]
    return {r.slo: r.sigma_co_loss for r in catalog.load("calibration")}[b]


# --- the fit --------------------------------------------------------------------------


def fit(anchors: list | None = None, params=DEFAULT_PARAMS, *, base: dict | None = None, n_starts: int = 4,
        seed: int = 0, allow_unconverged: bool = False, leave_one_out: bool = False) -> FitResult:
    """Fit parameters to the ``use = fit`` anchors.

    Parameters
    ----------
    anchors : list of Anchor, optional
        Anchors (default: the packaged ``data/anchors.csv``); rows with ``use = context``
        are ignored.
    params : tuple of str
        Parameters to fit (:func:`allowed_params`).
    base : dict, optional
        Values of the model fit parameters that are not fitted [edge units].
    n_starts : int
        Optimizer starts: the defaults, then random draws in :data:`START_RANGE`.
    seed : int
        Seed of the random starts.
    allow_unconverged : bool
        Return instead of raising when the fit did not converge.
    leave_one_out : bool
        Also refit without each anchor and predict it.

    Raises
    ------
    FitError
        Bad parameter names, no fit anchors, or every start infeasible.
    FitNotConverged
        When not converged and not ``allow_unconverged``.
    """
    if anchors is None:
        anchors = anchors_mod.load()
    fit_rows = [a for a in anchors if a.use == "fit"]
    problem = Problem(fit_rows, tuple(params), base)
    result = _fit_problem(problem, n_starts=n_starts, seed=seed)
    if leave_one_out:
        result.leave_one_out = _leave_one_out(problem, result)
    if not result.converged and not allow_unconverged:
        raise FitNotConverged(f"fit did not converge: {result.message}", result)
    return result


def _fit_problem(problem: Problem, *, n_starts=4, seed=0, weights=None, starts=None) -> FitResult:
    names = problem.names
    w = problem.weights if weights is None else weights
    runs = []
    for u0 in (starts if starts is not None else _starts(names, problem.base, n_starts, seed)):
        r = _minimize(problem, u0, w)
        r["start"] = {n: float(to_theta(n, u0[j])) for j, n in enumerate(names)}
        runs.append(r)
    finite = [r for r in runs if math.isfinite(r["loss"])]
    if not finite:
        lr, _, _ = problem.predict({})
        bad = [a.anchor_id for a, v in zip(problem.anchors, lr) if not math.isfinite(v)]
        raise FitError("every start gives an infinite or undefined prediction"
                       + (f"; infeasible at the defaults: {', '.join(bad)}" if bad else ""))
    best = min(finite, key=lambda r: (r["loss"], not r["converged"]))
    u = best["u"]
    theta = {n: float(to_theta(n, u[j])) for j, n in enumerate(names)}
    at_bound = [n for j, n in enumerate(names) if _at_bound(n, u[j])]
    loss, _, r, lr, _ = problem.loss_grad(theta, w)
    hess = hessian(problem, theta, w)
    used = int(np.sum(w > 0))
    k = len(names)
    if used > k:
        sigma2, source = loss / (used - k), f"estimated: L/(n - k) with n = {used} anchors, k = {k} parameters"
        if sigma2 == 0:
            sigma2, source = SIGMA_PRIOR**2, f"prior {SIGMA_PRIOR:g} (the fit reproduces every anchor: L = 0)"
    else:
        sigma2, source = SIGMA_PRIOR**2, f"prior {SIGMA_PRIOR:g} (n = {used} anchors <= k = {k} parameters)"
    stderr, identified = standard_errors(names, theta, hess, sigma2, at_bound)
    msg = best["message"]
    converged = best["converged"] and not at_bound
    if at_bound:
        msg = (("optimizer converged, but " if best["converged"] else msg + "; ")
               + ", ".join(f"{n} = {theta[n]:.6g}" for n in at_bound)
               + " ended at a bound of the allowed range: the anchors ask for a value the model does not allow")
    lr_all, _, best_idx = problem.predict(theta)
    rows = []
    for i, a in enumerate(problem.anchors):
        note = ""
        if a.tp_search:
            bi = best_idx[i]
            note = (f"placement search: tp_prefill={int(problem.batch.tp_prefill[i, bi])}, "
                    f"tp_decode={int(problem.batch.tp_decode[i, bi])}")
        rows.append({"anchor_id": a.anchor_id, "reported": a.reported, "predicted": float(np.exp(lr_all[i])),
                     "residual_ln": float(r[i]), "weight": float(w[i]), "note": note})
    fixed = {n: v for n, v in problem.base.items() if n not in names}
    return FitResult(
        names=names, params=theta, stderr=stderr, identified=identified, at_bound=at_bound, loss=float(loss),
        steps=int(best["steps"]), converged=bool(converged), optimizer_converged=bool(best["converged"]),
        message=msg, anchors=rows, fixed=fixed, sigma=math.sqrt(sigma2), sigma_source=source, hessian=hess,
        starts=[{"start": r["start"], "loss": r["loss"], "steps": r["steps"], "optimizer_converged": r["converged"]}
                for r in runs],
    )


def hessian(problem: Problem, theta: dict, weights, rel_step: float = 1e-4) -> np.ndarray:
    """Hessian of L in edge units: central differences of the exact gradient, symmetrized."""
    names = problem.names
    k = len(names)
    h = np.zeros((k, k))
    for j, n in enumerate(names):
        step = rel_step * scale(n, theta[n])
        gp = problem.loss_grad({**theta, n: theta[n] + step}, weights)[1]
        gm = problem.loss_grad({**theta, n: theta[n] - step}, weights)[1]
        h[:, j] = (gp - gm) / (2 * step)
    return 0.5 * (h + h.T)


def standard_errors(names, theta, hess, sigma2, at_bound=()):
    """Standard errors from Cov = 2 sigma^2 H^+, with identification (module docstring).

    Returns
    -------
    stderr : dict name -> float or None [edge units]
    identified : dict name -> bool, or None where the Hessian's row is not finite or the
        parameter lies mostly along a direction of negative curvature (not a minimum)
    """
    k = len(names)
    if k == 0:
        return {}, {}
    d = np.asarray([scale(n, theta[n]) for n in names])
    hs = hess * d[:, None] * d[None, :]
    # parameters whose own curvature is undefined; then any left with an undefined coupling
    bad = ~np.isfinite(np.diag(hs))
    bad |= ~np.all(np.isfinite(hs) | bad[None, :], axis=1)
    if bad.any():
        # a gradient was undefined beside the optimum (an anchor turns infeasible, or a
        # kink): identification of those parameters is unknown (None), the rest is
        # judged on the finite block
        keep_idx = np.flatnonzero(~bad)
        se_k, id_k = standard_errors([names[i] for i in keep_idx], theta, hess[np.ix_(keep_idx, keep_idx)], sigma2,
                                     at_bound) if keep_idx.size else ({}, {})
        return ({n: se_k.get(n) for n in names}, {n: id_k.get(n) for n in names})
    lam, vec = np.linalg.eigh(hs)
    top = max(float(np.max(np.abs(lam))), 0.0)
    floor = max(NULL_TOL * top, NULL_FLOOR)
    null = lam <= floor
    weight_null = np.sum(vec[:, null] ** 2, axis=1)
    # negative curvature: the point is not a minimum along that direction (a saddle or a
    # kink), so whether the anchors pin the parameter cannot be told from it (None)
    weight_neg = np.sum(vec[:, lam < -floor] ** 2, axis=1)
    identified = {n: (None if weight_neg[j] > 0.5 else bool(weight_null[j] <= 0.5)) for j, n in enumerate(names)}
    inv = np.zeros_like(hs)
    keep = ~null
    if keep.any():
        inv = (vec[:, keep] / lam[keep]) @ vec[:, keep].T
    cov = 2.0 * sigma2 * inv * d[:, None] * d[None, :]
    stderr = {}
    for j, n in enumerate(names):
        ok = bool(identified[n]) and n not in at_bound and cov[j, j] >= 0
        stderr[n] = float(math.sqrt(cov[j, j])) if ok else None
    return stderr, identified


def _leave_one_out(problem: Problem, full: FitResult) -> list:
    """Refit without each anchor (weight 0, same compiled shape) and predict it."""
    out = []
    names = problem.names
    n = len(problem.anchors)
    u_full = np.asarray([to_u(nm, full.params[nm]) for nm in names])
    u_default = _starts(names, problem.base, 1, 0)[0]
    for i in range(n):
        w = problem.weights.copy()
        w[i] = 0.0
        res = _fit_problem(problem, weights=w, starts=[u_full, u_default])
        lr, _, _ = problem.predict(res.params)
        a = problem.anchors[i]
        r = float(problem.residuals(lr)[i])
        out.append({"anchor_id": a.anchor_id, "reported": a.reported, "predicted": float(np.exp(lr[i])),
                    "residual_ln": r, "converged": res.converged, "params": res.params})
    return out


def median_abs_residual(rows) -> float:
    """Median |ln(predicted/reported)| over rows with a finite residual [1]."""
    vals = [abs(r["residual_ln"]) for r in rows if r.get("residual_ln") is not None and math.isfinite(r["residual_ln"])]
    return float(np.median(vals)) if vals else math.nan
