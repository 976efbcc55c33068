"""Study files: valid ones parse into frozen dataclasses, invalid ones fail with a clear message."""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ablate.errors import StudyFileError
from ablate.study import load_study, parse_study
from tests.helpers import ROOT, run_cli

MINIMAL = """\
name: t
factors:
  batch_norm: [true, false]
  activation: [relu, elu]
"""


def test_shipped_studies_parse_to_the_reference_grid() -> None:
    for name in ("reference", "quick"):
        study = load_study(ROOT / "studies" / f"{name}.yaml")
        assert study.n_cells == 32
        assert study.factor_names == ("batch_norm", "dropout", "spatial_attention", "activation")
        assert study.factor("activation").levels == ("elu", "relu", "selu", "sigmoid")
        assert study.seed == 768
    reference = load_study(ROOT / "studies" / "reference.yaml")
    assert reference.model.builder_kwargs()["units"] == (35, 25, 15, 5)
    assert reference.training.epochs == 25
    assert reference.training.batch_size == 64
    assert reference.data.dataset == "mnist"
    # the reference decay: d = 2 (0.005 - 0.0001) / 25 per step
    assert reference.training.decay_rate() == pytest.approx(2 * (0.005 - 0.0001) / 25)


def test_defaults_fill_in_and_the_study_is_frozen() -> None:
    study = parse_study(MINIMAL)
    assert study.model.builder_kwargs()["units"] == (35, 25, 15, 5)
    assert study.training.learning_rate == 0.005
    assert study.replicates == 1
    assert study.results_dir == Path("results") / "t"
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.name = "other"  # type: ignore[misc]


def test_resolved_study_round_trips() -> None:
    study = parse_study(MINIMAL + "replicates: 3\ntraining: {epochs: 4, decay: 0.001}\n")
    again = parse_study(study.to_yaml())
    assert again == study
    assert again.fingerprint() == study.fingerprint()


def test_fingerprint_ignores_replicates_but_not_training() -> None:
    base = parse_study(MINIMAL)
    assert parse_study(MINIMAL + "replicates: 5\n").fingerprint() == base.fingerprint()
    assert parse_study(MINIMAL + "training: {epochs: 3}\n").fingerprint() != base.fingerprint()


def test_levels_are_ordered_for_analysis() -> None:
    study = parse_study(MINIMAL.replace("relu, elu", "sigmoid, elu") + "")
    assert study.factor("batch_norm").ordered_levels() == (False, True)
    assert study.factor("activation").ordered_levels() == ("sigmoid", "elu")  # as listed
    numeric = parse_study("name: n\nfactors: {depth: [3, 1, 2]}\n")
    assert numeric.factor("depth").ordered_levels() == (1, 2, 3)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("name: t\nfactors: {activation: [relu, elu]\n", ["not valid YAML", "line 3"]),
        ("- a\n- b\n", ["top level", "expected a mapping", "found a list"]),
        (MINIMAL + "trainng: {epochs: 2}\n", ["trainng", "line 5", "did you mean 'training'"]),
        (MINIMAL + "training:\n  epochs: -3\n", ["training.epochs", "line 6", "integer", "-3"]),
        (MINIMAL + "training:\n  epochs: two\n", ["training.epochs", "found the text 'two'"]),
        (MINIMAL + "training:\n  batch_size: 0\n", ["training.batch_size", "from 1"]),
        (MINIMAL + "data: {train_size: 0}\n", ["data.train_size", "from 1"]),
        (MINIMAL + "model: {units: [35, 0, 15]}\n", ["model.units", "at least 3 integers"]),
        ("name: t\nfactors: {activation: [relu, swoosh]}\n", ["factors.activation", "swoosh"]),
        ("name: t\nfactors: {activation: []}\n", ["factors.activation", "non-empty list"]),
        ("name: t\nfactors: {activation: [relu, relu]}\n", ["listed twice"]),
        ("name: t\nfactors: {batch_norm: [true, 1]}\n", ["batch_norm", "true or false"]),
        ("name: t\nfactors: {batchnorm: [true, false]}\n", ["did you mean 'batch_norm'"]),
        ("name: t\nfactors: {activation: [relu]}\n", ["at least 2 levels"]),
        ("factors: {activation: [relu, elu]}\n", ["required key 'name' is missing"]),
        ("name: a b\nfactors: {activation: [relu, elu]}\n", ["name", "letters, digits"]),
        ("name: t\nname: u\nfactors: {activation: [relu, elu]}\n", ["appears twice"]),
        (MINIMAL + "replicates: 100000000000000000000\n", ["replicates", "1e+20"]),
        (MINIMAL + "training: {learning_rate: .inf}\n", ["learning_rate", "inf"]),
        (MINIMAL + "analysis: {baseline: {activation: tanh}}\n", ["baseline", "its levels"]),
        (MINIMAL + "model: {depth: 2}\nfactors2: 1\n", ["factors2", "unknown key"]),
    ],
)
def test_invalid_study_names_file_key_expectation_and_finding(
    text: str, fragments: list[str]
) -> None:
    with pytest.raises(StudyFileError) as info:
        parse_study(text, source="bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: ")
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message  # one paragraph


