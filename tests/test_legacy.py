"""What ablate 0.1.0 wrote is read by this version: a results folder with its journal, and a
PostgreSQL database (as pg_dump wrote it), both recorded by main at a247dc8
(tests/fixtures/legacy-0.1.0; the study file beside them is how they were made)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ablate.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "legacy-0.1.0"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _copy(tmp_path: Path, folder: str, results: str, name: str) -> Path:
    target = tmp_path / results / name
    shutil.copytree(FIXTURES / folder, target)
    return target


def _reads_everything(capsys: pytest.CaptureFixture[str], results: Path, *storage: str) -> None:
    before = pd.read_parquet(results / "trials.parquet")
    code, out, err = _cli(capsys, "status", str(results), *storage)
    assert code == 0, err
    assert "4/8 complete · 4 failed · 0 diverged · 0 running · 0 waiting" in out
    code, out, err = _cli(capsys, "doctor", str(results), *storage)
    assert code == 0, out + err
    assert "PROBLEM" not in out
    code, out, err = _cli(capsys, "export", str(results), *storage)
    assert code == 0 and "exported 8 finished trials" in out, err
    after = pd.read_parquet(results / "trials.parquet")
    same = ["trial_key", "status", "mode", "width", "test_loss", "attempts", "optuna_trial"]
    pd.testing.assert_frame_equal(
        before[same].reset_index(drop=True), after[same].reset_index(drop=True)
    )
    assert len(list((results / "outputs").glob("*.npz"))) == 4
    code, out, err = _cli(capsys, "analyze", str(results), "--factors", "width",
                          "--format", "json")  # fmt: skip
    assert code == 0, err
    assert '"n_used": 4' in out


def test_a_journal_study_of_0_1_0_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    results = _copy(tmp_path, "results-legacy", "results", "legacy")
    monkeypatch.chdir(tmp_path)  # its study says results: results
    _reads_everything(capsys, results)


@pytest.mark.postgres
def test_a_postgresql_study_of_0_1_0_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
) -> None:  # fmt: skip
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed (.ci/run installs PostgreSQL)")
    restore = subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", postgres_url, "-f",
         str(FIXTURES / "legacy-pg.sql")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert restore.returncode == 0, restore.stderr
    results = _copy(tmp_path, "results-legacy-pg", "pgresults", "legacy-pg")
    monkeypatch.chdir(tmp_path)
    _reads_everything(capsys, results, "--storage", postgres_url)
