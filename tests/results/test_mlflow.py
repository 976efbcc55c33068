"""Exporting a study to MLflow: a real study (a training function, no framework) exported to
a real MLflow tracking server, read back through MLflow's own client, and exported again."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ablate.errors import AblateError
from ablate.results import Results, load_results
from ablate.results.export import write_parquet
from tests.helpers import ROOT, function_study_text, run_cli

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # a study in worker processes and an MLflow server (~20 s)


@pytest.fixture(scope="module")
def noisy_results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """A finished study of tests.user_trainers:noisy: 4 cells, 2 replicates, 3 epochs each."""
    from ablate.execution.runner import run_study
    from ablate.study import parse_study

    root = tmp_path_factory.mktemp("mlflow-study")
    study = parse_study(function_study_text(root / "results", "noisy", replicates=2))
    with pytest.MonkeyPatch.context() as mp:  # the workers import tests.user_trainers
        path = os.environ.get("PYTHONPATH")
        mp.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *([path] if path else [])]))
        summary = run_study(study, workers=1, live=False)
    assert (summary.complete, summary.total) == (8, 8)
    return load_results(study.results_dir)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server on 127.0.0.1 (SQLite store, local artifacts), stopped
    after the module's tests."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [*_server(), "server", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", str(root / "artifacts")]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(root / "server.log", "wb") as log:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log,
                                  start_new_session=True)  # fmt: skip
    try:
        uri = f"http://127.0.0.1:{port}"
        _wait_for(uri, server, root / "server.log")
        yield uri
    finally:
        _stop(server)


def _server() -> list[str]:
    """The `mlflow` command that serves: ABLATE_TEST_MLFLOW's (.ci/run installs the full MLflow
    in an environment of its own; ablate's has the client, mlflow-skinny), else this Python's
    where it has the server."""
    given = os.environ.get("ABLATE_TEST_MLFLOW")
    if given:
        return [given]
    try:
        import mlflow.server  # noqa: F401
    except ImportError:
        pytest.skip("no MLflow server: set ABLATE_TEST_MLFLOW to an `mlflow` command")
    return [sys.executable, "-m", "mlflow"]


def _wait_for(uri: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers its health check (a minute at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"mlflow server did not answer at {uri} within 60 s:\n{log.read_text()}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Terminate the server (it ends its own workers), then kill its process group."""
    server.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):  # anything of it still there: its own group
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=15)


def test_a_study_exports_to_mlflow_as_a_run_per_trial_and_again_without_duplicates(
    noisy_results: Results, mlflow_uri: str, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from ablate.results.mlflow_export import export_to_mlflow

    analysis = tmp_path / "analysis.json"
    analysis.write_text(json.dumps({"response": "score"}))
    folder = noisy_results.source
    first = export_to_mlflow(folder, mlflow_uri, artifacts=[analysis])
    assert (first.runs_created, first.runs_updated) == (9, 0)
    assert first.metrics_logged > 8 * 5  # 3 epochs of train_loss, score, loss, ... each

    client = MlflowClient(tracking_uri=mlflow_uri)
    study = noisy_results.study
    assert study is not None
    experiment = client.get_experiment_by_name(f"ablate/{study.name}")
    assert experiment is not None and experiment.experiment_id == first.experiment_id
    parent, children = _runs(client, experiment.experiment_id)
    assert parent.info.run_id == first.parent_run_id and parent.info.run_name == study.name
    assert parent.data.tags["ablate.study"] == study.name
    assert parent.data.tags["ablate.fingerprint"] == study.fingerprint()
    assert json.loads(parent.data.params["factors"]) == {"wide": [False, True],
                                                        "deep": [False, True]}  # fmt: skip
    assert (parent.data.params["replicates"], parent.data.params["seed"]) == ("2", "768")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"analysis.json", "study.yaml"} <= artifacts
    _check_children(client, noisy_results, parent.info.run_id, children)
    assert {k: r.info.run_id for k, r in children.items()} == dict(first.child_run_ids)

    second = export_to_mlflow(folder, mlflow_uri, artifacts=[analysis])
    assert (second.runs_created, second.runs_updated, second.metrics_logged) == (0, 0, 0)
    assert (second.parent_run_id, dict(second.child_run_ids)) == (
        first.parent_run_id, dict(first.child_run_ids),
    )  # fmt: skip
    parent_again, children_again = _runs(client, experiment.experiment_id)
    assert len(children_again) == 8 and parent_again.info.run_id == parent.info.run_id
    for run in children_again.values():
        for key in ("train_loss", "score", "loss"):
            history = client.get_metric_history(run.info.run_id, key)
            assert len(history) == (3 if key == "train_loss" else 1), (key, history)

    # A trial that failed since (its status changed): its run is updated, not duplicated.
    copy = shutil.copytree(folder, tmp_path / folder.name)
    trials = noisy_results.trials.copy()
    trials.loc[0, ["status", "error"]] = ["failed", "ValueError: " + "x" * 600]
    write_parquet(trials, copy / "trials.parquet", {})
    third = export_to_mlflow(copy, mlflow_uri)
    assert (third.runs_created, third.metrics_logged) == (0, 0)
    assert third.runs_updated == 2  # the trial's run, and the study's (its results folder)
    failed = client.get_run(third.child_run_ids[trials.loc[0, "trial_key"]])
    assert failed.info.status == "FAILED" and failed.data.tags["ablate.status"] == "failed"
    assert len(failed.data.tags["ablate.error"]) == 500
    assert len(_runs(client, experiment.experiment_id)[1]) == 8


