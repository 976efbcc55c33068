"""Tables the analysis cannot treat as usual: each gets a result with a note, or exit 2 with
the reason; never a traceback. Example-based cases first, then generated tables."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ablate.cli import main
from ablate.errors import AblateError
from ablate.results import Results
from ablate.stats.analysis import Analysis, analyze

GRID = pd.DataFrame(
    list(itertools.product([False, True], [False, True], ["relu", "selu"])) * 2,
    columns=["a", "b", "c"],
)


def _analyze(frame: pd.DataFrame, **options: object) -> Analysis:
    results = Results(trials=frame, epochs=None, study=None, source=Path("table.csv"))
    return analyze(results, factors=("a", "b", "c"), response="y", **options)


def test_a_constant_response_is_one_sentence_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(AblateError, match=r"^y is 0.25 in every one of the 16 trials used: no "
                       "factor changes it, so there is nothing to estimate"):  # fmt: skip
        _analyze(GRID.assign(y=0.25))
    path = tmp_path / "t.csv"
    GRID.assign(y=0.25).to_csv(path, index=False)
    code = main(["analyze", str(path), "--factors", "a,b,c", "--response", "y"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "nothing to estimate" in err


def test_a_response_fixed_by_one_factor_is_an_exact_fit_without_tests() -> None:
    analysis = _analyze(GRID.assign(y=np.where(GRID["a"], 2.0, 1.0)))
    effects = analysis.effects.set_index("factor")
    assert effects.loc["a", "effect"] == 1.0  # exactly, not 1 ± rounding
    assert effects.loc["b", "effect"] == 0.0 and effects.loc["c", "effect"] == 0.0
    assert effects["p"].isna().all()  # nothing to test against: no noise
    assert "fits every trial exactly" in " ".join(analysis.notes)
    screening = analysis.screening.set_index("term")
    assert bool(screening.loc["a", "active"]) and not bool(screening.loc["b", "active"])


def test_rows_missing_a_level_or_with_an_infinite_response_are_left_out_and_counted() -> None:
    rng = np.random.default_rng(1)
    frame = GRID.assign(y=rng.normal(size=len(GRID))).astype({"a": object})
    frame.loc[[0, 1], "a"] = None
    frame.loc[5, "y"] = math.inf
    frame.loc[6, "y"] = math.nan
    analysis = _analyze(frame)
    assert analysis.excluded == {
        "missing response": 1,
        "infinite response": 1,
        "missing factor level": 2,
    }
    assert analysis.n_used == len(GRID) - 4


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (GRID.iloc[:0].assign(y=[]), "has no rows"),
        (GRID.assign(y=math.nan), "no usable rows"),
        (GRID.assign(y=1.0, a=True), "factor 'a' has 1 level"),
        (GRID.iloc[[0, 3, 5]].assign(y=[1.0, 2.0, 3.5]), "too few for its 4 coefficients"),
        (GRID.assign(y="x"), "is not numeric"),
    ],
)
def test_what_cannot_be_analysed_is_refused_with_the_reason(
    frame: pd.DataFrame, message: str
) -> None:
    with pytest.raises(AblateError, match=message):
        _analyze(frame)


# ---------------------------------------------------------------------------------------------
# Generated tables: whatever the table holds, `ablate analyze` answers 0 or 2, no traceback

CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(["relu", "selu", ""]),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
)
RESPONSE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.0]),
    st.none(),
)


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    """Two factor columns, each drawing from a few values (junk among them), and a response
    that may be constant, missing, infinite or text; 0 to 24 rows."""
    n = draw(st.integers(0, 24))
    columns = {}
    for name in ("a", "b"):
        pool = draw(st.lists(CELLS, min_size=1, max_size=3))
        columns[name] = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    finite = st.floats(-1e6, 1e6, allow_nan=False)
    y = draw(st.lists(st.one_of(finite, finite, finite, RESPONSE), min_size=n, max_size=n))
    if n and draw(st.booleans()):
        y = [y[0]] * n  # constant
    columns["y"] = y
    columns["rep"] = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))  # a block
    return pd.DataFrame(columns)


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=tables(), suffix=st.sampled_from([".csv", ".parquet"]), fmt=st.sampled_from(
    ["text", "json"]), extra=st.sampled_from([(), ("--margin", "0.5"), ("--block", "rep"),
                                              ("--exclude-unlearned",)]))  # fmt: skip
def test_any_table_is_analysed_or_refused_cleanly(
    frame: pd.DataFrame, suffix: str, fmt: str, extra: tuple[str, ...],
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("table") / f"t{suffix}"
    try:
        frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    except (ValueError, TypeError, OverflowError):  # pyarrow cannot store a mixed column
        return
    code = main(["analyze", str(path), "--factors", "a,b", "--response", "y", "--format", fmt,
                 *extra])  # fmt: skip
    err = capsys.readouterr().err
    from hypothesis import event

    event(f"exit {code}")
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("ablate: error: ") and len(err.strip().splitlines()) == 1
