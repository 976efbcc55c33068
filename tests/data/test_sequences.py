"""The synthetic sequence task: the label in the attention column and nowhere else, by seed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ablate.data import SOURCES, Dataset, check_dataset, read_dataset
from ablate.data.sequences import OPTIONS, attention_sequences
from ablate.errors import AblateError
from ablate.models.registry import LSTM_ATTENTION
from ablate.study import parse_study
from ablate.tasks import TASKS

DEFAULTS = {p.name: p.default for p in OPTIONS}


def _check(data: Dataset, task: Any, model: Any = None) -> None:
    """What the checks before a run ask of a dataset: itself, the task, the model's inputs."""
    check_dataset(data)
    task.check_data(data)
    if model is not None:
        model.check_inputs(data)


def _data(seed: int = 768, **options: object) -> Dataset:
    return attention_sequences(seed, {**DEFAULTS, "n": 2000, "n_test": 500, **options})


def test_shapes_labels_and_the_declared_defaults() -> None:
    assert DEFAULTS == {"n": 30_000, "n_test": 10_000, "time_steps": 10, "input_dim": 2,
                        "attention_column": 2, "noise": 10.0}  # fmt: skip
    data = _data(time_steps=20, input_dim=3)
    assert data.x_train.shape == (2000, 20, 3) and data.x_test.shape == (500, 20, 3)
    assert data.x_train.dtype == np.float32
    assert set(np.unique(data.y_train)) == {0, 1} and data.n_classes == 2
    assert 0.45 < data.y_train.mean() < 0.55  # drawn uniformly
    _check(data, TASKS["classification"], LSTM_ATTENTION)


def test_the_label_is_in_the_attention_column_and_nowhere_else() -> None:
    data = _data(attention_column=4)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        np.testing.assert_array_equal(x[:, 4, :], np.repeat(y[:, None], 2, axis=1))
        others = np.delete(x, 4, axis=1)  # (n, T - 1, D)
        assert 9.5 < others.std() < 10.5  # Normal(0, 10²)
        # no other step tells the label: its correlation with y is noise (|r| < 4/sqrt(n))
        corr = [abs(np.corrcoef(others[:, t, d], y)[0, 1]) for t in range(9) for d in range(2)]
        assert max(corr) < 4 / np.sqrt(len(y))
        # and a threshold on any other value does no better than chance
        best = max(((others[:, t, d] > 0) == y).mean() for t in range(9) for d in range(2))
        assert best < 0.5 + 4 * 0.5 / np.sqrt(len(y))


def test_the_same_seed_gives_the_same_arrays_and_the_test_set_does_not_depend_on_n() -> None:
    a, b = _data(seed=5), _data(seed=5)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = _data(seed=6)
    assert not np.array_equal(a.x_train, c.x_train)
    bigger = _data(seed=5, n=3000)
    np.testing.assert_array_equal(bigger.x_test, a.x_test)  # an independent stream
    np.testing.assert_array_equal(bigger.x_train[:10, 0], a.x_train[:10, 0])


def test_a_column_beyond_the_sequence_is_refused() -> None:
    with pytest.raises(AblateError, match="attention_column is 10 but a sequence has only 10"):
        _data(time_steps=10, attention_column=10)


def test_a_study_names_it_with_its_options() -> None:
    assert SOURCES["attention-sequences"].task == "classification"
    study = parse_study(
        "name: s\ntask: classification\nmodel: {builder: lstm_attention, units: 4}\n"
        "factors: {attention: [none, additive]}\n"
        "data: {dataset: attention-sequences, options: {n: 300, n_test: 100, time_steps: 6},"
        " train_size: 200}\nseed: 11\n"
    )
    data = read_dataset(study.data, study.seed)
    assert data.x_train.shape == (200, 6, 2) and data.x_test.shape == (100, 6, 2)
    np.testing.assert_array_equal(data.x_train[:, 2, 0], data.y_train)
    with pytest.raises(AblateError, match="made for the classification task"):
        parse_study("name: v\nfactors: {dropout: [true, false]}\n"
                    "data: {dataset: attention-sequences}\n")  # fmt: skip
    with pytest.raises(AblateError, match="time_steps"):
        parse_study(
            "name: s\ntask: classification\nmodel: {builder: lstm_attention}\n"
            "factors: {attention: [none, block]}\n"
            "data: {dataset: attention-sequences, options: {time_steps: 1}}\n"
        )
