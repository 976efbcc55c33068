"""One trial on a tiny model: what is recorded, and how divergence and failures are caught."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from ablate.config import Study, parse_study
from ablate.data import load_dataset
from ablate.grid import TrialSpec, expand_trials
from ablate.training import TrialResult, _training_batches, train_trial
from tests.helpers import tiny_study_text


@pytest.fixture(scope="module")
def study() -> Study:
    return parse_study(tiny_study_text("unused", epochs=2))


def test_a_trial_records_losses_history_and_provenance(study: Study) -> None:
    spec = expand_trials(study)[0]
    seen = []
    result = train_trial(study, spec, load_dataset(study.data), on_epoch=seen.append)
    assert result.status == "complete", result.traceback
    assert [e.epoch for e in result.history] == [1, 2] and seen == list(result.history)
    assert result.epochs == 2
    # the test loss is reconstruction plus KL, and both are from the last epoch's evaluation
    assert result.test_loss == pytest.approx(result.test_recon_loss + result.test_kl_loss)
    assert result.test_loss == pytest.approx(result.history[-1].test_loss)
    # binary cross-entropy of pixels in [0, 1] against a sigmoid output lies in (0, ~0.8)
    assert 0.0 < result.test_recon_loss < 1.5
    assert result.test_kl_loss >= 0.0
    assert result.train_loss == result.history[-1].train_loss
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
    from ablate.model import build_vae

    model = build_vae(**{**study.model.builder_kwargs(), **spec.cell.as_dict()})
    return sum(
        int(layer.moving_mean.shape[0])
        for sub in (model.encoder, model.decoder)
        for layer in sub.layers
        if type(layer).__name__ == "BatchNormalization"
    )


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
    fit_kwargs = _training_batches(x, batch_size=4, seed=3)
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
    again = iter(_training_batches(x, batch_size=4, seed=3)["x"])
    first = np.concatenate([np.asarray(next(again)[0]).ravel() for _ in range(3)])
    assert tuple(first) == orders[0]  # the seed fixes the order


def test_the_same_seed_reproduces_the_same_losses(study: Study) -> None:
    spec = expand_trials(study)[1]
    data = load_dataset(study.data)
    a = train_trial(study, spec, data)
    b = train_trial(study, spec, data)
    assert a.test_loss == pytest.approx(b.test_loss, rel=1e-5)


def test_nan_loss_is_recorded_as_diverged_and_training_stops(study: Study) -> None:
    spec = expand_trials(study)[0]
    clean = load_dataset(study.data)
    poisoned = dataclasses.replace(clean, x_train=np.full_like(clean.x_train, np.nan))
    result = train_trial(study, spec, poisoned)
    assert result.status == "diverged"
    assert result.epochs == 1  # stopped after the first epoch, not run to the end
    assert "NaN or infinite" in result.error
    assert result.test_loss is None
    # NaN never reaches JSON: stored results stay valid JSON
    json.dumps(result.to_dict(), allow_nan=False)


def test_an_exception_inside_the_model_is_recorded_as_failed(study: Study) -> None:
    # Five coder stages halve 28 -> 14 -> 7 -> 4 and double back to 32: the reconstruction
    # no longer matches the input, and the loss raises inside fit.
    broken = dataclasses.replace(
        study, model=dataclasses.replace(study.model, units=(8, 8, 6, 4, 2))
    )
    result = train_trial(broken, expand_trials(broken)[0], load_dataset(broken.data))
    assert result.status == "failed"
    assert result.error and result.traceback and "Traceback" in result.traceback
    assert result.params is not None  # it got as far as building


def test_result_round_trips_through_json(study: Study) -> None:
    result = train_trial(study, expand_trials(study)[2], load_dataset(study.data))
    again = TrialResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == dataclasses.replace(result, outputs=None)  # outputs travel on their own
    assert result.outputs is not None and result.outputs[:2] == b"PK"  # an .npz (zip)
    assert math.isfinite(again.test_loss)
