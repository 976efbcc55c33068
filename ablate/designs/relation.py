"""The defining relation of a two-level design, computed from its runs alone.

Runs coded ±1 are read as vectors over GF(2) (a factor at its low level is a 1 bit). A regular
fraction 2^(k−p) is a coset of a subspace of GF(2)^k: its words (products of factors that are
constant over every run, such as I = ABCD) are the vectors orthogonal to the differences
between runs, and the runs are regular when they fill the whole coset. So the relation, the
resolution and every alias chain follow from the runs, whoever chose them: a fraction built
here, one from a textbook, or a table of results run elsewhere.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Factor letters as textbooks write them: A, B, …, H, J, … (I stands for the identity).
LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
MAX_WORDS = 1 << 16  # 2^p words for p generators: beyond this the relation is not listed


def letters(n: int) -> list[str]:
    """Letters for n factors in order; past Z, numbered names (X26, X27, …)."""
    return [LETTERS[i] if i < len(LETTERS) else f"X{i + 1}" for i in range(n)]


@dataclass(frozen=True)
class Relation:
    """Words of the defining relation (bit masks, bit j = factor j) with their signs."""

    k: int  # factors
    rank: int  # k − p: the dimension the runs span
    distinct: int  # distinct runs
    words: tuple[int, ...]  # sorted by length, then as numbers
    signs: tuple[int, ...]  # +1 or −1: the word's constant value over the runs

    @property
    def p(self) -> int:
        return self.k - self.rank

    @property
    def regular(self) -> bool:
        """The runs are a whole regular fraction 2^(k−p) (each point of the coset present)."""
        return self.distinct == 1 << self.rank

    @property
    def full(self) -> bool:
        return self.regular and self.p == 0

    @property
    def resolution(self) -> int | None:
        """The shortest word's length (None for a full factorial, which has no word)."""
        return min((length(w) for w in self.words), default=None)

    def word_length_pattern(self) -> list[int]:
        """How many words of length 3, 4, …, k (the basis of minimum aberration)."""
        counts = [0] * (self.k + 1)
        for w in self.words:
            counts[length(w)] += 1
        return counts[3:]

    def aliases(self, effect: int, max_order: int) -> list[tuple[int, int]]:
        """(effect, sign) of every effect of order ≤ max_order aliased with ``effect``."""
        out = []
        for w, s in zip(self.words, self.signs, strict=True):
            other = effect ^ w
            if other and length(other) <= max_order:
                out.append((other, s))
        return sorted(out, key=lambda e: (length(e[0]), _order_key(e[0])))


def defining_relation(coded: np.ndarray) -> Relation:
    """The relation of a two-level design (rows: runs coded −1/+1; repeated rows allowed)."""
    x = np.asarray(coded)
    k = x.shape[1]
    rows = {tuple(int(v) for v in (r < 0)) for r in x}
    bits = [sum(b << j for j, b in enumerate(r)) for r in sorted(rows)]
    pivots = _row_reduce([b ^ bits[0] for b in bits[1:]])
    basis = _null_space(pivots, k)
    if len(basis) > 16:  # 2^p words would not fit any listing; the rank still tells regularity
        return Relation(k, len(pivots), len(rows), (), ())
    words = sorted(
        {_combine(basis, c) for c in range(1, 1 << len(basis))},
        key=lambda w: (length(w), _order_key(w)),
    )
    signs = tuple(-1 if length(w & bits[0]) % 2 else 1 for w in words)
    return Relation(k, len(pivots), len(rows), tuple(words), signs)


def length(mask: int) -> int:
    return mask.bit_count()


def members(mask: int) -> list[int]:
    """The factor indices of an effect's mask, ascending."""
    return [j for j in range(mask.bit_length()) if mask >> j & 1]


def word(mask: int, names: Sequence[str], joiner: str = "") -> str:
    """An effect's letters (``ABD``) or names joined (``a×b×d``)."""
    return joiner.join(names[j] for j in members(mask))


def effects_up_to(k: int, order: int) -> list[int]:
    """Masks of every main effect and interaction of up to ``order`` factors."""
    out = []
    for r in range(1, order + 1):
        out += [sum(1 << j for j in c) for c in itertools.combinations(range(k), r)]
    return out


def _order_key(mask: int) -> list[int]:
    return members(mask)


def _row_reduce(vectors: list[int]) -> dict[int, int]:
    """Reduced row echelon form over GF(2): pivot bit -> row (no row holds another's pivot)."""
    pivots: dict[int, int] = {}
    for v in vectors:
        for bit, row in pivots.items():
            if v >> bit & 1:
                v ^= row
        if not v:
            continue
        bit = v.bit_length() - 1
        for other in pivots:
            if pivots[other] >> bit & 1:
                pivots[other] ^= v
        pivots[bit] = v
    return pivots


def _null_space(pivots: dict[int, int], k: int) -> list[int]:
    """A basis of the vectors orthogonal (over GF(2)) to every row: one per free bit."""
    basis = []
    for free in (j for j in range(k) if j not in pivots):
        w = 1 << free
        for bit, row in pivots.items():
            if row >> free & 1:
                w |= 1 << bit
        basis.append(w)
    return basis


def _combine(basis: list[int], choice: int) -> int:
    out = 0
    for i, b in enumerate(basis):
        if choice >> i & 1:
            out ^= b
    return out
