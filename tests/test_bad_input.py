"""Bad input never ends in a traceback: generated study files and datasets get exit 0 or 2, and
exit 1 (a bug in ablate) comes only from the handlers of unexpected exceptions.

The study files are generated from the declarations ablate validates against (the builders'
and data sources' parameters, the settings' fields), so a key added to a declaration is
fuzzed without touching this file. Malformed tables are fuzzed in tests/stats.
"""

from __future__ import annotations

import ast
import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ablate.cli import main
from ablate.data.dataset import ARRAYS
from ablate.models.registry import VAE
from ablate.study.run_settings import RunSettings
from ablate.study.settings import DataSettings, TrainingSettings
from tests.helpers import ROOT

BASE = {
    "name": "fuzz",
    "model": {"units": [8, 6, 4, 2], "depth": 1},
    "factors": {"batch_norm": [True, False], "activation": ["relu", "sigmoid"]},
    "training": {"epochs": 1, "batch_size": 32},
    "data": {"dataset": "mnist-sample", "train_size": 64, "test_size": 32},
}
FACTORS = set(BASE["factors"])
DECLARED = [
    *(("model", p.name) for p in VAE.parameters or () if p.name not in FACTORS),
    *(("training", name) for name in TrainingSettings.__dataclass_fields__),
    *(("run", name) for name in RunSettings.__dataclass_fields__),
    *(("data", name) for name in DataSettings.__dataclass_fields__),
]
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.one_of(st.integers(-5, 5000), st.text(max_size=4)), max_size=5),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _dry_run(text: str, capsys: pytest.CaptureFixture[str], folder: Path | None = None) -> tuple[
        int, str]:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(folder or tmp) / "study.yaml"
        path.write_text(text, encoding="utf-8")
        code = main(["run", str(path), "--dry-run"])
    return code, capsys.readouterr().err


def _clean(code: int, err: str) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err and "unexpected error" not in err
    if code == 2:
        assert err.startswith("ablate: error: ") and "study.yaml" in err.splitlines()[0]


def test_every_declared_key_is_fuzzed() -> None:
    assert ("model", "kl_weight") in DECLARED and ("training", "learning_rate") in DECLARED
    assert ("run", "heartbeat_seconds") in DECLARED and ("data", "options") in DECLARED


@FUZZ
@given(path=st.sampled_from(DECLARED), value=JUNK)
def test_any_value_of_any_declared_key_is_accepted_or_refused_cleanly(
    path: tuple[str, str], value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    study = copy.deepcopy(BASE)
    study.setdefault(path[0], {})[path[1]] = value
    if path == ("model", "units") and isinstance(value, list) and sum(
            v for v in value if isinstance(v, int)) > 2000:  # fmt: skip
        return  # valid, but a model of that size is no fast test
    _clean(*_dry_run(yaml.safe_dump(study, allow_unicode=True), capsys))


# ---------------------------------------------------------------------------------------------
# Datasets: any .npz file is taken or refused cleanly

SHAPES = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)
DTYPES = st.sampled_from(["float32", "float64", "uint8", "int64", "bool", "U3", "complex64"])


@st.composite
def npz_contents(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """The four arrays (some missing, renamed or extra), any shape and dtype, NaN sometimes."""
    out: dict[str, np.ndarray] = {}
    n = draw(st.integers(0, 6))
    example = draw(SHAPES)
    for name in ARRAYS:
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        shape = (n, *example) if name.startswith("x") else (n,)
        if draw(st.integers(0, 4)) == 0:
            shape = draw(SHAPES)
        array = np.zeros(shape, dtype=draw(DTYPES))
        if array.size and array.dtype.kind == "f" and draw(st.booleans()):
            array.flat[0] = np.nan
        out[name] = array
    if draw(st.booleans()):
        out["class_names"] = np.array(["a", "b"])
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(arrays=npz_contents(), task=st.sampled_from(["reconstruction", "classification"]))
def test_any_npz_dataset_is_taken_or_refused_cleanly(
    arrays: dict[str, np.ndarray], task: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "data.npz", **arrays)
        builder = "tests.user_models:small_cnn" if task == "classification" else "vae"
        study = {
            "name": "npz", "task": task, "model": {"builder": builder},
            "factors": {"activation": ["relu", "elu"]},
            "data": {"dataset": "npz", "path": "data.npz"},
        }  # fmt: skip
        if builder == "vae":
            study["model"].update(units=[4, 4, 4], depth=1)
        _clean(*_dry_run(yaml.safe_dump(study), capsys, Path(tmp)))


# ---------------------------------------------------------------------------------------------
# Exit code 1 means a bug in ablate, and nothing else does


def _returns(tree: ast.AST, value: int) -> list[ast.AST]:
    """Nodes that end a command or a worker with ``value``: return N, sys.exit(N), os._exit(N),
    and assignments of N to a variable named like an exit code."""
    found = []
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Return):
            target = node.value
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("exit", "_exit"):
            target = node.args[0] if node.args else None
        if isinstance(target, ast.Constant) and target.value == value:
            found.append(node)
    return found


