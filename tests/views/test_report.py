"""The study report: every table and chart, self-contained, loads in a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ablate.results import load_outputs, load_results
from ablate.stats.analysis import analyze
from ablate.views.report import write_report
from tests.helpers import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.slow
def test_report_holds_every_table_and_chart(tiny_results: Path, tmp_path: Path) -> None:
    results = load_results(tiny_results)
    analysis = analyze(results)
    report = write_report(results, analysis, tmp_path)
    page = report.html.read_text()
    for section in ("study", "design", "coefficients", "effects", "anova", "lack_of_fit",
                    "marginal_means", "cells", "importance", "fit", "charts",
                    "findings"):  # fmt: skip
        assert f'id="{section}"' in page, section
    # A table of contents; what the study found comes first, as a list, then the charts, the
    # tables, and the study file last.
    assert page.index("<nav>") < page.index('id="findings"')
    assert all(f'href="#{s}"' in page for s in ("findings", "charts", "anova", "study"))
    order = [page.index(f'id="{s}"') for s in ("findings", "charts", "design", "study")]
    assert order == sorted(order)
    found = re.search(r'<ul class="findings">(.*?)</ul>', page).group(1)
    assert found.count("<li>") == len(analysis.findings) and "<li>- " not in found
    assert "--" not in found  # no command-line advice in the findings: it is in the box
    assert '<aside class="next">' in page and "<code>replicates: 4 in the study file</code>" in page
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    stems = {p.stem for p in report.charts}
    assert len(images) == len(report.charts) == 10  # 8 analysis charts + best + worst
    assert {"learned_best", "learned_worst", "learning_curves", "importance", "effects"} <= stems
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert len(set(captions)) == len(captions)  # each chart its own caption
    assert any(c.startswith("What the best trial (") for c in captions)
    assert any(c.startswith("What the worst trial (") for c in captions)
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch from a network
    md = report.markdown.read_text()
    assert md.count("](plots/") == 10 and "## ANOVA" in md and "```yaml" in md
    assert "> **Next steps**" in md


@pytest.mark.slow  # a few seconds (the fast part stays under 3 minutes)
def test_user_text_is_inert_in_both_reports(tmp_path: Path) -> None:
    """A level named like markup is text in report.md and report.html, never live HTML."""
    import pandas as pd

    from ablate.results import Results

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"act": ["<script>alert(1)</script>", "*bold*"] * 6,
                          "bn": [True] * 6 + [False] * 6, "y": rng.normal(size=12)})  # fmt: skip
    results = Results(frame, None, None, tmp_path / "table.parquet")
    report = write_report(results, analyze(results, factors=("act", "bn"), response="y"),
                          tmp_path)  # fmt: skip
    md, page = report.markdown.read_text(), report.html.read_text()
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "\\*bold\\*" in md
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.slow
def test_saved_outputs_are_small_and_complete(tiny_results: Path) -> None:
    trials = load_results(tiny_results).trials
    for key in trials["trial_key"]:
        out = load_outputs(tiny_results, key)
        assert out is not None
        assert out["latent"].shape == (64, 2) and out["labels"].shape == (64,)
        assert out["originals"].shape == out["reconstructions"].shape == (10, 28, 28)
        assert out["walk"].shape == (100, 28, 28)
    sizes = [p.stat().st_size for p in (tiny_results / "outputs").glob("*.npz")]
    assert len(sizes) == 8 and max(sizes) < 100_000  # tens of kB, not megabytes


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver")
def test_the_html_report_loads_in_headless_chromium_with_every_image(
    tiny_results: Path, tmp_path: Path
) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    proc = run_cli("report", str(tiny_results), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get((tmp_path / "report.html").as_uri())
        assert driver.title.startswith("Ablation study tiny")
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])"
        )
        charts = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
        assert len(charts) == 11 and "effects_over_epochs.png" in charts
        assert len(images) == len(charts)  # every chart written is shown, and loads
        assert all(done and width > 0 for done, width in images)
        tables = driver.execute_script("return document.querySelectorAll('table').length")
        assert tables >= 6
    finally:
        driver.quit()
