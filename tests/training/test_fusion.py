"""Which trials fuse, in which order they see their data, and what a fused run refuses;
no JAX needed (the JAX checks of fused training are tests/training/test_fused.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ablate.queue.claims import open_queue
from ablate.queue.workers import WorkerIdentity
from ablate.study.grid import expand_trials
from ablate.study.parse import load_study
from ablate.training import order
from ablate.training.fusion import group_key, group_size
from tests.helpers import run_cli, tiny_study_text


def test_every_epoch_is_one_permutation_and_the_stream_follows_it() -> None:
    """(b): the order fused and unfused trials both take, from the seed alone."""
    x = np.arange(10, dtype="float32")[:, None]
    batches = order.epoch_batches(7, 0, 10, 4)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert np.array_equal(order.permutation(7, 1, 10), order.permutation(7, 1, 10))
    assert not np.array_equal(order.permutation(7, 0, 10), order.permutation(7, 1, 10))
    stream = order.batch_stream(x, x, 7, 4)
    seen = [next(stream) for _ in range(6)]  # two epochs
    expected = batches + order.epoch_batches(7, 1, 10, 4)
    for (xb, yb), idx in zip(seen, expected, strict=True):
        assert np.array_equal(xb[:, 0], idx) and yb is xb


def tiny_fused_study(tmp_path: Path, fuse: int | str, extra_factor: str = "") -> Path:
    text = tiny_study_text(tmp_path / "results", epochs=2, replicates=2)
    run = f"run: {{heartbeat_seconds: 0.5, fuse: {fuse}}}"
    text = text.replace("run: {heartbeat_seconds: 0.5}", run)
    if extra_factor:
        text = text.replace("factors:\n", f"factors:\n  {extra_factor}\n")
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def test_cells_differing_in_fusable_flags_share_a_group_others_do_not(tmp_path: Path) -> None:
    study = load_study(tiny_fused_study(tmp_path, 4, extra_factor="latent_dim: [2, 3]"))
    assert group_size(study) == 4 and study.run.fuse == 4
    specs = expand_trials(study)
    keys = {group_key(study, s) for s in specs}
    assert keys == {(("latent_dim", 2),), (("latent_dim", 3),)}  # batch_norm, activation fuse
    off = load_study(tiny_fused_study(tmp_path, '"off"'))
    assert group_size(off) == 1


def test_a_fused_claim_keeps_the_first_trials_group_and_hands_back_the_rest(
    tmp_path: Path,
) -> None:
    from ablate.execution.worker import claim_fusable
    from ablate.training.trainers import trainer_for

    study = load_study(tiny_fused_study(tmp_path, 16, extra_factor="latent_dim: [2, 3]"))
    queue = open_queue(study, None)
    queue.populate(expand_trials(study))
    me = WorkerIdentity("w0")
    claims = claim_fusable(queue, me, trainer_for(study), 16)
    assert 1 <= len(claims) <= 8
    assert len({group_key(study, c.spec) for c in claims}) == 1
    summary = queue.summary()
    assert len(summary.running) == len(claims)  # the others are waiting again
    assert summary.total == 16


def test_a_fused_group_size_without_jax_is_refused_before_anything_trains(tmp_path: Path) -> None:
    study_path = tiny_fused_study(tmp_path, 4)
    proc = run_cli("run", str(study_path), cwd=tmp_path, env={"KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 2, proc.stderr
    assert "run.fuse: 4 trains trials together as one JAX program" in proc.stderr
    assert "KERAS_BACKEND=jax" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "tiny" / "trials.parquet").exists()