def test_factor_cannot_also_be_a_fixed_model_setting() -> None:
    with pytest.raises(StudyFileError, match="both a factor and fixed under model"):
        parse_study("name: t\nmodel: {depth: 2}\nfactors: {depth: [1, 2]}\n")


def test_grid_too_large_is_refused() -> None:
    text = "name: t\nreplicates: 10000\nfactors: {depth: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}\n"
    with pytest.raises(StudyFileError, match="110,000 trials"):
        parse_study(text)


def test_missing_file_and_folder_without_study(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError, match="no such study file"):
        load_study(tmp_path / "nope.yaml")
    with pytest.raises(StudyFileError, match=r"no study\.yaml"):
        load_study(tmp_path)


def test_cli_exits_2_with_the_message_before_any_training(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "training:\n  epochs: 0\n")
    proc = run_cli("run", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert "bad.yaml: training.epochs (line 6): expected an integer from 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()  # nothing started


# ---------------------------------------------------------------------------------------------
# Property-based: malformed study files never crash ablate; each gets exit 2 and one paragraph

VALID = {
    "name": "fuzz",
    "model": {"units": [8, 6, 4, 2], "depth": 1},
    "factors": {"batch_norm": [True, False], "activation": ["relu", "sigmoid"]},
    "training": {"epochs": 1, "batch_size": 32, "learning_rate": 0.005},
    "data": {"dataset": "mnist-sample", "train_size": 64, "test_size": 32},
    "replicates": 1,
    "seed": 768,
    "run": {"retries": 1},
}
PATHS = [
    ("name",), ("model",), ("model", "units"), ("model", "depth"), ("model", "builder"),
    ("factors",), ("factors", "batch_norm"), ("factors", "activation"), ("training",),
    ("training", "epochs"), ("training", "batch_size"), ("training", "learning_rate"),
    ("training", "decay"), ("training", "optimizer"), ("data",), ("data", "dataset"),
    ("data", "train_size"), ("data", "path"), ("replicates",), ("seed",), ("results",),
    ("run", "workers"), ("run", "retries"), ("run", "heartbeat_seconds"), ("analysis",),
]  # fmt: skip
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.booleans()), max_size=4),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


