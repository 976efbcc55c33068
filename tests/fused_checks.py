"""Fused and unfused trials compared, run under JAX (``KERAS_BACKEND=jax``); prints JSON.

    KERAS_BACKEND=jax python tests/fused_checks.py steps        # (a), (b), (d)
    KERAS_BACKEND=jax python tests/fused_checks.py equivalence  # (c)

``steps``: studies of one training step per trial (as many training examples as one batch),
so that a trial's test values depend on exactly one step -- forward, loss, gradients,
BatchNorm statistics (a low momentum, so that one update shows), the optimizer's update and
every random draw (dropout masks, the VAE's sampling) -- of a replicate group and of a group
of mixed cells covering every fusable flag at both levels; each trial trained alone (as an
unfused trial: ``train_trial``) and in its group (``train_group``), each mode twice.
``equivalence``: 8 replicates of a quick-study cell trained for four epochs, alone and as one
group. tests/training/test_fused.py runs both and judges the numbers.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from ablate.data import load_dataset
from ablate.study.grid import Cell, TrialSpec
from ablate.study.parse import load_study
from ablate.training.fused import train_group
from ablate.training.trial import train_trial

STUDY = """\
name: fused
model: {{units: [8, 6, 4, 2], depth: 1, batch_norm_momentum: 0.5, dropout_rate: 0.3}}
factors:
  batch_norm: [true, false]
  dropout: [true, false]
  spatial_attention: [true, false]
  activation: [relu, elu, sigmoid]
training: {{epochs: {epochs}, batch_size: {batch}, learning_rate: 0.01}}
data: {{dataset: mnist-sample, train_size: {train}, test_size: {test}}}
results: {results}
"""

VALUES = ("test_loss", "test_recon_loss", "test_kl_loss", "train_loss")

#: One cell of each group, and every fusable flag at both levels among the mixed cells.
REPLICATED = {"batch_norm": True, "dropout": True, "spatial_attention": True, "activation": "elu"}
MIXED = [
    {"batch_norm": True, "dropout": True, "spatial_attention": True, "activation": "elu"},
    {"batch_norm": False, "dropout": False, "spatial_attention": False, "activation": "relu"},
    {"batch_norm": True, "dropout": False, "spatial_attention": False, "activation": "sigmoid"},
    {"batch_norm": False, "dropout": True, "spatial_attention": True, "activation": "relu"},
]


def _study(**sizes: int):  # type: ignore[no-untyped-def]
    folder = Path(tempfile.mkdtemp(prefix="ablate-fused-"))
    (folder / "fused.yaml").write_text(STUDY.format(results=folder, **sizes))
    return load_study(folder / "fused.yaml")


def _spec(levels: dict, replicate: int) -> TrialSpec:
    return TrialSpec(Cell(0, tuple(levels.items())), replicate, seed=1000 + 17 * replicate)


def _values(results: list) -> list[dict]:
    out = []
    for r in results:
        assert r.status == "complete", (r.status, r.error, r.traceback)
        out.append({k: r.value(k) for k in VALUES} | {"fused": r.details.get("fused")})
    return out


def _both(study, dataset, specs: list[TrialSpec]) -> dict:  # type: ignore[no-untyped-def]
    """Each mode twice: alone (one trial after another) and as one group."""
    alone = [_values([train_trial(study, s, dataset) for s in specs]) for _ in range(2)]
    fused = [_values(train_group(study, specs, dataset)) for _ in range(2)]
    return {"alone": alone, "fused": fused}


def steps() -> dict:
    study = _study(epochs=1, batch=32, train=32, test=64)
    dataset = load_dataset(study.data, study.seed)
    replicates = [_spec(REPLICATED, r) for r in range(3)]
    mixed = [_spec(levels, r) for r, levels in enumerate(MIXED)]
    return {"replicates": _both(study, dataset, replicates), "mixed": _both(study, dataset, mixed)}


def equivalence() -> dict:
    study = _study(epochs=4, batch=16, train=256, test=256)
    dataset = load_dataset(study.data, study.seed)
    specs = [_spec(REPLICATED, r) for r in range(8)]
    alone = _values([train_trial(study, s, dataset) for s in specs])
    fused = _values(train_group(study, specs, dataset))
    return {"alone": alone, "fused": fused}


if __name__ == "__main__":
    print(json.dumps({"steps": steps, "equivalence": equivalence}[sys.argv[1]]()))
