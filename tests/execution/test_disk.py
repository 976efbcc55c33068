"""A disk that fills mid-study (a real tmpfs of 8 MB, filled to the last byte): the run stops
with one sentence saying to free space and run the same command again, no traceback and no
lost result; once there is room, the same command completes the study."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ROOT, function_study_text, run_cli


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_the_way_out_and_a_rerun_completes(
    tmp_path: Path, small_disk: Path
) -> None:
    study = tmp_path / "fn.yaml"
    study.write_text(function_study_text(small_disk / "results", "noisy", replicates=2))
    env = {"PYTHONPATH": str(ROOT)}
    first = run_cli("run", str(study), "--workers", "1", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr  # the study's folder and journal exist now
    (study.parent / "more.yaml").write_text(
        function_study_text(small_disk / "results", "noisy", replicates=6)
    )
    filler = _fill(small_disk)
    full = run_cli("run", str(study.parent / "more.yaml"), "--workers", "1", cwd=tmp_path, env=env)
    assert full.returncode == 2, full.stderr
    assert "is full" in full.stderr and "run the same command again" in full.stderr, full.stderr
    assert "Traceback" not in full.stderr and "unexpected" not in full.stderr
    filler.unlink()
    again = run_cli("run", str(study.parent / "more.yaml"), "--workers", "1", cwd=tmp_path,
                    env=env)  # fmt: skip
    assert again.returncode == 0, again.stderr
    trials = pd.read_parquet(small_disk / "results" / "fn" / "trials.parquet")
    assert len(trials) == 24 and trials["trial_key"].is_unique
    assert (trials["status"] == "complete").all()
