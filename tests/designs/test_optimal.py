"""D-optimal designs: pydoe's own report, the determinant by hand, and augmentation against a
brute-force search."""

from __future__ import annotations

import itertools

import numpy as np
import pydoe
import pytest

from ablate.designs.build import candidates
from ablate.designs.optimal import augment, d_efficiency, d_optimal
from ablate.errors import AblateError
from ablate.study.settings import Factor

REFERENCE = (
    Factor("batch_norm", (True, False)),
    Factor("dropout", (True, False)),
    Factor("spatial_attention", (True, False)),
    Factor("activation", ("elu", "relu", "selu", "sigmoid")),
)


def test_twelve_runs_for_the_reference_main_effects() -> None:
    _, model = candidates(REFERENCE, "main")
    assert model.shape == (32, 7)  # intercept, 3 two-level columns, 3 for the activation
    choice = d_optimal(model, 12, seed=768)
    assert len(choice.indices) == len(set(choice.indices)) == 12 and choice.parameters == 7
    x = model[list(choice.indices)]
    # the D-efficiency the library reports for its own design, by its definition and by hand
    by_hand = 100 * np.linalg.det(x.T @ x / 12) ** (1 / 7)
    assert choice.d_efficiency == pytest.approx(pydoe.d_efficiency(x), rel=1e-9)
    assert choice.d_efficiency == pytest.approx(by_hand, rel=1e-9)
    # pydoe's DETMAX on the candidates in grid order reaches the same optimum (65.07%)
    _, info = pydoe.optimal_design(model[:, 1:], n_points=12, degree=1, method="detmax")
    assert choice.d_efficiency == pytest.approx(info["D_eff"], rel=1e-9)
    assert choice.d_efficiency == pytest.approx(65.068, abs=1e-3)
    assert d_optimal(model, 12, seed=768) == choice  # deterministic from the seed


def test_main_and_two_factor_interactions_in_24_runs() -> None:
    _, model = candidates(REFERENCE, "main+2fi")
    assert model.shape[1] == 19  # 1 + 6 + 3 + 9
    choice = d_optimal(model, 24, seed=1)
    assert choice.d_efficiency == pytest.approx(49.792, abs=1e-3)  # pydoe's and pyoptex's optimum
    assert d_efficiency(model[list(choice.indices)]) == pytest.approx(choice.d_efficiency)


def test_too_few_or_too_many_runs_are_refused() -> None:
    _, model = candidates(REFERENCE, "main")
    with pytest.raises(AblateError, match="cannot estimate the model's 7 coefficients"):
        d_optimal(model, 6, seed=0)
    with pytest.raises(AblateError, match="the grid has 32"):
        d_optimal(model, 33, seed=0)


def test_augmentation_keeps_the_runs_and_finds_the_best_addition() -> None:
    _, model = candidates(REFERENCE, "main")
    base = list(d_optimal(model, 8, seed=3).indices)
    added = augment(model, base, 2, seed=4)
    assert len(added) == 2 and not set(added) & set(base)
    # brute force over every pair of unused cells: none gives a larger det(X'X)
    unused = [i for i in range(len(model)) if i not in base]

    def det(rows: list[int]) -> float:
        x = model[rows]
        return float(np.linalg.det(x.T @ x))

    best = max(det(base + list(pair)) for pair in itertools.combinations(unused, 2))
    assert det(base + list(added)) == pytest.approx(best, rel=1e-9)
    assert det(base + list(added)) > det(base)
    with pytest.raises(AblateError, match="only 24 are left"):
        augment(model, base, 25, seed=0)
