"""run.tensorboard: each trial's epochs as TensorBoard event files, read back with TensorBoard's
own reader (EventAccumulator), for ablate's Keras loop and for a program run as the trainer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import command_study_text, run_cli, tiny_study_text

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}  # fmt: skip


def _with_tensorboard(text: str) -> str:
    return text.replace("run: {heartbeat_seconds: 0.5", "run: {tensorboard: true, "
                        "heartbeat_seconds: 0.5")  # fmt: skip


@pytest.mark.slow
def test_a_programs_epochs_become_a_tensorboard_run_per_trial(tmp_path: Path) -> None:
    text = _with_tensorboard(command_study_text(tmp_path / "results", replicates=2))
    (tmp_path / "cmd.yaml").write_text(text)
    done = run_cli("run", "cmd.yaml", "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    board = tmp_path / "results" / "cmd" / "tensorboard"
    runs = sorted(p.name for p in board.iterdir())
    assert runs == sorted(f"{w}wide {d}deep r{r}" for w in "-+" for d in "-+" for r in (0, 1))
    epochs = pd.read_parquet(tmp_path / "results" / "cmd" / "epochs.parquet")
    trials = pd.read_parquet(tmp_path / "results" / "cmd" / "trials.parquet")
    for _, trial in trials.iterrows():
        scalars = _scalars(board / f"{trial['cell']} r{trial['replicate']}")
        mine = epochs[epochs["trial_key"] == trial["trial_key"]].sort_values("epoch")
        assert scalars["score"] == [(int(e), pytest.approx(v)) for e, v in
                                    zip(mine["epoch"], mine["score"], strict=True)]  # fmt: skip
        assert [s for s, _ in scalars["loss"]] == [1, 2]


@pytest.mark.slow
def test_the_keras_loops_epochs_become_a_tensorboard_run_per_trial(tmp_path: Path) -> None:
    text = _with_tensorboard(tiny_study_text(tmp_path / "results", epochs=2))
    (tmp_path / "tiny.yaml").write_text(text)
    done = run_cli("run", "tiny.yaml", "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    epochs = pd.read_parquet(tmp_path / "results" / "tiny" / "epochs.parquet")
    trials = pd.read_parquet(tmp_path / "results" / "tiny" / "trials.parquet")
    for _, trial in trials.iterrows():
        folder = tmp_path / "results" / "tiny" / "tensorboard" / f"{trial['cell']} r0"
        scalars = _scalars(folder)
        mine = epochs[epochs["trial_key"] == trial["trial_key"]].sort_values("epoch")
        assert [s for s, _ in scalars["test_loss"]] == [1, 2]
        assert [v for _, v in scalars["test_loss"]] == pytest.approx(list(mine["test_loss"]),
                                                                      rel=1e-6)  # fmt: skip
        assert len(scalars["learning_rate"]) == 2
