"""ModelMatrix matrices: the three codings, baselines, interactions and the reference grid."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ablate.designs.matrix import FactorInfo, build_matrix, factor_infos, reference_grid
from ablate.errors import AblateError

FRAME = pd.DataFrame(
    {
        "bn": [False, True, False, True, False, True],
        "act": ["relu", "relu", "elu", "elu", "tanh", "tanh"],
        "depth": [1, 1, 2, 2, 3, 3],
    }
)


def _infos(names: list[str], **kw: Any) -> tuple[FactorInfo, ...]:
    return factor_infos(FRAME, names, **kw)


def test_levels_are_ordered_and_baselines_chosen() -> None:
    bn, act, depth = _infos(["bn", "act", "depth"])
    assert bn.levels == (False, True) and bn.baseline is False and bn.high is True
    assert act.levels == ("elu", "relu", "tanh")  # a bare table: sorted
    assert depth.levels == (1, 2, 3)
    declared = {"act": ("string", ("tanh", "relu", "elu"))}  # a study: as listed
    (act2,) = factor_infos(FRAME, ["act"], declared=declared, baselines={"act": "relu"})
    assert act2.levels == ("tanh", "relu", "elu") and act2.baseline == "relu"
    (bn2,) = factor_infos(FRAME, ["bn"], baselines={"bn": "true"})
    assert bn2.baseline is True and bn2.high is False
    with pytest.raises(AblateError, match="not one of its levels"):
        factor_infos(FRAME, ["act"], baselines={"act": "gelu"})


def test_reference_coding_is_one_hot_without_intercept() -> None:
    d = build_matrix(FRAME, _infos(["bn", "act", "depth"]), "reference")
    assert d.columns == ["bn", "act[elu]", "act[relu]", "act[tanh]", "depth[2]", "depth[3]"]
    assert d.matrix["act[elu]"].tolist() == [0, 0, 1, 1, 0, 0]
    assert (d.matrix[["act[elu]", "act[relu]", "act[tanh]"]].sum(axis=1) == 1).all()
    assert any("measured against depth[1]" in n for n in d.notes)
    only_bool = build_matrix(FRAME, _infos(["bn"]), "reference")
    assert only_bool.columns == ["intercept", "bn"]
    assert any("intercept column was added" in n for n in only_bool.notes)


def test_treatment_and_sum_codings() -> None:
    t = build_matrix(FRAME, _infos(["bn", "act"], baselines={"act": "relu"}), "treatment")
    assert t.columns == ["intercept", "bn", "act[elu]", "act[tanh]"]
    s = build_matrix(FRAME, _infos(["bn", "act"]), "sum")
    assert s.columns == ["intercept", "bn", "act[relu]", "act[tanh]"]
    # on minus off: +1 when on, -1 when off; a level column is -1 at the baseline (elu)
    assert s.matrix["bn"].tolist() == [-1, 1, -1, 1, -1, 1]
    assert s.matrix["act[relu]"].tolist() == [1, 1, -1, -1, 0, 0]


def test_interaction_columns_are_products_without_baselines() -> None:
    d = build_matrix(FRAME, _infos(["bn", "act"]), "reference", interactions=2)
    assert d.columns[-2:] == ["bn:act[relu]", "bn:act[tanh]"]
    np.testing.assert_array_equal(
        d.matrix["bn:act[relu]"], d.matrix["bn"] * (FRAME["act"] == "relu")
    )
    # the level columns of act hold the intercept
    assert [t.label for t in d.terms] == ["bn", "intercept", "bn:act"]
    assert any("simple effect" in n for n in d.notes)
    with pytest.raises(AblateError, match="impossible with 2 factors"):
        build_matrix(FRAME, _infos(["bn", "act"]), "sum", interactions=3)


def test_rows_rebuild_the_same_columns_for_a_reference_grid() -> None:
    infos = _infos(["bn", "act"])
    d = build_matrix(FRAME, infos, "sum", interactions=2)
    grid = reference_grid(infos)
    assert len(grid) == 6
    rows = d.rows(grid)
    assert rows.shape == (6, len(d.columns))
    np.testing.assert_array_equal(d.rows(FRAME), d.matrix.to_numpy())
