"""Shared fixtures: a tiny real study (small VAE, bundled MNIST sample) and a quiet backend."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: Any, name: str) -> None:
    """DROP ... WITH (FORCE) ends the sessions still in it; an autovacuum worker's only where
    the role may signal it (.ci/run grants pg_signal_backend): elsewhere, wait for it."""
    import sqlalchemy

    for attempt in range(10):
        try:
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            return
        except sqlalchemy.exc.ProgrammingError:
            if attempt == 9:
                raise
            time.sleep(1.0)


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny study (4 cells, 2 epochs, 2 replicates), trained once per session."""
    from ablate.execution.runner import run_study
    from ablate.study import parse_study

    root = tmp_path_factory.mktemp("tiny-results")
    study = parse_study(tiny_study_text(root, epochs=2, replicates=2))
    summary = run_study(study, workers=2, live=False)
    assert summary.complete == 8
    return study.results_dir


class PrivatePostgres:
    """A throwaway PostgreSQL server of the tests' own, which they may stop and start."""

    PASSWORD = "s3cret-PASS-4d9f"

    def __init__(self, root: Path) -> None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not versions:
            pytest.skip("PostgreSQL server binaries are not installed (.ci/run installs them)")
        self.bin = versions[-1].parent
        self.root = root
        self.data = root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://ablate:{self.PASSWORD}@127.0.0.1:{self.port}/postgres"
        as_root = os.geteuid() == 0
        self._prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            shutil.chown(root, "postgres", "postgres")
        pwfile = root / "pw"
        pwfile.write_text(self.PASSWORD + "\n")
        if as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "ablate", "--auth=scram-sha-256",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync")  # fmt: skip
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._prefix, str(self.bin / tool), *args], check=True,
                       capture_output=True, timeout=120)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    root = Path(tempfile.mkdtemp(prefix="ablate-pg-"))
    root.chmod(0o755)
    server = PrivatePostgres(root)
    try:
        yield server
    finally:
        server.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the background jobs of every module with a selected test (tests/background.py)."""
    from tests import background

    modules = {item.module for item in session.items if isinstance(item, pytest.Function)}
    for module in sorted(modules, key=lambda m: m.__name__):
        for name, make in getattr(module, "BACKGROUND", {}).items():
            background.start(name, make)
