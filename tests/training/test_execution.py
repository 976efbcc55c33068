"""How a training step is executed (steps per call, XLA) never changes what a trial computes."""

from __future__ import annotations

import dataclasses

import pytest

from ablate.data import load_dataset
from ablate.study import parse_study
from ablate.study.grid import expand_trials
from ablate.study.settings import Study
from ablate.training import backend
from ablate.training.records import TrialResult
from ablate.training.trial import steps_per_call, train_trial, use_xla
from tests.helpers import tiny_study_text


@pytest.fixture(scope="module")
def study() -> Study:
    # 96 training images, batch 32: 3 steps per epoch, so 2 steps per call leave a partial call
    return parse_study(tiny_study_text("unused", epochs=2))


def _train(study: Study, **training: object) -> TrialResult:
    changed = dataclasses.replace(study, training=dataclasses.replace(study.training, **training))
    spec = expand_trials(changed)[0]  # BatchNorm and a sampled latent code: state and RNG
    result = train_trial(changed, spec, load_dataset(changed.data))
    assert result.status == "complete", result.traceback
    return result


def _curves(result: TrialResult) -> list[dict[str, float]]:
    return [dict(e.values) | {"lr": e.learning_rate} for e in result.history]


@pytest.fixture(scope="module")
def one(study: Study) -> TrialResult:
    return _train(study, steps_per_execution=1)


@pytest.mark.parametrize("steps", [2, 3])
@pytest.mark.slow  # moved out of the fast suite (3-minute budget); .ci/run runs it
def test_several_steps_per_call_train_exactly_as_one(
    study: Study, one: TrialResult, steps: int
) -> None:
    several = _train(study, steps_per_execution=steps)
    assert _curves(several) == _curves(one)  # bit for bit: every loss and the learning rate
    assert several.value("test_loss") == one.value("test_loss")


def test_tensorflow_groups_never_run_into_the_next_epoch() -> None:
    t = parse_study(tiny_study_text("unused")).training
    if backend.backend_name() != "tensorflow":
        pytest.skip("TensorFlow's grouping only")
    # 938 steps per epoch (60,000 images, batch 64) = 2 · 7 · 67
    assert (
        steps_per_call(dataclasses.replace(t, batch_size=64, steps_per_execution=32), 60_000) == 14
    )
    assert steps_per_call(dataclasses.replace(t, steps_per_execution=4), 96) == 3


def test_execution_settings_are_no_part_of_the_experiment(study: Study) -> None:
    fast = dataclasses.replace(
        study, training=dataclasses.replace(study.training, jit_compile=True, steps_per_execution=8)
    )
    assert fast.fingerprint() == study.fingerprint()
    slower = dataclasses.replace(study, training=dataclasses.replace(study.training, epochs=3))
    assert slower.fingerprint() != study.fingerprint()


def test_xla_is_chosen_for_gpus_only(study: Study) -> None:
    backend.import_keras()
    on_gpu = backend.describe_device().startswith("gpu")  # Keras imported by then
    assert use_xla(study.training) is (on_gpu and backend.backend_name() != "torch")
    assert use_xla(dataclasses.replace(study.training, jit_compile=True)) is True


def test_a_study_file_sets_and_checks_them() -> None:
    text = tiny_study_text("unused").replace(
        "training: {", "training: {steps_per_execution: 16, jit_compile: true, "
    )
    assert "steps_per_execution: 16" in text, "the tiny study's training line changed"
    t = parse_study(text).training
    assert (t.steps_per_execution, t.jit_compile) == (16, True)
    with pytest.raises(Exception, match="jit_compile"):
        parse_study(text.replace("jit_compile: true", "jit_compile: sometimes"))
    with pytest.raises(Exception, match="steps_per_execution"):
        parse_study(text.replace("steps_per_execution: 16", "steps_per_execution: 0"))
