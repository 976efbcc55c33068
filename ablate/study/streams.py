"""Seed streams: the sources of randomness a study varies separately.

``replicates: 3`` gives every cell three trials, replicate r seeded ``seed + r``, and
everything random in a trial (the weights' initialisation, the order of the training examples,
dropout and sampling noise) draws from that one seed. ``replicates: {init: 3, data_order: 2}``
varies the sources separately: every cell gets one trial per combination of an initialisation
seed (three) and a data-order seed (two), crossed, six in all, so that the analysis can say
how much of the seed-to-seed variance each source causes (:mod:`ablate.stats.components`).

Each stream's seed depends only on the study's seed, the stream's name and its index, so a
stream index means the same random numbers in every cell (common random numbers, as replicate
r does) and growing one stream's count adds trials without changing any that ran. A trial's
key is its cell and its stream indices; its replicate number is its place in the crossing,
stream after stream (the last varying fastest). What a stream drives is the trainer's to
honour: ablate's Keras loop knows :data:`KERAS_STREAMS`; a training function or a program
receives each stream's seed by name (``seed_init``, ``{seed_init}``) and uses it as it sees
fit. A source no stream names varies with every trial, as with a plain count.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass

import numpy as np

#: The sources of randomness ablate's own Keras loop can vary separately.
KERAS_STREAMS = {
    "init": "the weights' initialisation",
    "data_order": "the order of the training examples",
    "noise": "dropout masks and sampling noise during training",
}
#: The most seeds one stream may have.
MAX_COUNT = 1000


@dataclass(frozen=True)
class Streams:
    """The streams a study crosses, in the order written: ``(name, count)`` pairs."""

    counts: tuple[tuple[str, int], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.counts)

    @property
    def total(self) -> int:
        """Trials per cell: the product of the counts."""
        return math.prod(count for _, count in self.counts)

    def combinations(self) -> list[tuple[int, ...]]:
        """Every combination of stream indices, in replicate order (the last stream fastest)."""
        return list(itertools.product(*(range(count) for _, count in self.counts)))

    def describe(self) -> str:
        """The crossing in words, e.g. ``init 3 x data_order 2``."""
        return " x ".join(f"{name} {count}" for name, count in self.counts)


def stream_seed(study_seed: int, name: str, index: int) -> int:
    """The seed of one stream's index: a function of the study's seed, the stream's name and
    the index alone (NumPy's SeedSequence, so that streams and indices draw independent
    numbers), in [0, 2**31)."""
    entropy = [study_seed, zlib.crc32(name.encode()), index]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def trial_seed(study_seed: int, indices: tuple[int, ...]) -> int:
    """The seed of a stream trial's other randomness (what no stream names): one per
    combination of indices, different from every stream's."""
    entropy = [study_seed, 0x5EED, *indices]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def replicate_numbers(indices: list[dict[str, int]], streams: Streams) -> list[int]:
    """Each trial's replicate number from its stream indices: its place in the crossing,
    counted with each stream's count or, where trials of a larger count are still kept (the
    study file asked for fewer since), with that larger count, so that no two trials of a cell
    share a number."""
    radix = [max([count, *(i.get(name, 0) + 1 for i in indices)]) for name, count in streams.counts]
    out = []
    for found in indices:
        number = 0
        for (name, _), base in zip(streams.counts, radix, strict=True):
            number = number * base + found.get(name, 0)
        out.append(number)
    return out