def _runs(client: Any, experiment_id: str) -> tuple[Any, dict[str, Any]]:
    """The experiment's only parent run, and its children by trial key (each key once)."""
    runs = client.search_runs([experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(runs) == 9
    children = {r.data.tags["ablate.trial_key"]: r for r in runs if r not in parents}
    assert len(children) == 8
    return parents[0], children


def _check_children(
    client: Any, results: Results, parent_id: str, children: dict[str, Any]
) -> None:
    """Each child run holds its trial's levels, values, per-epoch history and tags."""
    trials = results.trials.set_index("trial_key")
    assert set(children) == set(trials.index)
    for key, run in children.items():
        trial = trials.loc[key]
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags["mlflow.parentRunId"] == parent_id
        assert run.info.run_name == f"{trial['cell']} r{trial['replicate']}"
        assert (params["wide"], params["deep"]) == (str(trial["wide"]), str(trial["deep"]))
        assert metrics["score"] == pytest.approx(trial["score"], rel=1e-12)
        assert metrics["loss"] == pytest.approx(trial["loss"], rel=1e-12)
        assert {k: tags[f"ablate.{k}"] for k in ("cell", "replicate", "seed", "status",
                                                   "attempts")} == {
            k: str(trial[k]) for k in ("cell", "replicate", "seed", "status", "attempts")
        }  # fmt: skip
        assert tags["ablate.trial_key"] == key and run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "train_loss")
        history = sorted(history, key=lambda m: m.step)
        assert [m.step for m in history] == [1, 2, 3]
        assert [m.value for m in history] == pytest.approx([1.0, 0.5, 1 / 3])


def test_a_bad_uri_a_folder_without_trials_and_a_missing_mlflow_are_clear_errors(
    noisy_results: Results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ablate.results.mlflow_export import export_to_mlflow

    folder = noisy_results.source
    started = time.monotonic()
    with pytest.raises(AblateError, match=re.escape("http://127.0.0.1:1")) as err:
        export_to_mlflow(folder, "http://127.0.0.1:1")
    assert "mlflow server" in str(err.value) and time.monotonic() - started < 10

    empty = tmp_path / noisy_results.source.name
    empty.mkdir()
    (empty / "study.yaml").write_bytes((folder / "study.yaml").read_bytes())
    with pytest.raises(AblateError, match="trials"):
        export_to_mlflow(empty, "http://127.0.0.1:1")

    with pytest.raises(AblateError, match="no such file"):
        export_to_mlflow(folder, "http://127.0.0.1:1", artifacts=[tmp_path / "missing.json"])

    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # as if it were not installed
    with pytest.raises(AblateError, match=re.escape("pip install 'ablate[mlflow]'")):
        export_to_mlflow(folder, "http://127.0.0.1:1")


def test_the_export_command_attaches_the_analysis_and_the_report(
    noisy_results: Results, mlflow_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    folder = noisy_results.source
    done = run_cli("export", str(folder), "--mlflow", mlflow_uri, "--experiment", "from-cli")
    assert done.returncode == 0, done.stderr
    assert "8 trial runs under run" in done.stdout and "(9 created, 0 updated" in done.stdout
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("from-cli")
    assert experiment is not None
    parent, _ = _runs(client, experiment.experiment_id)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"analysis.json", "report.html", "study.yaml"} <= artifacts
    local = client.download_artifacts(parent.info.run_id, "analysis.json")
    analysis = json.loads(Path(local).read_text())
    assert {row["factor"] for row in analysis["effects"]} == {"wide", "deep"}
    again = run_cli("export", str(folder), "--mlflow", mlflow_uri, "--experiment", "from-cli")
    assert "(0 created, 0 updated, 0 metric values logged)" in again.stdout, again.stderr
    assert len(_runs(client, experiment.experiment_id)[1]) == 8
    bare = run_cli("export", str(folder), "--experiment", "x")
    assert bare.returncode == 2 and "give --mlflow URI too" in bare.stderr
