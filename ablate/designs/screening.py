"""Screening designs from pydoe: Plackett–Burman and definitive screening.

A Plackett–Burman design studies up to N − 1 two-level factors in N runs (N a multiple of 4)
with orthogonal main effects; unlike a regular fraction its two-factor interactions are
*partially* aliased with main effects (spread over many of them, at ±1/3 in 12 runs). A
definitive screening design (Jones and Nachtsheim 2011) gives numeric factors three levels in
about twice as many runs as factors, main effects free of every two-factor interaction and of
every quadratic effect; two-level factors may join it (Jones and Nachtsheim 2013).
"""

from __future__ import annotations

import numpy as np

from ablate.errors import AblateError


def plackett_burman_sizes(k: int, up_to: int = 1024) -> list[int]:
    """Run counts pydoe builds for k factors: multiples of 4 above k (N = 2^e, 12·2^e, 20·2^e)."""
    import pydoe

    sizes = []
    for n in range(4 * (k // 4 + 1), up_to + 1, 4):
        try:
            pydoe.pbdesign(n - 1)
        except ValueError:
            continue
        sizes.append(n)
        if len(sizes) >= 6:
            break
    return sizes


def plackett_burman(k: int, runs: int | None = None) -> np.ndarray:
    """N × k, −1/+1: pydoe's ``pbdesign`` with N − 1 columns, the first k kept.

    Its rows are distinct and its columns orthogonal; the run with every factor high is last.
    """
    import pydoe

    sizes = plackett_burman_sizes(k)
    n = runs if runs is not None else sizes[0]
    if n not in sizes:
        raise AblateError(
            f"pydoe builds Plackett–Burman designs of {k} factors in "
            f"{', '.join(map(str, sizes))}, ... runs, not {n}"
        )
    return np.asarray(pydoe.pbdesign(n - 1))[:, :k].astype(int)


def definitive_screening(numeric: int, two_level: int) -> np.ndarray:
    """Runs × (numeric + two_level): numeric columns −1/0/+1 first, then the two-level ones."""
    import pydoe

    return np.asarray(pydoe.definitive_screening_design(numeric, n_cat=two_level)).astype(int)