def _run_dry(text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`ablate run FILE --dry-run` in this process: the exit code and what it printed."""
    from ablate.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.yaml"
        path.write_text(text, encoding="utf-8")
        code = main(["run", str(path), "--dry-run"])
    err = capsys.readouterr().err
    return code, err


def _assert_clean_refusal(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ablate: error: ")  # one paragraph
    assert "study.yaml" in lines[0]  # it names the file


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node.get(key), dict) else node
        if not isinstance(node, dict):
            return out
    node[path[-1]] = value
    return out


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(path=st.sampled_from(PATHS), value=JUNK)
def test_any_value_anywhere_is_accepted_or_refused_cleanly(
    path: tuple[str, ...], value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run_dry(yaml.safe_dump(_set(VALID, path, value), allow_unicode=True), capsys)
    assert code in (0, 2), err
    if code == 2:
        _assert_clean_refusal(code, err)


@FUZZ
@given(
    key=st.text(min_size=1, max_size=20),
    section=st.sampled_from([(), ("training",), ("data",), ("model",), ("run",)]),
)
def test_unknown_keys_are_refused(
    key: str, section: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(VALID)
    node = data
    for part in section:
        node = node[part]
    if key in node or key in ("results", "description", "analysis", "builder"):
        return
    node[key] = 1
    code, err = _run_dry(yaml.safe_dump(data, allow_unicode=True), capsys)
    _assert_clean_refusal(code, err)
    assert "unknown key" in err or "not a parameter" in err


@FUZZ
@given(missing=st.sampled_from(["name", "factors"]))
def test_missing_required_keys_are_refused(
    missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {k: v for k, v in VALID.items() if k != missing}
    code, err = _run_dry(yaml.safe_dump(data), capsys)
    _assert_clean_refusal(code, err)
    assert f"'{missing}' is missing" in err


@FUZZ
@given(
    factor=st.sampled_from(["batch_norm", "activation"]), empty=st.sampled_from([[], {}, None, ""])
)
def test_empty_levels_are_refused(
    factor: str, empty: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run_dry(yaml.safe_dump(_set(VALID, ("factors", factor), empty)), capsys)
    _assert_clean_refusal(code, err)


@FUZZ
@given(doc=st.one_of(JUNK.filter(lambda v: not isinstance(v, dict)), st.text(max_size=200)))
def test_yaml_that_is_not_a_mapping_or_not_yaml_is_refused(
    doc: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True)
    code, err = _run_dry(text, capsys)
    _assert_clean_refusal(code, err)


@FUZZ
@given(
    field=st.sampled_from([("training", "epochs"), ("training", "batch_size"), ("replicates",),
                           ("data", "train_size"), ("model", "depth"), ("seed",)]),
    huge=st.integers(min_value=10**12, max_value=10**60),
)  # fmt: skip
def test_huge_numbers_are_refused(
    field: tuple[str, ...], huge: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run_dry(yaml.safe_dump(_set(VALID, field, huge)), capsys)
    _assert_clean_refusal(code, err)


def test_the_fuzzed_base_study_is_itself_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run_dry(yaml.safe_dump(VALID), capsys)
    assert code == 0, out


def test_yaml_tags_cannot_run_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    evil = f'!!python/object/apply:os.system ["touch {marker}"]\n'
    for text in (evil, "name: !!python/object/apply:os.getcwd []\nfactors: {}\n"):
        code, err = _run_dry(text, capsys)
        _assert_clean_refusal(code, err)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Tasks, any builder parameter, data sources


def test_the_task_defaults_from_the_builder_and_the_response_from_the_task() -> None:
    vae = parse_study(MINIMAL)
    assert vae.task == "reconstruction" and vae.analysis.response == "test_loss"
    user = parse_study(
        "name: u\ntask: classification\nmodel: {builder: 'pkg.mod:build'}\n"
        "factors: {width: [8, 16]}\n"
    )
    assert user.analysis.response == "test_accuracy"
    assert parse_study(user.to_yaml()) == user  # the resolved study round-trips


def test_model_may_fix_any_parameter_of_its_builder_for_every_cell() -> None:
    study = parse_study(
        "name: t\nmodel: {activation: elu, batch_norm: true}\n"
        "factors: {dropout: [true, false], spatial_attention: [true, false]}\n"
    )
    kwargs = study.model.builder_kwargs()
    assert kwargs["activation"] == "elu" and kwargs["batch_norm"] is True
    assert "dropout" not in kwargs  # a factor: each cell gives it
    assert kwargs["output_batch_norm"] is True  # the reference's default, filled in
    assert parse_study(study.to_yaml()) == study


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (MINIMAL + "task: classification\n", ["task", "vae model serves reconstruction"]),
        (MINIMAL + "task: ranking\n", ["task", "one of reconstruction, classification"]),
        (MINIMAL.replace("batch_norm", "units") + "", ["units", "not a parameter", "factor"]),
        ("name: t\nmodel: {activation: elu}\nfactors: {activation: [relu, elu]}\n",
         ["both a factor and fixed under model"]),
        (MINIMAL + "analysis: {response: test_accuracy}\n",
         ["analysis.response", "reconstruction task", "test_recon_loss"]),
        (MINIMAL + "data: {dataset: npz}\n", ["data.path", "reads a file"]),
        (MINIMAL + "data: {dataset: mnist-sample, path: x.npz}\n", ["does not read a path"]),
        (MINIMAL + "data: {dataset: mnist, options: {n: 3}}\n", ["takes no options"]),
        (MINIMAL + "data: {dataset: imagenet}\n", ["data.dataset", "mnist, mnist-sample"]),
        (MINIMAL + "model: {output_batch_norm: maybe}\n", ["output_batch_norm", "true or false"]),
    ],
)  # fmt: skip
def test_tasks_parameters_and_sources_are_checked(text: str, fragments: list[str]) -> None:
    with pytest.raises(StudyFileError) as info:
        parse_study(text, source="bad.yaml")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_a_user_dataset_function_takes_any_options() -> None:
    study = parse_study(
        MINIMAL + "data: {dataset: 'tests.user_regression:linear', options: {n: 90, noise: 0.5}}\n"
    )
    assert dict(study.data.options) == {"n": 90, "noise": 0.5}


# ---------------------------------------------------------------------------------------------
# design: which runs of the grid to train

FOUR = """\
name: t
factors:
  batch_norm: [true, false]
  dropout: [true, false]
  spatial_attention: [true, false]
  output_batch_norm: [true, false]
"""
WIDE = FOUR + "  activation: [relu, elu, selu]\n"


def test_designs_parse_and_round_trip() -> None:
    study = parse_study(FOUR + "design: {type: fractional, resolution: IV, fold: dropout}\n")
    assert study.design.type == "fractional" and study.design.resolution == 4
    assert study.design.fold == ("dropout",)
    assert parse_study(study.to_yaml()) == study
    assert parse_study(FOUR).design.type == "full"
    assert parse_study(FOUR + "design: full\n").design == parse_study(FOUR).design
    optimal = parse_study(WIDE + "design: {type: optimal, runs: 10, augment: 2}\n")
    assert (optimal.design.runs, optimal.design.model, optimal.design.augment) == (10, "main", (2,))
    generators = parse_study(FOUR + "design: {type: fractional, generators: 'D = -ABC'}\n")
    assert generators.design.generators == ("D = -ABC",)
    # the design is not part of the experiment: any design's trials mix with the others'
    assert optimal.fingerprint() == parse_study(WIDE).fingerprint()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (WIDE + "design: {type: fractional, resolution: 3}\n",
         ["design.type (line 8)", "every factor at two levels", "activation (3 levels)"]),
        (FOUR + "design: {type: fractional}\n", ["exactly one of resolution", "none of them"]),
        (FOUR + "design: {type: fractional, runs: 8, resolution: 3}\n",
         ["resolution and runs"]),
        (FOUR + "design: {type: fractional, runs: 6}\n",
         ["design.runs (line 7)", "power of two from 8 to 8", "the number 6"]),
        (FOUR + "design: {type: fractional, resolution: IX}\n", ["III, IV, V", "'IX'"]),
        (FOUR + "design: {type: fractional, generators: [D = AD]}\n",
         ["design.generators", "contains it", "letters: A = batch_norm"]),
        (FOUR + "design: {type: fractional, resolution: 3, fold: [wings]}\n",
         ["design.fold", "'all'", "the text 'wings'"]),
        (FOUR + "design: {type: fractional, resolution: 3, model: main}\n",
         ["design.model", "does not apply to a fractional design"]),
        (FOUR + "design: {type: optimal}\n", ["design.runs", "from 5", "to 16"]),
        (FOUR + "design: {type: optimal, runs: 3}\n", ["design.runs", "from 5 to 16"]),
        (FOUR + "design: {type: optimal, runs: 12, augment: [5]}\n",
         ["design.augment", "more than the 16 cells"]),
        (FOUR + "design: {type: optimal, runs: 12, model: quadratic}\n",
         ["design.model", "main, main+2fi"]),
        (FOUR + "design: {type: plackett-burman, runs: 10}\n", ["design.runs", "8, 12, 16"]),
        (FOUR + "design: {type: definitive-screening}\n", ["no factor has three numeric"]),
        (FOUR + "design: {type: latin}\n", ["design.type", "fractional, plackett-burman"]),
        (FOUR + "design: {type: fractional, runs: 8, table: [[true]]}\n",
         ["design.table", "each a list of 4 levels"]),
    ],
)  # fmt: skip
def test_invalid_designs_name_the_key_and_what_was_expected(
    text: str, fragments: list[str]
) -> None:
    with pytest.raises(StudyFileError) as info:
        parse_study(text, source="bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


DESIGN_VALID = {
    **VALID,
    "factors": {name: [True, False] for name in ("batch_norm", "dropout", "spatial_attention",
                                                 "output_batch_norm")},
    "design": {"type": "fractional", "resolution": 3},
}  # fmt: skip
DESIGN_PATHS = [("design",)] + [
    ("design", k)
    for k in ("type", "resolution", "runs", "generators", "fold", "model", "augment", "table")
]


@FUZZ
@given(path=st.sampled_from(DESIGN_PATHS), value=JUNK)
def test_any_design_value_is_accepted_or_refused_cleanly(
    path: tuple[str, ...], value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run_dry(yaml.safe_dump(_set(DESIGN_VALID, path, value), allow_unicode=True),
                         capsys)  # fmt: skip
    assert code in (0, 2), err
    if code == 2:
        _assert_clean_refusal(code, err)
