"""A study's runs: the design's cells, stage by stage, with trial keys that extensions keep."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from ablate.designs.aliases import structure
from ablate.designs.build import infos_of
from ablate.errors import AblateError
from ablate.execution.dryrun import describe_design
from ablate.study import parse_study
from ablate.study.grid import expand_trials, trial_key
from ablate.study.runs import design_runs, with_table

SEVEN = """\
name: seven
factors:
  batch_norm: [true, false]
  dropout: [true, false]
  spatial_attention: [true, false]
  output_batch_norm: [true, false]
  depth: [1, 2]
  latent_dim: [2, 4]
  kl_weight: [0.001, 0.01]
"""
REFERENCE = """\
name: ref
factors:
  batch_norm: [true, false]
  dropout: [true, false]
  spatial_attention: [true, false]
  activation: [elu, relu, selu, sigmoid]
"""


def _structure(study_text: str):  # type: ignore[no-untyped-def]
    study = parse_study(study_text)
    runs = design_runs(study).runs
    frame = pd.DataFrame(list(runs), columns=list(study.factor_names))
    return study, runs, structure(frame, infos_of(study.factors))


def test_a_resolution_iv_fraction_of_seven_factors_has_16_runs() -> None:
    study, runs, found = _structure(SEVEN + "design: {type: fractional, resolution: IV}\n")
    assert len(runs) == 16 and len(set(runs)) == 16
    assert found.kind == "regular fraction" and found.resolution == 4
    assert found.relation.word_length_pattern() == [0, 7, 0, 0, 0]
    trials = expand_trials(study)
    assert len(trials) == 16
    # a run's key is the key its cell has in the full grid: results mix across designs
    assert trials[3].key == trial_key(trials[3].cell.as_dict(), 0)


def test_a_fold_over_appends_new_runs_and_keeps_every_key() -> None:
    before = parse_study(SEVEN + "design: {type: fractional, resolution: IV}\nreplicates: 2\n")
    after = parse_study(
        SEVEN + "design: {type: fractional, resolution: IV, fold: [batch_norm]}\nreplicates: 2\n"
    )
    assert before.fingerprint() == after.fingerprint()  # the same experiment: results mix
    old = {t.key: t for t in expand_trials(before)}
    new = {t.key: t for t in expand_trials(after)}
    assert len(old) == 32 and len(new) == 64 and set(old) <= set(new)
    for key, t in old.items():
        assert new[key].cell == t.cell and new[key].seed == t.seed  # same index, levels, seed
    built = design_runs(after)
    assert [len(s.runs) for s in built.stages] == [16, 16]
    frame = pd.DataFrame(list(built.runs), columns=list(after.factor_names))
    found = structure(frame, infos_of(after.factors))
    # folding on one factor frees its two-factor interactions: batch_norm×anything is clear
    assert found.relation.p == 2 and found.resolution == 4
    named = [set(chain.replace(" = ", "×").split("×")) for chain in found.chains]
    assert named and all("batch_norm" not in names for names in named)
    assert "batch_norm×dropout" in found.clear


def test_a_full_fold_over_of_an_even_fraction_adds_nothing_and_is_refused() -> None:
    study = parse_study(SEVEN + "design: {type: fractional, resolution: IV, fold: [all]}\n")
    with pytest.raises(AblateError, match=r"adds no run.*fold over on one factor"):
        design_runs(study)


def test_a_resolution_iii_fraction_folded_over_becomes_resolution_iv() -> None:
    _, runs, found = _structure(SEVEN + "design: {type: fractional, runs: 8, fold: all}\n")
    assert len(runs) == 16 and found.resolution == 4


def test_explicit_generators_by_letter() -> None:
    text = SEVEN + "design: {type: fractional, generators: [E = ABC, F = BCD, G = ACD]}\n"
    study, runs, found = _structure(text)
    assert study.design.generators == ("E = ABC", "F = BCD", "G = ACD")
    assert len(runs) == 16 and found.defining_relation() == (
        "I = ABCE = ABFG = ACDG = ADEF = BCDF = BDEG = CEFG"  # Montgomery's seven words
    )


def test_plackett_burman_runs() -> None:
    _, runs, found = _structure(SEVEN + "design: {type: plackett-burman, runs: 12}\n")
    assert len(runs) == 12 and found.kind == "orthogonal two-level"


def test_an_optimal_design_of_the_reference_factors() -> None:
    _, runs, found = _structure(REFERENCE + "design: {type: optimal, runs: 12}\n")
    assert len(runs) == 12 and len(set(runs)) == 12
    assert found.kind == "general" and found.d_efficiency == pytest.approx(65.068, abs=1e-3)
    assert any(line.startswith("main effects: estimable") for line in found.estimable)
    more = parse_study(REFERENCE + "design: {type: optimal, runs: 12, augment: [4]}\n")
    built = design_runs(more)
    assert built.runs[:12] == runs and len(set(built.runs)) == 16  # the first 12 stay
    assert "augmentation 1 (+4 runs)" in built.description


def test_a_definitive_screening_design() -> None:
    text = (
        "name: dsd\nfactors:\n  depth: [1, 2, 3]\n  latent_dim: [2, 4, 8]\n"
        "  units_hint: [1, 2, 3]\n  kl_weight: [0.001, 0.01, 0.1]\n  batch_norm: [true, false]\n"
        "model: {builder: 'tests.user_regression:mlp'}\ndesign: definitive-screening\n"
    ).replace("units_hint", "width")
    study = parse_study(text)
    runs = design_runs(study).runs
    assert len(runs) == len(set(runs)) >= 2 * 4 + 1
    assert {r[0] for r in runs} == {1, 2, 3}


def test_the_resolved_study_lists_the_runs_and_a_run_checks_them() -> None:
    study = parse_study(SEVEN + "design: {type: fractional, resolution: IV}\n")
    saved = with_table(study)
    again = parse_study(saved.to_yaml())
    assert again.design.table == design_runs(study).runs == design_runs(again).runs
    edited = dataclasses.replace(
        again, design=dataclasses.replace(again.design, table=again.design.table[::-1])
    )
    with pytest.raises(AblateError, match=r"design\.table lists 16 runs that differ"):
        design_runs(edited)


def test_the_dry_run_describes_the_design() -> None:
    study = parse_study(SEVEN + "design: {type: fractional, resolution: IV, fold: [depth]}\n")
    text = "\n".join(describe_design(study))
    for fragment in (
        "2^(7-3) fraction of resolution IV in 16 runs, minimum aberration",
        "fold-over on depth: 16 new runs",
        "2^(7-2) fraction, resolution IV: 32 distinct runs of the 128-cell grid",
        "defining relation: I = ",
        "main effects: estimable (8 coefficients from 32 rows; 24 residual df)",
        "main effects and two-factor interactions: NOT estimable",
    ):
        assert fragment in text, fragment
    assert describe_design(parse_study(REFERENCE)) == []


def test_an_optimal_design_with_correlated_terms_reports_them() -> None:
    from ablate.designs.aliases import correlations
    from ablate.designs.matrix import build_matrix

    study, runs, found = _structure(REFERENCE + "design: {type: optimal, runs: 9}\n")
    assert len(runs) == 9 and found.max_correlation > 0.05
    frame = pd.DataFrame(list(runs), columns=list(study.factor_names))
    table = correlations(build_matrix(frame, list(infos_of(study.factors)), "sum", 1))
    assert table["r"].abs().max() == pytest.approx(found.max_correlation)
    x = build_matrix(frame, list(infos_of(study.factors)), "sum", 1).matrix
    a, b, r = table.iloc[0]
    assert r == pytest.approx(float(pd.Series(x[a]).corr(pd.Series(x[b]))))  # Pearson's r
    assert f"up to |r| = {found.max_correlation:.3f}" in "\n".join(found.lines())
