"""The README documents what the code declares: the model's parameters, the data sources."""

from __future__ import annotations

import pytest

from ablate.data import SOURCES
from ablate.models.registry import BUILDERS
from ablate.parameters import markdown_table
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def _table(marker: str) -> str:
    begin = README.index(f"<!-- {marker}")
    start = README.index("\n", begin) + 1
    end = README.index(f"<!-- end {marker} -->")
    return README[start:end].strip()


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_built_in_models_parameter_table_is_its_declaration(name: str) -> None:
    parameters = BUILDERS[name].parameters
    assert parameters is not None
    assert _table(f"{name} parameters") == markdown_table(parameters)


def test_the_sequence_options_table_is_the_declaration() -> None:
    options = SOURCES["attention-sequences"].options
    assert options is not None
    assert _table("attention-sequences options") == markdown_table(options)


def test_every_data_source_is_documented() -> None:
    for name in SOURCES:
        assert f"| `{name}` |" in README, name


def test_the_jax_environment_is_installed_as_ci_installs_it() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("$(.ci/requirements jax)", "--no-deps -e ."):
        assert command in README and command in ci, command


def test_every_training_setting_is_in_the_study_file_example() -> None:
    from ablate.study.settings import TrainingSettings

    example = README[README.index("## Study files") : README.index("### Tasks")]
    for name in TrainingSettings.__dataclass_fields__:
        assert f"\n  {name}: " in example, name
