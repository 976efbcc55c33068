"""Which trials may train together in one fused program, and how many at once.

Two trials may share a program (:mod:`ablate.training.fused`) when their models have the
same variables: the replicates of one cell, for any builder; and, for a built-in model that
declares a fused builder, cells whose levels differ only in parameters it marks fusable (for
the VAE: batch_norm, dropout, dropout_rate, spatial_attention, attention except the
transformer, activation -- see :mod:`ablate.models.registry`). The study's ``run.fuse`` says
how many: a number, "off", or "auto": on a GPU under JAX, up to :data:`AUTO_GROUP`; off on
CPUs, where a vmapped group was measured slower than the same trials one after another.
"""

from __future__ import annotations

from collections.abc import Hashable

from ablate.study.grid import TrialSpec
from ablate.study.settings import Study
from ablate.training import backend

#: The group size "auto" takes on a GPU (the reference grid's 32 cells in one program).
AUTO_GROUP = 32


def group_size(study: Study) -> int:
    """How many trials a worker claims and trains at once (1: no fusing)."""
    fuse = study.run.fuse
    if fuse == "off" or study.streams.counts:  # seed streams train apart (see check_fuse)
        return 1
    if fuse != "auto":
        return int(fuse)
    on_gpu = backend.backend_name() == "jax" and backend.describe_device().startswith("gpu")
    return AUTO_GROUP if on_gpu else 1


def group_key(study: Study, spec: TrialSpec) -> Hashable:
    """Trials with equal keys may train in one program."""
    model = study.model.spec
    levels = spec.cell.as_dict()
    if not model.fused:
        return tuple(sorted(levels.items()))
    kept = {}
    apart = dict(model.unfusable_levels)
    for name, level in levels.items():
        parameter = model.parameter(name)
        fusable = parameter is not None and parameter.fusable
        if not fusable or level in apart.get(name, ()):
            kept[name] = level
    return tuple(sorted(kept.items()))
