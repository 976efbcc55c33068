"""Replicates until decided (ablate/sequential/decided.py): the spending function against its
closed form, the verdicts against t quantiles from scipy, and sequences of looks whose stop is
worked out here from the formulas, independently of the rule's code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ablate.errors import AblateError
from ablate.sequential.decided import Look, Rule, decide, decide_many, keep, look_alpha, spent

ALPHA = 0.05


def _obf(t: float) -> float:
    """The O'Brien-Fleming-type spending function, 2 − 2Φ(z₁₋α/₂ / √t), written out."""
    return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - ALPHA / 2) / math.sqrt(t)))


@pytest.mark.parametrize("t", [0.1, 0.25, 0.5, 0.9])
def test_spent_is_the_closed_form(t: float) -> None:
    assert spent(ALPHA, t) == pytest.approx(_obf(t), rel=1e-6, abs=1e-13)
    pocock = ALPHA * math.log(1 + (math.e - 1) * t)
    assert spent(ALPHA, t, "pocock") == pytest.approx(pocock, rel=1e-12)
    assert 0 < spent(ALPHA, t) < spent(ALPHA, min(t + 0.05, 1.0)) <= ALPHA


def test_spent_starts_at_zero_and_ends_at_alpha() -> None:
    for spending in ("obrien-fleming", "pocock"):
        assert spent(ALPHA, 0.0, spending) == 0.0
        assert spent(ALPHA, 1.0, spending) == pytest.approx(ALPHA, rel=1e-12)
    assert look_alpha(ALPHA, 0.25, 0.6) == pytest.approx(_obf(0.6) - _obf(0.25), rel=1e-6)
    with pytest.raises(ValueError):
        spent(ALPHA, 1.2)


@pytest.mark.parametrize(
    ("start", "most", "growth", "spending"),
    [(2, 20, 1.5, "obrien-fleming"), (2, 20, 1.5, "pocock"), (3, 50, 2.0, "obrien-fleming"),
     (1, 7, 1.2, "pocock"), (5, 5, 1.5, "obrien-fleming")],
)  # fmt: skip
def test_the_looks_levels_sum_to_at_most_alpha(
    start: int, most: int, growth: float, spending: str
) -> None:
    rule = Rule(0.5, most, ALPHA, start, growth, spending)  # type: ignore[arg-type]
    levels = rule.levels()
    assert len(levels) == len(rule.schedule()) and all(lv > 0 for lv in levels)
    assert sum(levels) <= ALPHA + 1e-12
    assert sum(levels) == pytest.approx(ALPHA, rel=1e-9)  # the last look is at the maximum


def test_decide_against_t_quantiles() -> None:
    q2 = stats.t.ppf(1 - ALPHA / 2, 12)  # two-sided, against 0
    assert decide(q2 * 0.2 * (1 + 1e-6), 0.2, 12, 0.1, ALPHA) == "different"
    assert decide(-q2 * 0.2 * (1 + 1e-6), 0.2, 12, 0.1, ALPHA) == "different"
    assert decide(q2 * 0.2 * (1 - 1e-6), 0.2, 12, 0.1, ALPHA) == "inconclusive"
    q1 = stats.t.ppf(1 - ALPHA, 20)  # one-sided, against ±D: the 90% interval inside ±0.5
    edge = 0.5 - q1 * 0.2  # 0.155: not significant against 0 (0.155 / 0.2 < 2.09)
    assert decide(edge * (1 - 1e-6), 0.2, 20, 0.5, ALPHA) == "equivalent"
    assert decide(-edge * (1 - 1e-6), 0.2, 20, 0.5, ALPHA) == "equivalent"
    assert decide(edge * (1 + 1e-6), 0.2, 20, 0.5, ALPHA) == "inconclusive"
    assert decide(1.0, 0.3, 10, 0.5, ALPHA) == "different"  # t = 3.3 > 2.23
    assert decide(0.3, 0.2, 10, 0.5, ALPHA) == "inconclusive"  # t = 1.5; 0.3 + 0.36 > 0.5
    # both tests reject (0.3 / 0.1 > 2.04 and 0.3 + 1.70 · 0.1 < 0.5): "different" says more
    assert decide(0.3, 0.1, 30, 0.5, ALPHA) == "different"
    # a smaller level widens both tests: the same effect is no longer decided
    tiny = 1e-4
    assert stats.t.isf(tiny / 2, 30) > 0.3 / 0.1 and 0.3 + stats.t.isf(tiny, 30) * 0.1 > 0.5
    assert decide(0.3, 0.1, 30, 0.5, tiny) == "inconclusive"
    for se, df in ((0.0, 10), (math.nan, 10), (math.inf, 10), (0.1, 0)):
        assert decide(0.0, se, df, 0.5, ALPHA) == "inconclusive"


def test_the_vectorised_form_is_the_scalar_one() -> None:
    effects = np.linspace(-1.2, 1.2, 25)
    ses = np.array([0.05, 0.2, 0.5])[:, None]
    many = decide_many(effects[None, :], ses, 14, 0.5, 0.01)
    assert many.shape == (3, 25)
    expected = [[decide(e, s, 14, 0.5, 0.01) for e in effects] for s in ses[:, 0]]
    assert many.tolist() == expected
    assert set(many.ravel()) == {"different", "equivalent", "inconclusive"}
    assert keep(["different", "inconclusive", "equivalent"],
                ["inconclusive", "equivalent", "different"]).tolist() == [
        "different", "equivalent", "equivalent"]  # fmt: skip