def test_only_the_handlers_of_unexpected_exceptions_exit_1() -> None:
    """In the CLI, the one ``return 1`` is in the ``except Exception`` after ``except
    AblateError``; a worker's bug code is set only in its ``except Exception`` (and the pool
    reads it as "stopped for a reason its last message gave"); every
    user-fixable error is an AblateError, whose exit code is 2."""
    cli = ast.parse((ROOT / "ablate" / "cli" / "__init__.py").read_text())
    ones = _returns(cli, 1)
    assert len(ones) == 1
    handlers = [h for h in ast.walk(cli) if isinstance(h, ast.ExceptHandler)]
    bug = next(h for h in handlers if any(n is ones[0] for n in ast.walk(h)))
    assert isinstance(bug.type, ast.Name) and bug.type.id == "Exception"
    execution = ROOT / "ablate" / "execution"
    uses = [
        line.strip()
        for module in ("worker.py", "pool.py")
        for line in (execution / module).read_text().splitlines()
        if "EXIT_BUG" in line and not line.lstrip().startswith(("from", "#"))
    ]
    pool = "if not ended and code in (0, EXIT_USER_ERROR, EXIT_BUG, EXIT_INTERRUPTED):"
    assert sorted(uses) == sorted(["EXIT_BUG = 1", "return EXIT_BUG", pool])
    tree = ast.parse((execution / "worker.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", "") == "_unexpected"]  # fmt: skip
    assert len(calls) == 1  # the one place a worker's bug code comes from ...
    handlers = [h for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler)]
    around = next(h for h in handlers if any(n is calls[0] for n in ast.walk(h)))
    assert isinstance(around.type, ast.Name) and around.type.id == "Exception"  # ... is this
    from ablate.errors import AblateError, StudyFileError

    assert AblateError.exit_code == StudyFileError.exit_code == 2


def test_no_error_raised_outside_the_cli_names_a_flag() -> None:
    """The library speaks Python: a message of an error raised outside cli/ names an option
    with ablate.errors.option (``margin=D`` for the API, ``--margin D`` on the command line),
    never as a flag in its text."""
    flag = re.compile(r"(?<![\w-])--[a-z]")
    errors = {"AblateError", "StudyFileError"}
    found = []
    for path in (ROOT / "ablate").rglob("*.py"):
        if "cli" in path.relative_to(ROOT / "ablate").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            func = node.func if isinstance(node, ast.Call) else None
            name = getattr(func, "id", None) or getattr(func, "attr", None)
            if name not in errors:
                continue
            calls = [c for c in ast.walk(node) if isinstance(c, ast.Call)]
            spelled = {
                id(a) for c in calls if getattr(c.func, "id", "") == "option" for a in c.args
            }
            for part in ast.walk(node):
                text = part.value if isinstance(part, ast.Constant) else None
                if isinstance(text, str) and flag.search(text) and id(part) not in spelled:
                    found.append(f"{path.relative_to(ROOT)}:{part.lineno}: {text}")
    assert not found, "\n".join(found)
    from ablate.errors import AblateError, option

    err = AblateError(f"{option('margin', 'D')} tests it; {option('repair', 'True')}")
    assert str(err) == "margin=D tests it; repair=True"
    assert err.render(flags=True) == "--margin D tests it; --repair"
