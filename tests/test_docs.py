"""The documentation site: built by Sphinx with warnings as errors, its generated reference
pages complete (every study-file key, every command's every option, every column ablate
writes), and no page citing a file the repository does not have."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytest.importorskip("sphinx", reason="the docs extra is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr  # a warning is an error
    return out


def _page(name: str) -> str:
    return (ROOT / "docs" / "reference" / "generated" / name).read_text()


def test_the_site_builds_in_strict_mode_with_every_page(site: Path) -> None:
    pages = [p.relative_to(ROOT / "docs").with_suffix("") for p in (ROOT / "docs").rglob("*.md")]
    assert len(pages) >= 25
    for page in pages:
        if page.parts[0] != "_build":
            assert (site / f"{page}.html").is_file(), page


def test_the_generated_reference_pages_hold_every_key_option_and_column(site: Path) -> None:
    from ablate.cli.reference import commands, options
    from ablate.results.export import EPOCH_TIMES, KEYS, MEANINGS, PROVENANCE
    from ablate.study.reference import keys

    study_file = _page("study-file.md")
    for key in keys():
        assert f"`{key.path}`" in study_file, key.path
    cli = _page("cli.md")
    for name, (command, _) in commands().items():
        assert f"## `ablate {name}`" in cli
        for action in options(command):
            for option in action.option_strings:
                assert f"`{option}" in cli, (name, option)
    results = _page("results.md")
    for column in (*KEYS, *PROVENANCE, *EPOCH_TIMES):
        assert f"`{column}`" in results and column in MEANINGS, column


def test_every_option_is_printed_as_typed(site: Path) -> None:
    """No "--" turned into an en dash, no empty code or "[]" as a default, on any page: a
    copied flag must work."""
    dash = re.compile(r"–[a-z]")  # an en dash where a flag begins
    for page in site.rglob("*.html"):
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        text = page.read_text()
        assert not dash.search(text), (page, dash.search(text).group(0))
        assert '<span class="pre"></span></code>' not in text, page
    for name in ("cli.html", "study-file.html"):
        text = (site / "reference" / "generated" / name).read_text()
        assert '<span class="pre">[]</span>' not in text, name
        assert "--until-halfwidth" in (site / "reference" / "generated" / "cli.html").read_text()


def test_code_blocks_fit_100_columns() -> None:
    """Every line of every code block fits the 100 columns ablate prints and the pages show."""
    block = re.compile(r"^```\w*\n(.*?)^```", re.S | re.M)
    for page in (ROOT / "docs").rglob("*.md"):
        if "_build" in page.parts:
            continue
        for body in block.findall(page.read_text()):
            long = [line for line in body.splitlines() if len(line) > 100]
            assert not long, (page.name, long)


@pytest.mark.slow
@pytest.mark.browser
def test_nothing_is_cut_off_at_1280_pixels(site: Path, tmp_path: Path) -> None:
    """Every page in headless Chromium at 1280 px: no code block or table wider than its box,
    and no page wider than the window."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("needs chromium and chromedriver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-dev-shm-usage",
                 "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    wide = (
        "return Array.from(document.querySelectorAll('pre, table')).filter(e => "
        "e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 60))"
    )
    cut = {}
    try:
        for page in sorted(site.rglob("*.html")):
            if {"_static", "_sources"} & set(page.parts) or page.name in (
                "genindex.html",
                "search.html",
            ):
                continue
            driver.get(page.as_uri())
            over = driver.execute_script(wide)
            body = driver.execute_script("return document.documentElement.scrollWidth")
            if over or body > 1280:
                cut[str(page.relative_to(site))] = (body, over)
    finally:
        driver.quit()
    assert not cut, cut


#: Files ablate writes (into a results folder), which pages name without citing them.
WRITTEN = {"report.md"}


def test_no_page_cites_a_file_the_repository_does_not_have() -> None:
    cited = re.compile(r"`((?:[\w.-]+/)*[\w.-]+\.(?:md|py|yaml|json|png))`")
    for page in (ROOT / "docs").rglob("*.md"):
        for path in cited.findall(page.read_text()):
            written = path in WRITTEN or path.startswith("results/")
            if ("/" in path or path.endswith(".md")) and not written:
                assert (ROOT / path).exists(), f"{page.name} cites {path}"