def _schedule(start: int, most: int) -> list[int]:
    """The looks as the documentation states them: × 1.5 (at least one more), capped, and the
    maximum where less than half a step would be left."""
    looks = [start]
    while looks[-1] < most:
        r = looks[-1]
        nxt = min(max(math.ceil(1.5 * r), r + 1), most)
        looks.append(most if most - nxt < (nxt - r) / 2 else nxt)
    return looks


def _follow(rule: Rule, truth: dict[str, float], sd: float, wobble: list[float]) -> list[Look]:
    """The rule's looks on estimates truth + wobble · SE, SE = sd / √(2r), df = 8(r − 1): the
    numbers of a replicated 2^3 factorial with noise SD ``sd``."""
    looks: list[Look] = []
    r, k = rule.start_replicates, 0
    while True:
        se = sd / math.sqrt(2 * r)
        est = [v + wobble[k] * se for v in truth.values()]
        looks.append(rule.look(r, list(truth), est, [se] * len(est), 8 * (r - 1),
                               looks[-1] if looks else None))  # fmt: skip
        if looks[-1].stop:
            return looks
        assert looks[-1].next_replicates is not None
        r, k = looks[-1].next_replicates, k + 1


def _expected_stop(truth: dict[str, float], sd: float, wobble: list[float], margin: float,
                   most: int) -> tuple[int, dict[str, str]]:  # fmt: skip
    """The look that stops and its decisions, from the formulas: level α(t_k) − α(t_{k−1})
    with the closed-form spending, two-sided and one-sided t quantiles, first verdicts kept."""
    found: dict[str, str] = {}
    previous = 0.0
    looks = _schedule(2, most)
    for k, r in enumerate(looks):
        t = r / most
        level = _obf(t) - (_obf(previous) if previous else 0.0)
        previous = t
        se, df = sd / math.sqrt(2 * r), 8 * (r - 1)
        for name, v in truth.items():
            e = v + wobble[k] * se
            if name in found:
                continue
            if abs(e) / se > stats.t.ppf(1 - level / 2, df):
                found[name] = "different"
            elif abs(e) + stats.t.ppf(1 - level, df) * se < margin:
                found[name] = "equivalent"
        if len(found) == len(truth) or r == most:
            return r, found
    raise AssertionError("the schedule ends at the maximum")


def test_the_rule_stops_at_the_look_the_formula_says() -> None:
    rule = Rule(0.5, 20)
    assert list(rule.schedule()) == _schedule(2, 20) == [2, 3, 5, 8, 12, 20]
    truth, sd, wobble = {"big": 0.9, "none": 0.0}, 0.8, [0.3, -0.5, 0.2, 0.1, -0.4, 0.6]
    stop_at, found = _expected_stop(truth, sd, wobble, 0.5, 20)
    assert 2 < stop_at < 20 and found == {"big": "different", "none": "equivalent"}  # a real test
    looks = _follow(rule, truth, sd, wobble)
    assert [lk.replicates for lk in looks] == [r for r in _schedule(2, 20) if r <= stop_at]
    last = looks[-1]
    assert last.stop and last.next_replicates is None and last.replicates == stop_at
    assert dict(zip(last.terms, last.decisions, strict=True)) == found
    assert "every effect decided" in last.reason and last.inconclusive == ()
    assert last.spent == pytest.approx(_obf(stop_at / 20), rel=1e-6)
    # a decision is kept: "big" was decided before the last look, whatever came after
    first_big = next(lk for lk in looks if lk.decision("big") != "inconclusive")
    assert first_big.replicates < stop_at


def test_the_rule_stops_undecided_at_the_maximum() -> None:
    truth, sd, wobble = {"half": 0.25}, 1.0, [0.0] * 6  # midway between 0 and the margin
    stop_at, found = _expected_stop(truth, sd, wobble, 0.5, 20)
    assert stop_at == 20 and found == {}
    looks = _follow(Rule(0.5, 20), truth, sd, wobble)
    last = looks[-1]
    assert last.replicates == 20 and last.stop and last.next_replicates is None
    assert last.decisions == ("inconclusive",) and last.inconclusive == ("half",)
    assert "maximum" in last.reason and "half" in last.reason
    assert all(not lk.stop for lk in looks[:-1])


def test_the_next_replicates_grow_and_are_capped() -> None:
    for most in (5, 20, 64):
        rule = Rule(0.5, most, start_replicates=1)
        for r in range(1, most):
            nxt = rule.next_replicates(r)
            assert r < nxt <= most
            assert nxt >= min(math.ceil(1.5 * r), most)
            assert nxt == most or most - nxt >= (nxt - r) / 2
        with pytest.raises(ValueError):
            rule.next_replicates(most)
    assert Rule(0.5, 100, growth=2.0).next_replicates(10) == 20


def test_a_rule_the_user_cannot_run_says_why() -> None:
    with pytest.raises(AblateError, match="margin"):
        Rule(0.0, 20)
    with pytest.raises(AblateError, match="max_replicates"):
        Rule(0.5, 3, start_replicates=4)
