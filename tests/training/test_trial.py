"""One trial on a tiny model: what is recorded, and how divergence and failures are caught."""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pytest

from ablate.data import load_dataset
from ablate.study import parse_study
from ablate.study.grid import TrialSpec, expand_trials
from ablate.study.settings import Study
from ablate.training.records import TrialResult
from ablate.training.trial import _training_batches, train_trial
from tests.helpers import tiny_study_text


@pytest.fixture(scope="module")
def study() -> Study:
    return parse_study(tiny_study_text("unused", epochs=2))


def test_a_trial_records_losses_history_and_provenance(study: Study) -> None:
    spec = expand_trials(study)[0]
    seen = []
    result = train_trial(study, spec, load_dataset(study.data), on_epoch=seen.append)
    v = result.value
    assert result.status == "complete", result.traceback
    assert [e.epoch for e in result.history] == [1, 2] and seen == list(result.history)
    assert result.epochs == 2
    # the test loss is reconstruction plus KL, and both are from the last epoch's evaluation
    assert v("test_loss") == pytest.approx(v("test_recon_loss") + v("test_kl_loss"))
    assert v("test_loss") == pytest.approx(result.history[-1].get("test_loss"))
    # binary cross-entropy of pixels in [0, 1] against a sigmoid output lies in (0, ~0.8)
    assert 0.0 < v("test_recon_loss") < 1.5
    assert v("test_kl_loss") >= 0.0
    assert v("train_loss") == result.history[-1].get("train_loss")
    # inverse-time decay per step: 3 steps per epoch (96 images, batch 32) -> t = 6 after 2
    d = study.training.decay_rate()
    assert result.history[-1].learning_rate == pytest.approx(0.005 / (1 + d * 6), rel=1e-5)
    assert result.params == result.trainable_params + 2 * _bn_channels(study, spec)
    assert result.backend == "tensorflow" and result.device == "cpu"
    assert result.versions["keras"].startswith("3.")
    assert result.images_per_second and result.images_per_second > 0
    assert result.seconds >= result.train_seconds + result.eval_seconds


def _bn_channels(study: Study, spec: TrialSpec) -> int:
    """Non-trainable parameters are the BatchNorm moving mean and variance: 2 per channel."""
    from ablate.models.registry import VAE

    kwargs = {**study.model.builder_kwargs(), **spec.cell.as_dict()}
    model = VAE.build(input_shape=(28, 28, 1), **kwargs)
    return sum(
        int(layer.moving_mean.shape[0])
        for sub in (model.encoder, model.decoder)
        for layer in sub.layers
        if type(layer).__name__ == "BatchNormalization"
    )


@pytest.mark.slow  # seconds: the fast part stays under 3 minutes
def test_extra_callbacks_see_every_training_step(study: Study) -> None:
    import keras

    class Count(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            Count.batches += 1

    result = train_trial(study, expand_trials(study)[0], load_dataset(study.data),
                         callbacks=[Count()])  # fmt: skip
    assert result.status == "complete", result.traceback
    assert Count.batches == 2 * 3  # 2 epochs of 96 images in batches of 32


def test_training_batches_are_a_fresh_permutation_every_epoch() -> None:
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)  # image i is the value i
    fit_kwargs = _training_batches(x, x, batch_size=4, seed=3)
    assert fit_kwargs["steps_per_epoch"] == 3
    batches = iter(fit_kwargs["x"])  # one iterator for the whole trial: it never ends
    orders = []
    for _ in range(3):
        epoch = [next(batches) for _ in range(3)]
        assert [len(inputs) for inputs, _ in epoch] == [4, 4, 2]  # the last batch is partial
        assert all(np.array_equal(inputs, targets) for inputs, targets in epoch)
        order = np.concatenate([np.asarray(inputs).ravel() for inputs, _ in epoch])
        assert sorted(order) == list(range(10))  # every image exactly once
        orders.append(tuple(order))
    assert len(set(orders)) == 3  # reshuffled each epoch
    again = iter(_training_batches(x, x, batch_size=4, seed=3)["x"])
    first = np.concatenate([np.asarray(next(again)[0]).ravel() for _ in range(3)])
    assert tuple(first) == orders[0]  # the seed fixes the order


@pytest.mark.slow  # moved out of the fast suite (3-minute budget); .ci/run runs it
def test_the_same_seed_reproduces_the_same_losses(study: Study) -> None:
    spec = expand_trials(study)[1]
    data = load_dataset(study.data)
    a = train_trial(study, spec, data)
    b = train_trial(study, spec, data)
    assert a.value("test_loss") == pytest.approx(b.value("test_loss"), rel=1e-5)


