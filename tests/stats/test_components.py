"""Variance components by seed stream, against numbers computed here independently of ablate:

- the closed-form ANOVA estimators of a two-way layout without replication (init x data order
  within each cell), mean squares pooled over the cells, in numpy;
- statsmodels' MixedLM called directly (REML, the streams as variance components within a group
  per cell), on balanced data (where REML equals the ANOVA estimators when they are positive)
  and on data with trials missing, its own log-likelihood judging the REML refits;
- a parametric bootstrap that simulates every trial and re-estimates, for the intervals.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.regression.mixed_linear_model import MixedLMParams

from ablate.errors import AblateError
from ablate.stats.components import ALL_CELLS, RESIDUAL, Components, variance_components
from ablate.stats.reml import Layout, _reml_refits, _simulate
from ablate.views.components import components_chart

STREAMS = ["init", "data_order"]


def _trials(
    cells: int = 4, sd_init: tuple[float, float] = (1.0, 1.0), sd_order: float = 0.6,
    sd_rest: float = 0.4, n_init: int = 3, n_order: int = 2, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """A study of 2 x ``cells`` cells (batch_norm x width), every cell a trial per combination
    of init and data-order seed indices: y = cell mean + init effect + order effect + noise,
    the init effect's SD ``sd_init[batch_norm]``."""
    rng = np.random.default_rng(seed)
    rows = []
    for bn, width in itertools.product((False, True), range(cells)):
        a, b = rng.normal(0, sd_init[bn], n_init), rng.normal(0, sd_order, n_order)
        for i, j in itertools.product(range(n_init), range(n_order)):
            rows.append({"cell": f"{'+' if bn else '-'}batch_norm width={width}",
                         "batch_norm": bn, "width": width, "replicate": i * n_order + j,
                         "stream_init": i, "stream_data_order": j, "status": "complete",
                         "y": 2.0 + 0.5 * bn + 0.1 * width + a[i] + b[j]
                         + rng.normal(0, sd_rest)})  # fmt: skip
    return pd.DataFrame(rows)


def _closed_form(frame: pd.DataFrame) -> dict[str, float]:
    """The two-way ANOVA without replication in every cell, mean squares pooled over cells."""
    a, b = frame["stream_init"].nunique(), frame["stream_data_order"].nunique()
    y = frame.sort_values(["cell", "stream_init", "stream_data_order"])["y"].to_numpy()
    return {k: float(v) for k, v in _two_way(y.reshape(-1, a, b)).items()}


def _two_way(y: np.ndarray) -> dict[str, np.ndarray]:
    """y (..., cells, a, b): sigma_init = (MS_init − MS_E) / b, sigma_order = (MS_order −
    MS_E) / a, sigma_E = MS_E, the sums of squares and degrees of freedom summed over cells."""
    c, a, b = y.shape[-3:]
    grand = y.mean(axis=(-2, -1), keepdims=True)
    rows, cols = y.mean(axis=-1, keepdims=True), y.mean(axis=-2, keepdims=True)
    ms_init = b * ((rows - grand) ** 2).sum(axis=(-3, -2, -1)) / (c * (a - 1))
    ms_order = a * ((cols - grand) ** 2).sum(axis=(-3, -2, -1)) / (c * (b - 1))
    ms_e = ((y - rows - cols + grand) ** 2).sum(axis=(-3, -2, -1)) / (c * (a - 1) * (b - 1))
    return {"init": (ms_init - ms_e) / b, "data_order": (ms_order - ms_e) / a, RESIDUAL: ms_e}


def _variances(c: Components, scope: str = ALL_CELLS) -> dict[str, float]:
    return {x.source: x.variance for x in c.scope(scope).components}


def _mixedlm(frame: pd.DataFrame) -> tuple[object, object]:
    """statsmodels' REML fit: a fixed mean per cell, init and data order variance components
    within the cell's group. Returns (model, result)."""
    model = smf.mixedlm("y ~ 0 + C(cell)", frame, groups="cell", re_formula="0",
                        vc_formula={"init": "0 + C(stream_init)",
                                    "order": "0 + C(stream_data_order)"})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model, model.fit(reml=True)


