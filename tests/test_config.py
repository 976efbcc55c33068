"""Study files: valid ones parse into frozen dataclasses, invalid ones fail with a clear message."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ablate.config import load_study, parse_study
from ablate.errors import StudyFileError
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
    assert reference.model.units == (35, 25, 15, 5)
    assert reference.training.epochs == 25
    assert reference.training.batch_size == 64
    assert reference.data.dataset == "mnist"
    # the reference decay: d = 2 (0.005 - 0.0001) / 25 per step
    assert reference.training.decay_rate() == pytest.approx(2 * (0.005 - 0.0001) / 25)


def test_defaults_fill_in_and_the_study_is_frozen() -> None:
    study = parse_study(MINIMAL)
    assert study.model.units == (35, 25, 15, 5)
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