def _docs(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def _table(text: str, marker: str) -> str:
    begin = text.index(f"<!-- {marker}")
    start = text.index("\n", begin) + 1
    end = text.index(f"<!-- end {marker} -->")
    return text[start:end].strip()


@pytest.mark.parametrize("name", ["vae", "multiscale_cnn", "lstm_attention"])
def test_every_built_in_models_parameter_table_is_its_declaration(name: str) -> None:
    from ablate.models.registry import BUILDERS
    from ablate.parameters import markdown_table

    parameters = BUILDERS[name].parameters
    assert parameters is not None and set(BUILDERS) == {"vae", "multiscale_cnn", "lstm_attention"}
    assert _table(_docs("guide/models.md"), f"{name} parameters") == markdown_table(parameters)


def test_every_data_source_and_the_sequence_options_are_documented() -> None:
    from ablate.data import SOURCES
    from ablate.parameters import markdown_table

    data = _docs("guide/data.md")
    for name in SOURCES:
        assert f"| `{name}` |" in data, name
    options = SOURCES["attention-sequences"].options
    assert options is not None
    assert _table(data, "attention-sequences options") == markdown_table(options)


def test_the_jax_environment_is_installed_as_ci_installs_it() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    running = _docs("guide/running.md")
    for command in ("install", "-e '.[jax]'"):
        assert command in running and command in ci, command


def test_every_training_setting_is_in_the_study_file_example() -> None:
    from ablate.study.settings import TrainingSettings

    example = _docs("guide/study-files.md").split("```yaml", 1)[1].split("```", 1)[0]
    for name in TrainingSettings.__dataclass_fields__:
        assert f"\n  {name}: " in example, name


def test_every_environment_variable_the_code_reads_or_sets_is_documented() -> None:
    page = _docs("reference/environment.md")
    named = re.compile(r"""environ(?:\.get\(|\.setdefault\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']""")
    constants = re.compile(r'^[A-Z_]+ = "((?:ABLATE|KERAS|TF|XLA|CUDA|SLURM)_[A-Z0-9_]+)"', re.M)
    found = set()
    for path in [*(ROOT / "ablate").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        text = path.read_text()
        found |= set(named.findall(text)) | set(constants.findall(text))
    datasets = (ROOT / "ablate" / "data" / "keras_datasets.py").read_text()
    found |= set(re.findall(r'"(ABLATE_[A-Z0-9_]+)",? ', datasets))  # each dataset's variable
    assert {"ABLATE_STORAGE", "ABLATE_MNIST", "KERAS_BACKEND", "ABLATE_TEST_POSTGRES"} <= found
    ours = ("ABLATE_", "KERAS_", "TF_", "XLA_", "CUDA_", "SLURM_", "OMP_", "MKL_")
    for name in (n for n in found if n.startswith(ours)):  # (tests also set TZ, PATH...)
        assert f"`{name}`" in page, name


def test_every_public_name_is_on_the_api_page(site: Path) -> None:
    import ablate

    page = _docs("reference/api.md")
    html = (site / "reference" / "api.html").read_text()
    for name in ablate.__all__:
        assert f".{name}\n" in page, name
        assert 'id="ablate.' in html and f"{name}</span>" in html, name


def test_the_benchmark_page_lists_every_result_with_its_machine(site: Path) -> None:
    import json

    page = _page("benchmarks.md")
    for path in (ROOT / "bench" / "results").glob("*.json"):
        machine = json.loads(path.read_text())["machine"]
        row = next(line for line in page.splitlines() if f"`{path.name}`" in line)
        assert str(machine.get("cpu") or machine.get("gpu", "")).split(" (")[0] in row, path.name


def test_every_test_a_page_names_exists() -> None:
    named = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
    seen = 0
    for page in (ROOT / "docs").rglob("*.md"):
        for path, name in named.findall(page.read_text()):
            seen += 1
            assert f"def {name}(" in (ROOT / path).read_text(), f"{page.name}: {path}::{name}"
    assert seen >= 10