def test_balanced_data_give_the_closed_form_anova_estimators() -> None:
    frame = _trials(seed=1).sample(frac=1.0, random_state=3)  # any row order
    c = variance_components(frame, "y", STREAMS, ["batch_norm", "width"], resamples=200)
    assert c.method.startswith("ANOVA")
    for scope, rows in ((ALL_CELLS, frame), ("batch_norm=true", frame[frame["batch_norm"]]),
                        ("width=2", frame[frame["width"] == 2])):  # fmt: skip
        expected = _closed_form(rows)
        assert min(expected.values()) > 0  # no truncation in this data
        got = _variances(c, scope)
        assert list(got) == ["init", "data_order", RESIDUAL]
        for source, value in expected.items():
            assert got[source] == pytest.approx(value, abs=1e-10, rel=1e-10)
        s = c.scope(scope)
        total = sum(expected.values())
        assert s.total == pytest.approx(total, rel=1e-10)
        assert [x.share for x in s.components] == pytest.approx(
            [expected[k] / total for k in got], rel=1e-10)  # fmt: skip
        assert s.n_cells == rows["cell"].nunique() and s.n_trials == len(rows)
        for x in s.components:
            assert x.ci_low <= x.variance <= x.ci_high and x.share_low <= x.share <= x.share_high
    assert [s.name for s in c.scopes] == [ALL_CELLS, "batch_norm=false", "batch_norm=true",
                                          *(f"width={w}" for w in range(4))]  # fmt: skip
    assert c.missing == ()


def test_a_negative_estimate_is_set_to_zero_and_flagged() -> None:
    """No data-order effect at all: in about half the studies MS_order < MS_E."""
    seed = next(s for s in range(50)
                if _closed_form(_trials(sd_order=0.0, seed=s))["data_order"] < 0)  # fmt: skip
    frame = _trials(sd_order=0.0, seed=seed)
    expected = _closed_form(frame)
    c = variance_components(frame, "y", STREAMS, [], resamples=200)
    order = c.scope(ALL_CELLS).components[1]
    assert order.source == "data_order" and order.truncated and order.variance == 0.0
    assert order.share == 0.0 and order.ci_low == 0.0
    assert _variances(c)["init"] == pytest.approx(expected["init"], rel=1e-10)
    assert _variances(c)[RESIDUAL] == pytest.approx(expected[RESIDUAL], rel=1e-10)


def test_a_large_study_recovers_the_true_components() -> None:
    """1,000 cells: sigma^2 = 1, 0.36, 0.16; standard errors about 2.5%, 3.5% and 2.5%."""
    frame = _trials(cells=500, seed=7)
    c = variance_components(frame, "y", STREAMS, [], resamples=500)
    truth = {"init": 1.0, "data_order": 0.36, RESIDUAL: 0.16}
    for x in c.scope(ALL_CELLS).components:
        assert x.variance == pytest.approx(truth[x.source], rel=0.12)
        assert x.ci_low < truth[x.source] < x.ci_high
        assert x.share_low < truth[x.source] / sum(truth.values()) < x.share_high


def test_reml_equals_the_anova_estimators_on_balanced_data() -> None:
    """On balanced data the REML maximum is the ANOVA estimators (all positive here). MixedLM
    stops at its optimiser's gradient tolerance, which leaves its variances 2e-5 to 1.5e-4
    (relative) from that maximum on studies like this one: 1e-3 allows for it and is still far
    below what a wrong estimator would miss by (percents)."""
    frame = _trials(seed=2)
    _, result = _mixedlm(frame)
    c = variance_components(frame, "y", STREAMS, [], resamples=100)
    got = _variances(c)
    assert min(got.values()) > 0.05
    reml = {"init": result.vcomp[0], "data_order": result.vcomp[1], RESIDUAL: result.scale}
    for source, value in reml.items():
        assert got[source] == pytest.approx(value, rel=1e-3)


def test_missing_trials_use_reml_and_say_so() -> None:
    full = _trials(seed=4)
    frame = full.drop(index=[1, 14, 20]).reset_index(drop=True)  # all at batch_norm=false
    c = variance_components(frame, "y", STREAMS, ["batch_norm"], resamples=200)
    assert c.method.startswith("REML") and "3 combination(s)" in c.method
    assert "refitted by REML" in c.intervals
    model, result = _mixedlm(frame)
    got = _variances(c)
    reml = {"init": result.vcomp[0], "data_order": result.vcomp[1], RESIDUAL: result.scale}
    for source, value in reml.items():  # MixedLM's own fit: the same maximum
        assert got[source] == pytest.approx(value, rel=1e-3)
    assert _loglike(model, got) >= result.llf - 1e-9
    s = c.scope(ALL_CELLS)
    assert s.n_trials == len(frame) and s.n_cells == 8
    for x in s.components:
        assert x.ci_low <= x.variance <= x.ci_high
    # the cells at batch_norm=true lost no trial, but the study is judged as a whole: REML
    # there too, which on that balanced part reaches the closed form (Fisher scoring polishes
    # MixedLM's estimate to the exact maximum)
    closed = _closed_form(full[full["batch_norm"]])
    assert min(closed.values()) > 0
    for source, value in closed.items():
        assert _variances(c, "batch_norm=true")[source] == pytest.approx(value, rel=1e-6)


