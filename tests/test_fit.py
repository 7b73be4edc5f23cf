"""Fitting, anchor prediction and anchor files (MODEL.md §7, §7a; issue 5).

- the fit recovers known parameters from synthetic anchors that the model itself generated
  (a published-anchor file with its reported values replaced by predictions at known eta, kappa);
- an impossible target reports non-convergence (and raises unless allowed);
- the loss gradient (autodiff through the batched predictor) matches central differences;
- a parameter the anchors cannot move is reported as not identified, without an error bar;
- bad anchor files give clear errors naming the file, line and column; the CLI exits 2 and
  writes nothing.

All predictions share one compiled predictor (padded batches of 8 anchors), so the
module compiles it once.
"""
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from frontier_jax import anchors, fit, validate
from frontier_jax.cli import main

DATA = Path(anchors.default_path())
TRUE = {"eta": 0.4, "kappa": 0.3}


def _rows():
    with open(DATA, newline="") as f:
        return list(csv.DictReader(f))


def _write(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The packaged fit anchors, disaggregated links slowed to 4 GB/s (so that eta matters),
    with every reported value replaced by the model's prediction at TRUE."""
    d = tmp_path_factory.mktemp("synthetic")
    rows = [r for r in _rows() if r["use"] == "fit"]
    for r in rows:
        if r["arch"] == "pd":
            r["kv_bandwidth_gbps"] = "4"
    template = anchors.load(_write(rows, d / "template.csv"))
    pred = validate.predict(template, TRUE)
    for r, p in zip(rows, pred):
        assert p["predicted"] is not None and math.isfinite(p["predicted"])
        r["value"], r["value_low"], r["value_high"] = repr(p["predicted"]), "", ""
    path = _write(rows, d / "synthetic.csv")
    return path, anchors.load(path)


def test_fit_recovers_known_parameters(synthetic):
    _, rows = synthetic
    res = fit.fit(rows, ("eta", "kappa"), n_starts=3, seed=1, leave_one_out=True)
    assert res.converged, res.message
    for n, v in TRUE.items():
        assert res.params[n] == pytest.approx(v, rel=1e-5), n
        assert res.identified[n]
        assert res.stderr[n] is not None and res.stderr[n] < 1e-3
    assert res.loss < 1e-12
    assert all(abs(r["residual_ln"]) < 1e-6 for r in res.anchors)
    # every anchor is recoverable from the others: leave-one-out predicts it too
    assert len(res.leave_one_out) == len(rows)
    for r in res.leave_one_out:
        assert abs(r["residual_ln"]) < 1e-4, r


def test_fit_from_a_start_far_away(synthetic):
    _, rows = synthetic
    problem = fit.Problem(rows, ("eta", "kappa"))
    far = np.asarray([fit.to_u("eta", 0.9), fit.to_u("kappa", 2.0)])
    res = fit._fit_problem(problem, starts=[far])
    assert res.converged, res.message
    assert res.params["eta"] == pytest.approx(TRUE["eta"], rel=1e-4)
    assert res.params["kappa"] == pytest.approx(TRUE["kappa"], rel=1e-4)


def test_impossible_target_reports_non_convergence(synthetic, tmp_path):
    """Disaggregated anchors 50x above anything eta in [0, 1] can give: eta ends at its bound."""
    path, _ = synthetic
    rows = _rows_of(path)
    for r in rows:
        if r["arch"] == "pd":
            r["value"] = repr(50.0 * float(r["value"]))
    bad = anchors.load(_write(rows, tmp_path / "impossible.csv"))
    with pytest.raises(fit.FitNotConverged) as e:
        fit.fit(bad, ("eta",), n_starts=2)
    res = e.value.result
    assert not res.converged
    assert res.at_bound == ["eta"] and res.params["eta"] > 0.999
    assert "bound" in res.message
    assert res.stderr["eta"] is None
    res2 = fit.fit(bad, ("eta",), n_starts=2, allow_unconverged=True)
    assert not res2.converged and res2.params["eta"] == pytest.approx(res.params["eta"])


def _rows_of(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_loss_gradient_matches_central_differences():
    """dL/dtheta (autodiff through the predictor) vs central differences, on the published anchors."""
    rows = anchors.load()
    names = ("eta", "kappa", "mfu", "mbu", "step_overhead_ms", "allreduce_latency_us")
    problem = fit.Problem([a for a in rows if a.use == "fit"], names)
    theta = {"eta": 0.55, "kappa": 0.25, "mfu": 0.55, "mbu": 0.75, "step_overhead_ms": 0.7, "allreduce_latency_us": 12.0}
    loss, grad, r, _, _ = problem.loss_grad(theta)
    assert loss > 0 and np.all(np.isfinite(grad))
    checked = 0
    for j, n in enumerate(names):
        h = 1e-6 * abs(theta[n])
        lp = problem.loss_grad({**theta, n: theta[n] + h})[0]
        lm = problem.loss_grad({**theta, n: theta[n] - h})[0]
        l0 = loss
        fwd, bwd = (lp - l0) / h, (l0 - lm) / h
        if abs(fwd - bwd) > 1e-3 * max(abs(fwd), abs(bwd)) + 1e-9:
            continue  # a kink of the loss inside the stencil (a binding constraint switches)
        central = (lp - lm) / (2 * h)
        checked += 1
        assert grad[j] == pytest.approx(central, rel=1e-4, abs=1e-8 * max(1.0, loss / abs(theta[n]))), n
    assert checked >= 4, "most parameters should be smooth at this point"


def test_parameter_the_anchors_cannot_move_is_not_identified():
    """A calibrated-mode capacity loss does not enter any first-principles prediction."""
    rows = anchors.load()
    res = fit.fit(rows, ("kappa", "sigma_co_loss@paper-mid"), n_starts=1, allow_unconverged=True)
    assert res.identified["sigma_co_loss@paper-mid"] is False
    assert res.stderr["sigma_co_loss@paper-mid"] is None
    assert res.identified["kappa"] is True


def test_standard_errors_hand_built_hessian():
    """Cov = 2 sigma^2 H^+; a zero row/column is a null direction (not identified)."""
    names = ("eta", "kappa")
    theta = {"eta": 0.5, "kappa": 1.0}
    h = np.asarray([[8.0, 0.0], [0.0, 0.0]])
    se, ident = fit.standard_errors(names, theta, h, sigma2=0.01)
    assert ident == {"eta": True, "kappa": False}
    assert se["kappa"] is None
    assert se["eta"] == pytest.approx(math.sqrt(2 * 0.01 / 8.0))
    h_nan = np.asarray([[8.0, np.nan], [np.nan, np.nan]])
    se, ident = fit.standard_errors(names, theta, h_nan, sigma2=0.01)
    assert ident == {"eta": True, "kappa": None}
    assert se["eta"] == pytest.approx(math.sqrt(2 * 0.01 / 8.0))
    # negative curvature along kappa: not a minimum there, identification unknown
    se, ident = fit.standard_errors(names, theta, np.asarray([[8.0, 0.0], [0.0, -3.0]]), sigma2=0.01)
    assert ident == {"eta": True, "kappa": None} and se["kappa"] is None


def test_reparameterization_round_trips_and_stays_in_bounds():
    for n in ("eta", "kappa", "mfu", "mbu", "step_overhead_ms", "allreduce_latency_us"):
        lo, hi = fit.bounds(n)
        for frac in (0.01, 0.3, 0.7):
            v = lo + frac * (min(hi, lo + 20.0) - lo)
            assert fit.to_theta(n, fit.to_u(n, v)) == pytest.approx(v, rel=1e-9, abs=1e-12)
        for u in (-800.0, 0.0, 800.0):
            t = fit.to_theta(n, u)
            assert np.isfinite(t) and lo <= t <= hi


def test_bad_parameter_names():
    with pytest.raises(fit.FitError, match="cannot be fitted; allowed: .*eta"):
        fit.parse_params("eta,bogus")
    with pytest.raises(fit.FitError, match="more than once"):
        fit.parse_params("eta,eta")
    with pytest.raises(fit.FitError, match="at least one"):
        fit.parse_params(" , ")


# --- anchor files -----------------------------------------------------------------------


def _bad_file(tmp_path, edit):
    rows = _rows()
    edit(rows)
    return _write(rows, tmp_path / "bad.csv")


BAD = {
    "unknown model": (lambda rs: rs[0].update(model="GPT-9"), ["line 2", "distserve-chat-opt13b", "'GPT-9'", "valid names"]),
    "unknown gpu": (lambda rs: rs[1].update(gpu="TPU-v9"), ["line 3", "'TPU-v9'", "not a known GPU", "H100-SXM5-80GB"]),
    "negative value": (lambda rs: rs[3].update(value="-5.7"), ["line 5", "value = -5.7 is negative", "allowed"]),
    "negative lengths": (lambda rs: rs[4].update(prompt_tokens="-10"), ["prompt_tokens = -10 is negative"]),
    "bad use": (lambda rs: rs[0].update(use="maybe"), ["use 'maybe' is not allowed", "fit, context"]),
    "duplicate id": (lambda rs: rs[1].update(anchor_id=rs[0]["anchor_id"]), ["appears more than once"]),
    "attainment": (lambda rs: rs[0].update(attainment="1.5"), ["attainment = 1.5 is out of range", "(0, 1)"]),
    "both value and interval": (lambda rs: rs[0].update(value="3"), ["either value or value_low..value_high"]),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_anchor_files_raise_naming_the_field(tmp_path, case):
    edit, parts = BAD[case]
    path = _bad_file(tmp_path, edit)
    with pytest.raises(anchors.AnchorError) as e:
        anchors.load(path)
    for p in parts:
        assert p in str(e.value), (p, str(e.value))


def test_missing_columns(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("metric", "ttft_slo_ms")} for r in _rows()]
    path = _write(rows, tmp_path / "cols.csv")
    with pytest.raises(anchors.AnchorError, match=r"missing columns \['ttft_slo_ms', 'metric'\]"):
        anchors.load(path)


@pytest.mark.parametrize("cmd", ["fit", "validate"])
def test_cli_bad_anchor_file_exits_2_and_writes_nothing(tmp_path, capsys, cmd):
    path = _bad_file(tmp_path, BAD["unknown gpu"][0])
    out = tmp_path / "out.json"
    assert main([cmd, "--anchors", str(path), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"frontier {cmd}: error:" in err and "TPU-v9" in err
    assert not out.exists() and not list(tmp_path.glob(".out.json*"))


def test_cli_bad_params(tmp_path, capsys):
    assert main(["fit", "--params", "eta,warp", "--json", str(tmp_path / "f.json")]) == 2
    assert "'warp' cannot be fitted" in capsys.readouterr().err
    bad = tmp_path / "p.json"
    bad.write_text('{"params": {"eta": "high"}}')
    assert main(["validate", "--params", str(bad)]) == 2
    assert "eta = 'high' is not a finite number" in capsys.readouterr().err
    bad.write_text("{not json")
    assert main(["validate", "--params", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err
    bad.write_text('{"warp": 2}')
    assert main(["validate", "--params", str(bad)]) == 2
    assert "'warp'" in capsys.readouterr().err


def test_cli_fit_and_validate_json(synthetic, tmp_path, capsys):
    """fit --json -> validate --params: the fitted parameters reproduce the synthetic anchors."""
    path, rows = synthetic
    fj = tmp_path / "fit.json"
    assert main(["fit", "--anchors", str(path), "--json", str(fj), "--no-leave-one-out", "--starts", "2"]) == 0
    res = json.loads(fj.read_text())
    for k in ("params", "stderr", "converged", "loss", "anchors"):
        assert k in res
    assert res["converged"] is True
    assert res["params"]["eta"] == pytest.approx(TRUE["eta"], rel=1e-5)
    for a in res["anchors"]:
        assert {"anchor_id", "reported", "predicted", "residual_ln"} <= set(a)
    vj = tmp_path / "validate.json"
    assert main(["validate", "--anchors", str(path), "--params", str(fj), "--json", str(vj)]) == 0
    rows_out = json.loads(vj.read_text())
    assert [r["anchor_id"] for r in rows_out] == [a.anchor_id for a in rows]
    for r in rows_out:
        assert {"anchor_id", "reported", "predicted", "residual_ln"} <= set(r)
        assert abs(r["residual_ln"]) < 1e-5
    out = capsys.readouterr().out
    assert "median |ln(predicted/reported)|" in out


def test_cli_validate_every_row_whatever_its_use(tmp_path):
    vj = tmp_path / "v.json"
    assert main(["validate", "--json", str(vj)]) == 0
    rows = json.loads(vj.read_text())
    ids = [a.anchor_id for a in anchors.load()]
    assert [r["anchor_id"] for r in rows] == ids
    ctx = [r for r in rows if r["use"] == "context"]
    assert ctx and all(r["predicted"] is None and r["note"].startswith("not predictable") for r in ctx)
    interval = next(r for r in rows if r["anchor_id"] == "distserve-chat-opt13b")
    assert interval["reported"] == [2.0, 4.6]
    lo, hi = interval["reported"]
    p = interval["predicted"]
    expected = 0.0 if lo <= p <= hi else (math.log(p / hi) if p > hi else math.log(p / lo))
    assert interval["residual_ln"] == pytest.approx(expected)


def test_cli_fit_not_converged_exits_1_without_json(synthetic, tmp_path, capsys):
    path, _ = synthetic
    rows = _rows_of(path)
    for r in rows:
        if r["arch"] == "pd":
            r["value"] = repr(50.0 * float(r["value"]))
    bad = _write(rows, tmp_path / "impossible.csv")
    out = tmp_path / "fit.json"
    assert main(["fit", "--anchors", str(bad), "--params", "eta", "--json", str(out), "--no-leave-one-out",
                 "--starts", "1"]) == 1
    assert "did not converge" in capsys.readouterr().err
    assert not out.exists()
    assert main(["fit", "--anchors", str(bad), "--params", "eta", "--json", str(out), "--no-leave-one-out",
                 "--starts", "1", "--allow-unconverged"]) == 0
    assert json.loads(out.read_text())["converged"] is False


def test_report_tables_from_the_catalogs():
    """The validation section's audit and paper-prediction tables come from the data files."""
    from frontier_jax import catalog, report_validation

    claims = report_validation._claims()
    ids = [c.claim_id for c in catalog.load("claims")]
    assert all(any(f"| {i} |" in line for line in claims) for i in ids)
    per = [{"anchor_id": "mooncake-arxiv-real", "reported": 1.75, "predicted": 1.07, "predicted_fit": 1.1, "note": ""},
           {"anchor_id": "splitwise-isocost-aa", "reported": 1.4, "predicted": None, "predicted_fit": None,
            "note": "not predictable: no absolute SLO contract"}]
    text = "\n".join(report_validation._paper_predictions(per, {"fp": "none: co cheaper", "paper": "none"}))
    assert "| 4.3 |" in text and "mooncake-arxiv-real (1.75) | 1.07 / 1.1 |" in text
    assert "not predictable: no absolute SLO contract" in text
    assert "(audit: contradicted)" in text and "α* first-principles none: co cheaper" in text
