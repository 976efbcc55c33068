"""Regular fractions against Montgomery's published designs (Design and Analysis of
Experiments, ch. 8): minimum aberration, resolution, defining relations and fold-overs.

pydoe's generators for a minimum-aberration design can differ from the book's (isomorphic
designs: the factors renamed), so designs are compared by their word-length patterns, which
minimum aberration is defined by, and by their resolution.
"""

from __future__ import annotations

import numpy as np
import pytest

from ablate.designs import fractional
from ablate.designs.relation import defining_relation, letters, word
from ablate.errors import AblateError

# Montgomery Table 8.14: minimum-aberration generators of 2^(k-p) designs, by (k, p).
TABLE_8_14 = {
    (5, 1): ("V", 16, ["E = ABCD"]),
    (5, 2): ("III", 8, ["D = AB", "E = AC"]),
    (6, 1): ("VI", 32, ["F = ABCDE"]),
    (6, 2): ("IV", 16, ["E = ABC", "F = BCD"]),
    (6, 3): ("III", 8, ["D = AB", "E = AC", "F = BC"]),
    (7, 1): ("VII", 64, ["G = ABCDEF"]),
    (7, 2): ("IV", 32, ["F = ABCD", "G = ABDE"]),
    (7, 3): ("IV", 16, ["E = ABC", "F = BCD", "G = ACD"]),
    (7, 4): ("III", 8, ["D = AB", "E = AC", "F = BC", "G = ABC"]),
    (8, 2): ("V", 64, ["G = ABCD", "H = ABEF"]),
    (8, 3): ("IV", 32, ["F = ABC", "G = ABD", "H = BCDE"]),
    (8, 4): ("IV", 16, ["E = BCD", "F = ACD", "G = ABC", "H = ABD"]),
}
ROMAN = {"III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7}


def _book(k: int, generators: list[str]) -> np.ndarray:
    names = letters(k)
    parsed = [fractional.parse_generator(g, names) for g in generators]
    return fractional.from_generators(k, parsed).matrix


@pytest.mark.parametrize(("k", "p"), sorted(TABLE_8_14))
def test_minimum_aberration_matches_montgomery_table_8_14(k: int, p: int) -> None:
    resolution, runs, generators = TABLE_8_14[(k, p)]
    ours = fractional.minimum_aberration(k, p)
    book = defining_relation(_book(k, generators))
    found = defining_relation(ours.matrix)
    assert ours.runs == runs and found.regular and found.p == p
    assert found.resolution == book.resolution == ROMAN[resolution]
    assert found.word_length_pattern() == book.word_length_pattern()
    assert ours.how == "minimum aberration"


def test_pinned_word_length_patterns() -> None:
    # Word-length patterns (words of length 3, 4, ...) of the book's designs, counted by hand
    # from their defining relations.
    assert defining_relation(_book(7, TABLE_8_14[(7, 2)][2])).word_length_pattern() == [
        0, 1, 2, 0, 0,
    ]  # fmt: skip
    assert defining_relation(_book(8, TABLE_8_14[(8, 3)][2])).word_length_pattern() == [
        0, 3, 4, 0, 0, 0,
    ]  # fmt: skip


def test_montgomery_example_8_1_defining_relation_from_its_runs() -> None:
    # 2^(4-1) with D = ABC: I = ABCD, resolution IV
    relation = defining_relation(_book(4, ["D = ABC"]))
    assert relation.regular and relation.resolution == 4
    assert [word(w, letters(4)) for w in relation.words] == ["ABCD"] and relation.signs == (1,)
    # A = BCD, AB = CD: every alias of A up to three factors, and of AB up to two
    a, ab = 0b0001, 0b0011
    assert [(word(m, letters(4)), s) for m, s in relation.aliases(a, 3)] == [("BCD", 1)]
    assert [(word(m, letters(4)), s) for m, s in relation.aliases(ab, 2)] == [("CD", 1)]
    # the other half fraction, D = -ABC, has I = -ABCD
    assert defining_relation(_book(4, ["D = -ABC"])).signs == (-1,)


def test_resolution_gives_the_fewest_runs() -> None:
    assert fractional.by_resolution(7, 4).runs == 16  # not 128
    assert fractional.by_resolution(7, 3).runs == 8
    assert fractional.by_resolution(5, 5).runs == 16
    assert fractional.by_runs(7, 32).runs == 32
    with pytest.raises(AblateError, match="only the full factorial"):
        fractional.by_resolution(3, 4)
    with pytest.raises(AblateError, match="has 8, 16, 32 or 64 runs, not 4"):
        fractional.by_runs(7, 4)


def test_fold_overs_of_montgomery_example_8_7() -> None:
    # 2^(7-4)_III, D = AB, E = AC, F = BC, G = ABC; folding every factor gives resolution IV
    # with I = ABCG = BCDE = ACDF = ADEG = BDFG = ABEF = CEFG (Montgomery, Example 8.7).
    base = _book(7, TABLE_8_14[(7, 4)][2])
    both = np.vstack([base, fractional.fold(base)])
    relation = defining_relation(both)
    assert relation.resolution == 4 and relation.p == 3
    words = sorted(word(w, letters(7)) for w in relation.words)
    assert words == sorted(["ABCG", "BCDE", "ACDF", "ADEG", "BDFG", "ABEF", "CEFG"])
    # folding on A alone breaks the chains that hold A: word-length pattern [4, 3, 0, 0, 0]
    on_a = defining_relation(np.vstack([base, fractional.fold(base, [0])]))
    assert on_a.word_length_pattern() == [4, 3, 0, 0, 0] and on_a.resolution == 3
    assert np.array_equal(fractional.fold(base), -base)  # the new runs, in the old order


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("E ABC", "not of the form"),
        ("E = AB\nC", "not of the form"),  # a line break in a quoted YAML string
        ("E = AE", "contains it"),
        ("E = A", "at least two factors"),
        ("E = AAB", "twice"),
        ("E = ABZ", "'Z' is neither"),
    ],
)
def test_generators_are_checked(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fractional.parse_generator(text, ["a", "b", "c", "d", "e"])


def test_generators_by_letter_or_by_name() -> None:
    names = ["lr", "bn", "drop", "wide"]
    by_letter = fractional.parse_generator("D = -ABC", names)
    by_name = fractional.parse_generator("wide = -lr*bn*drop", names)
    assert by_letter == by_name == fractional.Generator(3, (0, 1, 2), -1)
    with pytest.raises(ValueError, match="D = -ABC uses C, which a generator defines"):
        fractional.check_generators([by_letter, fractional.parse_generator("C = AD", names)], 4)