def _loglike(model: object, v: dict[str, float]) -> float:
    """statsmodels' REML log-likelihood at the given variances (its scale profiled out)."""
    k_fe = model.k_fe  # type: ignore[attr-defined]
    vcomp = np.array([v["init"], v["data_order"]]) / v[RESIDUAL]
    params = MixedLMParams.from_components(np.zeros(k_fe), np.zeros((0, 0)), vcomp=vcomp)
    return float(model.loglike(params, profile_fe=True))  # type: ignore[attr-defined]


def test_the_reml_refits_reach_mixedlms_maximum() -> None:
    """The bootstrap's vectorised Fisher scoring, judged by MixedLM's own likelihood: on each
    resample of an unbalanced study it is at least as high as MixedLM's fit (which can stop
    short where a variance is 0), and equal to it where MixedLM's variances are all positive."""
    frame = _trials(seed=5).drop(index=[2, 9, 33]).reset_index(drop=True)
    frame = frame.sort_values(["cell", "stream_init", "stream_data_order"], ignore_index=True)
    cell = pd.factorize(frame["cell"], sort=True)[0].astype(np.int64)
    codes = frame[["stream_init", "stream_data_order"]].to_numpy(np.int64)
    layout = Layout(np.zeros(len(frame)), cell, codes, (3, 2))
    theta = np.array([0.8, 0.3, 0.2])
    ys = _simulate(layout, theta, np.random.default_rng(0), 8)
    refits = _reml_refits(ys, layout, theta)
    interior = 0
    for y, refit in zip(ys, refits, strict=True):
        model, result = _mixedlm(frame.assign(y=y))
        got = dict(zip(["init", "data_order", RESIDUAL], refit, strict=True))
        assert _loglike(model, got) >= result.llf - 1e-9
        if result.converged and min(result.vcomp) > 1e-3:
            assert refit == pytest.approx([*result.vcomp, result.scale], rel=1e-3)
            interior += 1
    assert interior >= 5


def test_the_intervals_match_a_bootstrap_that_simulates_every_trial() -> None:
    """The balanced bootstrap draws mean squares as chi-squares; simulating every trial from
    the fitted components and re-estimating gives the same percentiles (up to Monte Carlo
    error: at 20,000 resamples each, the two 2.5% points of data order's variance, on 8
    degrees of freedom, differ by about 4% (one SD) from seed to seed, the others by less)."""
    frame = _trials(seed=6)
    c = variance_components(frame, "y", STREAMS, [], resamples=20_000, seed=1)
    fitted = _variances(c)
    rng = np.random.default_rng(2)
    shape = (20_000, frame["cell"].nunique(), 3, 2)
    y = (rng.normal(0, np.sqrt(fitted["init"]), (*shape[:3], 1))
         + rng.normal(0, np.sqrt(fitted["data_order"]), (*shape[:2], 1, 2))
         + rng.normal(0, np.sqrt(fitted[RESIDUAL]), shape))  # fmt: skip
    draws = _two_way(y)
    for x in c.scope(ALL_CELLS).components:
        low, high = np.quantile(np.maximum(draws[x.source], 0.0), [0.025, 0.975])
        assert x.ci_low == pytest.approx(low, rel=0.15)
        assert x.ci_high == pytest.approx(high, rel=0.15)


