"""The grid: cells in study-file order, stable trial keys, seeds shared across a replicate."""

from __future__ import annotations

import dataclasses

from ablate.study import load_study
from ablate.study.grid import cells, expand_trials, trial_key
from tests.helpers import ROOT


def test_reference_grid_has_32_cells_last_factor_fastest() -> None:
    study = load_study(ROOT / "studies" / "reference.yaml")
    grid = cells(study)
    assert len(grid) == 32 and [c.index for c in grid] == list(range(32))
    assert grid[0].as_dict() == {
        "batch_norm": True, "dropout": True, "spatial_attention": True, "activation": "elu",
    }  # fmt: skip
    assert grid[1].as_dict()["activation"] == "relu"
    assert grid[-1].label == "-batch_norm -dropout -spatial_attention activation=sigmoid"
    assert len({c.label for c in grid}) == 32


def test_trial_keys_are_pinned_so_that_resumes_survive_upgrades() -> None:
    study = load_study(ROOT / "studies" / "reference.yaml")
    trials = expand_trials(study)
    # Pinned: changing how keys are derived would orphan every stored result.
    assert trials[0].key == "d9a3788d4d4ee850"
    assert trials[31].key == "0445c9502e5b3001"
    # independent of the order in which factors are listed
    levels = trials[0].cell.as_dict()
    assert trial_key(dict(reversed(list(levels.items()))), 0) == trials[0].key


def test_replicates_share_seeds_across_cells_and_come_in_order() -> None:
    study = dataclasses.replace(load_study(ROOT / "studies" / "quick.yaml"), replicates=3)
    trials = expand_trials(study)
    assert len(trials) == 96 and len({t.key for t in trials}) == 96
    assert [t.replicate for t in trials[:32]] == [0] * 32  # whole replicates first
    assert {t.seed for t in trials if t.replicate == 2} == {768 + 2}


def test_a_designs_runs_keep_the_keys_their_cells_have_in_the_full_grid() -> None:
    quick = load_study(ROOT / "studies" / "quick.yaml")
    full = {t.cell.levels: t.key for t in expand_trials(quick)}
    optimal = dataclasses.replace(
        quick, design=dataclasses.replace(quick.design, type="optimal", runs=12)
    )
    trials = expand_trials(optimal)
    assert len(trials) == 12 and [t.cell.index for t in trials] == list(range(12))
    for t in trials:
        assert t.key == full[t.cell.levels]  # results mix with the full grid's
        assert t.seed == 768
