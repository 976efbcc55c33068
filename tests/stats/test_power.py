"""Replicate planning against statsmodels and SciPy called directly.

The reference numbers (N = 32 runs of five two-level factors, σ = 0.01, D = 0.005, α = 0.05)
were computed with statsmodels' FTestPowerF2 and checked against SciPy's noncentral t: power
0.2754, 0.5028, 0.6784, 0.8013 for 1 to 4 replicates of the main-effects model (p = 6).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import FTestPowerF2, TTestPower

from ablate.results import load_results
from ablate.stats.analysis import analyze
from ablate.stats.power import Noise, contrast_power, noise_from_pilot, plan_replicates
from ablate.study import load_study, parse_study
from tests.helpers import run_cli

FIVE = """\
name: five
factors:
  batch_norm: [true, false]
  dropout: [true, false]
  spatial_attention: [true, false]
  output_batch_norm: [true, false]
  depth: [1, 2]
"""


def _noncentral_t(d: float, sd: float, n: int, p: int, alpha: float = 0.05) -> float:
    """The two-sided t test of one ±1 effect in an orthogonal design: δ = (D/σ)·√n / 2."""
    df = n - p
    delta = d / sd * math.sqrt(n) / 2
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, delta) + stats.nct.cdf(-crit, df, delta))


def test_planning_numbers_match_statsmodels_and_scipy() -> None:
    plan = plan_replicates(parse_study(FIVE), 0.005, noise=Noise(0.01, "given"))
    assert (plan.runs, plan.parameters, plan.replicates, plan.trials) == (32, 6, 4, 128)
    powers = plan.table.set_index("replicates")["power"]
    assert list(powers.round(4)) == [0.2754, 0.5028, 0.6784, 0.8013]
    for r, value in powers.items():
        n = 32 * r
        direct = FTestPowerF2().power(
            effect_size=(0.005 / (2 * 0.01)) ** 2, df_num=1, df_denom=n - 6, alpha=0.05, ncc=5
        )
        assert value == pytest.approx(direct, rel=1e-10)
        assert value == pytest.approx(_noncentral_t(0.005, 0.01, n, 6), abs=1e-6)
    # every two-level contrast of an orthogonal design has v = 4/N
    assert np.allclose(plan.contrasts["v"], 4 / 32)
    # statsmodels' one-sample t power with d = D/(2σ) needs n = 127.5 (ignoring the model's
    # degrees of freedom): the same 4 replicates of 32 runs
    n = TTestPower().solve_power(effect_size=0.005 / 0.02, alpha=0.05, power=0.8)
    assert math.ceil(n / 32) == plan.replicates


def test_the_interaction_model_and_a_fraction() -> None:
    study = parse_study(FIVE)
    plan = plan_replicates(study, 0.005, noise=Noise(0.01, "given"), model="main+2fi")
    assert plan.parameters == 16 and plan.replicates == 4
    assert list(plan.table["power"].round(4)) == [0.2649, 0.5000, 0.6773, 0.8007]
    half = parse_study(FIVE + "design: {type: fractional, resolution: V}\n")  # 16 runs
    plan = plan_replicates(half, 0.005, noise=Noise(0.01, "given"))
    assert plan.runs == 16 and plan.replicates == 8  # half the runs, twice the replicates


def test_a_non_orthogonal_design_has_less_power_per_trial() -> None:
    text = (
        "name: ref\nfactors:\n  batch_norm: [true, false]\n  dropout: [true, false]\n"
        "  spatial_attention: [true, false]\n  activation: [elu, relu, selu, sigmoid]\n"
    )
    optimal = plan_replicates(parse_study(text + "design: {type: optimal, runs: 12}\n"), 0.01,
                              noise=Noise(0.01, "given"))  # fmt: skip
    v = optimal.contrasts.set_index("factor")["v"]
    assert (v[["batch_norm", "dropout", "spatial_attention"]] >= 4 / 12 - 1e-12).all()
    weakest = optimal.contrasts["v"].max()
    assert optimal.table["power"].iloc[-1] == pytest.approx(
        contrast_power(0.01, 0.01, weakest, 12, optimal.replicates, 7, 0.05)
    )
    assert optimal.table["power"].iloc[-1] >= 0.8 > optimal.table["power"].iloc[-2]


@pytest.mark.slow
def test_a_pilot_gives_the_noise_and_the_wall_time(tiny_results: Path) -> None:
    study = load_study(tiny_results)
    noise = noise_from_pilot(tiny_results, study)
    pure = analyze(load_results(tiny_results), importance=False).lack_of_fit
    pure = pure.set_index("source").loc["pure error"]
    assert noise.sd == pytest.approx(math.sqrt(pure["mean_sq"]))
    assert "pure error" in noise.source
    seconds = pd.read_parquet(tiny_results / "trials.parquet")["seconds"].mean()
    assert noise.seconds_per_trial == pytest.approx(seconds)
    plan = plan_replicates(study, 5 * noise.sd, noise=noise, workers=2)
    assert plan.workers == 2 and plan.replicates is not None
    assert plan.wall_seconds == pytest.approx(plan.trials * seconds / 2)
    out = run_cli("plan", str(tiny_results), "--effect", f"{5 * noise.sd}", "--pilot",
                  str(tiny_results), "--workers", "2")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"Needed: {plan.replicates} replicate(s) per run" in out.stdout
    assert "Expected wall time" in out.stdout and "pure error" in out.stdout


def test_plan_refuses_what_it_cannot_answer() -> None:
    out = run_cli("plan", "studies/quick.yaml", "--effect", "0")
    assert out.returncode == 2 and "positive number" in out.stderr
    out = run_cli("plan", "studies/quick.yaml", "--effect", "0.01")
    assert out.returncode == 2 and "--sd" in out.stderr and "--pilot" in out.stderr


def test_a_pilot_run_that_blew_up_is_named_with_the_noise_without_it(tmp_path: Path) -> None:
    study = parse_study(FIVE)
    rng = np.random.default_rng(1)
    rows = []
    grid = list(itertools.product(*(f.levels for f in study.factors)))
    for levels in grid * 2:  # two replicates of the 32 runs
        row = dict(zip(study.factor_names, levels, strict=True))
        loss = 0.5 + 0.05 * row["batch_norm"] + rng.normal(0, 0.01)
        rows.append({**row, "test_loss": loss, "status": "complete", "seconds": 2.0})
    rows[-1]["test_loss"] = 90.0  # one seed of one run diverged without a NaN
    pilot = tmp_path / "pilot.csv"
    pd.DataFrame(rows).to_csv(pilot, index=False)
    noise = noise_from_pilot(pilot, study)
    frame = pd.DataFrame(rows)
    names = list(study.factor_names)
    within = frame.groupby(names)["test_loss"].agg(["var", "size"]).dropna()
    ss = ((within["size"] - 1) * within["var"]).sort_values()
    df = int((within["size"] - 1).sum())
    assert noise.sd == pytest.approx(math.sqrt(ss.sum() / df))
    without = math.sqrt(ss.iloc[:-1].sum() / (df - 1))
    assert f"σ = {without:.4g}" in noise.warning and "holds 100% of the pure error" in noise.warning
    assert noise.seconds_per_trial == 2.0