def test_nan_loss_is_recorded_as_diverged_and_training_stops(study: Study) -> None:
    spec = expand_trials(study)[0]
    clean = load_dataset(study.data)
    poisoned = dataclasses.replace(clean, x_train=np.full_like(clean.x_train, np.nan))
    result = train_trial(study, spec, poisoned)
    assert result.status == "diverged"
    assert result.epochs == 1  # stopped after the first epoch, not run to the end
    assert "NaN or infinite" in result.error
    assert result.value("test_loss") is None
    # NaN never reaches JSON: stored results stay valid JSON
    json.dumps(result.to_dict(), allow_nan=False)


def test_a_model_whose_output_does_not_fit_the_task_fails_before_training(study: Study) -> None:
    # Five coder stages halve 28 -> 14 -> 7 -> 4 and double back to 32: the reconstruction
    # no longer matches the input, which is caught before a single step is trained.
    broken = dataclasses.replace(study, model=study.model.replace(units=(8, 8, 6, 4, 2)))
    result = train_trial(broken, expand_trials(broken)[0], load_dataset(broken.data))
    assert result.status == "failed" and result.epochs == 0 and not result.history
    assert "output has shape (32, 32, 1)" in result.error
    assert "needs (28, 28, 1)" in result.error and "reconstruction" in result.error
    assert "Traceback" in result.traceback


def test_result_round_trips_through_json(study: Study) -> None:
    result = train_trial(study, expand_trials(study)[2], load_dataset(study.data))
    again = TrialResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == dataclasses.replace(result, outputs=None)  # outputs travel on their own
    assert result.outputs is not None and result.outputs[:2] == b"PK"  # an .npz (zip)
    assert math.isfinite(again.value("test_loss"))


CLASSIFIER = """\
name: cls
task: classification
model: {builder: "tests.user_models:small_cnn", options: {width: 16}}
factors: {activation: [relu, tanh]}
training: {epochs: 3, batch_size: 32, learning_rate: 0.003, decay: 0}
data: {dataset: mnist-sample, train_size: 320, test_size: 100}
"""


def test_a_classifier_records_accuracy_balanced_accuracy_recalls_and_its_confusion() -> None:
    study = parse_study(CLASSIFIER)
    data = load_dataset(study.data)
    result = train_trial(study, expand_trials(study)[0], data)
    assert result.status == "complete", result.traceback
    v = result.value
    confusion = np.array(result.details["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 100  # every test digit once
    recalls = [v(f"test_recall_{k}") for k in range(10)]
    support = confusion.sum(axis=1)
    assert recalls == pytest.approx(list(np.diag(confusion) / support))
    # accuracy (Keras, last epoch's evaluation) equals the confusion matrix's diagonal share
    assert v("test_accuracy") == pytest.approx(np.trace(confusion) / 100, abs=1e-6)
    # balanced accuracy (ablate's Keras metric) is the unweighted mean of the recalls
    assert v("test_balanced_accuracy") == pytest.approx(np.mean(recalls), abs=1e-6)
    # it learned: 320 digits, 3 epochs beat the 10% of chance by far
    assert v("test_accuracy") > 0.5
    assert [set(e.values) for e in result.history][-1] == {
        "train_loss", "train_accuracy", "train_balanced_accuracy",
        "test_loss", "test_accuracy", "test_balanced_accuracy",
    }  # fmt: skip


def test_a_regression_model_beats_predicting_the_mean() -> None:
    study = parse_study(
        "name: reg\ntask: regression\n"
        "model: {builder: 'tests.user_regression:mlp'}\n"
        "factors: {width: [8, 16]}\n"
        "training: {epochs: 30, batch_size: 32, learning_rate: 0.01, decay: 0}\n"
        "data: {dataset: 'tests.user_regression:linear', options: {n: 600}}\n"
    )
    data = load_dataset(study.data, study.seed)
    result = train_trial(study, expand_trials(study)[1], data)
    assert result.status == "complete", result.traceback
    baseline = study.task_spec.baselines(data)
    assert result.value("test_loss") < 0.2 * baseline["test_loss"].value
    assert result.value("test_mae") < baseline["test_mae"].value
    assert 0.8 < result.value("test_r2") <= 1.0
    outputs = np.load(io.BytesIO(result.outputs))
    assert outputs["y_pred"].shape == outputs["y_true"].shape == (200, 1)


def test_a_builder_that_returns_no_keras_model_fails_with_a_message() -> None:
    study = parse_study(CLASSIFIER.replace("tests.user_models:small_cnn",
                                           "tests.user_models:not_a_model"))  # fmt: skip
    result = train_trial(study, expand_trials(study)[0], load_dataset(study.data))
    assert result.status == "failed"
    assert "returned dict, not a keras.Model" in result.error
