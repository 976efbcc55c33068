"""Shared fixtures: a tiny real study (small VAE, bundled MNIST sample) and a quiet backend."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports TensorFlow: CPU only, no start-up chatter, deterministic threads.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABLATE_OFFLINE", "1")

from tests.helpers import tiny_study_text


@pytest.fixture
def tiny_study_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(tiny_study_text(tmp_path / "results"))
    return path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server named by ABLATE_TEST_POSTGRES, dropped after."""
    server = os.environ.get("ABLATE_TEST_POSTGRES")
    if not server:
        pytest.skip("set ABLATE_TEST_POSTGRES to a PostgreSQL URL (.ci/run does)")
    import sqlalchemy

    name = f"ablate_test_{os.getpid()}_{time.monotonic_ns()}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny study (4 cells, 2 epochs, 2 replicates), trained once per session."""
    from ablate.config import parse_study
    from ablate.runner import run_study

    root = tmp_path_factory.mktemp("tiny-results")
    study = parse_study(tiny_study_text(root, epochs=2, replicates=2))
    summary = run_study(study, workers=2, live=False)
    assert summary.complete == 8
    return study.results_dir