def test_a_four_fold_init_variance_shows_in_the_ratio() -> None:
    """Init's variance 1 without BatchNorm and 4 with it, 24 cells at each level."""
    frame = _trials(cells=24, sd_init=(1.0, 2.0), sd_order=0.5, sd_rest=0.3, seed=11)
    c = variance_components(frame, "y", STREAMS, ["batch_norm"], resamples=2000, seed=3)
    ratios = {r.source: r for r in c.ratios}
    init = ratios["init"]
    assert (init.factor, init.low, init.high) == ("batch_norm", "false", "true")
    assert init.excludes_one and init.ci_low > 1
    assert init.ci_low < 4 < init.ci_high
    off, on = _variances(c, "batch_norm=false"), _variances(c, "batch_norm=true")
    assert init.ratio == pytest.approx(on["init"] / off["init"], rel=1e-12)
    assert ratios["data_order"].ci_low < 1 < ratios["data_order"].ci_high
    assert not ratios["data_order"].excludes_one
    assert c.scope("batch_norm=true").components[0].share > c.scope(
        "batch_norm=false").components[0].share  # fmt: skip


def test_a_single_stream_with_one_trial_per_seed_holds_the_rest() -> None:
    """Only init varies, one trial per seed index: init and the rest cannot be told apart, so
    the one source is the pooled within-cell variance, and what is missing is said."""
    frame = _trials(seed=8)
    frame = frame[frame["stream_data_order"] == 0]
    c = variance_components(frame, "y", ["init"], ["batch_norm"], resamples=200)
    (only,) = c.scope(ALL_CELLS).components
    pooled = frame.groupby("cell")["y"].var(ddof=1).mean()  # balanced: the mean of the cells'
    assert only.source == "init and the rest" and only.share == 1.0
    assert only.variance == pytest.approx(pooled, rel=1e-10)
    assert only.ci_low < only.variance < only.ci_high
    assert any("cannot be told apart" in m and "'init'" in m for m in c.missing)
    assert [r.source for r in c.ratios] == ["init and the rest"]


def test_a_single_stream_with_repeated_seeds_separates_the_rest() -> None:
    """Only init named, data order left as unexplained: the one-way ANOVA, pooled."""
    frame = _trials(seed=9)
    c = variance_components(frame, "y", ["init"], [], resamples=200)
    y = frame.sort_values(["cell", "stream_init"])["y"].to_numpy().reshape(-1, 3, 2)
    means = y.mean(axis=2, keepdims=True)
    ms_between = 2 * ((means - y.mean(axis=(1, 2), keepdims=True)) ** 2).sum() / (len(y) * 2)
    ms_within = ((y - means) ** 2).sum() / (len(y) * 3)
    got = _variances(c)
    assert list(got) == ["init", RESIDUAL]
    assert got["init"] == pytest.approx((ms_between - ms_within) / 2, rel=1e-10)
    assert got[RESIDUAL] == pytest.approx(ms_within, rel=1e-10)


def test_missing_support_is_reported_not_raised() -> None:
    frame = _trials(seed=10)
    one_order = frame[frame["stream_data_order"] == 0]
    c = variance_components(one_order, "y", STREAMS, [], resamples=100)
    assert any(m.startswith("stream 'data_order'") for m in c.missing)
    # one cell at width=3 only, one cell at width=2 with a single trial left
    few = frame[(frame["width"] != 3) | ~frame["batch_norm"]]
    few = few[(few["width"] != 2) | ~few["batch_norm"] | (few["replicate"] == 0)]
    c = variance_components(few, "y", STREAMS, ["width", "batch_norm"], resamples=100)
    names = [s.name for s in c.scopes]
    assert "width=3" not in names and "width=2" not in names and "width=0" in names
    assert any(m.startswith("width=3: 1 cell(s)") for m in c.missing)
    assert any(m.startswith("width=2: 1 cell(s)") for m in c.missing)
    with pytest.raises(AblateError, match="at least one seed stream"):
        variance_components(frame, "y", [], [])
    with pytest.raises(AblateError, match="stream_seedless"):
        variance_components(frame, "y", ["seedless"], [])


def test_the_chart_draws_every_scope_and_saves_a_png(tmp_path: Path) -> None:
    frame = _trials(seed=12)
    c = variance_components(frame, "y", STREAMS, ["batch_norm"], resamples=100)
    fig = components_chart(c)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"{s.name} ({s.n_cells} cells)" for s in c.scopes]  # fmt: skip
    shown = sum(x.share > 0 for s in c.scopes for x in s.components)
    assert len(ax.patches) == shown
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["init", "data_order", RESIDUAL]
    sd = f"{c.scope(ALL_CELLS).sd:.2f}"
    assert any(t.get_text().startswith(sd) for t in ax.texts)
    path = tmp_path / "components.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
