"""The README documents what the code declares: the model's parameters, the data sources."""

from __future__ import annotations

from ablate.data import SOURCES
from ablate.models.registry import VAE
from ablate.parameters import markdown_table
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def test_the_vae_parameter_table_is_the_declaration() -> None:
    begin = README.index("<!-- vae parameters")
    start = README.index("\n", begin) + 1
    end = README.index("<!-- end vae parameters -->")
    assert README[start:end].strip() == markdown_table(VAE.parameters)


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
