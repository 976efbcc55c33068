"""The study file's reference is generated from the same declarations the parser reads: every
key it lists is accepted (with its documented default), and no other key is."""

from __future__ import annotations

import pytest
import yaml

from ablate.errors import StudyFileError
from ablate.study import parse_study
from ablate.study.reference import Key, keys, markdown

BASE = {"name": "ref", "factors": {"batch_norm": [True, False], "activation": ["relu", "elu"]}}
#: A study trained by a user's function, for the keys of trainer: and responses:.
TRAINER = {**BASE, "trainer": {"function": "tests.user_trainers:noisy"},
           "responses": {"score": {"goal": "max"}}}  # fmt: skip


def _with(path: str, value: object) -> str:
    own = path.startswith(("trainer.", "responses."))
    study = {
        k: dict(v) if isinstance(v, dict) else v for k, v in (TRAINER if own else BASE).items()
    }
    path = path.replace("<name>", "score")
    *sections, key = path.split(".")
    node = study
    for section in sections:
        node = node.setdefault(section, {})
    node[key] = value
    return yaml.safe_dump(study)


# (the keys of design: but its type apply to some types only: tests/study/test_parse.py)
@pytest.mark.parametrize(
    "key",
    [k for k in keys() if k.parameter.kind != "custom" and k.path != "design.model"
     and not k.parameter.required],
    ids=lambda k: k.path,
)  # fmt: skip
def test_every_documented_key_is_accepted_with_its_default(key: Key) -> None:
    default = key.parameter.default
    study = parse_study(_with(key.path, default))
    section, _, name = key.path.rpartition(".")
    if section == "responses.<name>":
        value = getattr(study.responses[0], name)
    else:
        value = getattr(getattr(study, section) if section else study, name)
    assert value == key.parameter.normalise(default)


@pytest.mark.parametrize("section", ["", "training", "data", "run", "analysis", "design"])
def test_a_key_the_reference_does_not_list_is_refused(section: str) -> None:
    documented = {k.path for k in keys()}
    path = f"{section}.undocumented" if section else "undocumented"
    assert path not in documented
    with pytest.raises(StudyFileError, match="unknown key"):
        parse_study(_with(path, 1))


def test_the_reference_lists_every_section_and_model() -> None:
    text = markdown()
    for key in keys():
        assert f"`{key.path}`" in text, key.path
    for title in ("`training:`", "`design:`", "Model `vae`", "Model `lstm_attention`"):
        assert title in text
