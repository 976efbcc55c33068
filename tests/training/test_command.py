"""The command trainer: a real program run once per trial (tests/command_program.py, /bin/sh,
printf), its levels rendered as command lines expect, its result file read, its failures said
with the exit code and the log's last lines, its process group ended on a stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ablate.errors import AblateError
from ablate.study import load_study
from ablate.study.grid import TrialSpec, expand_trials
from ablate.training.command import CommandTrainer, template_fields
from ablate.training.records import EpochRecord
from ablate.training.trainers import trainer_for
from tests.helpers import command_study_text, run_cli


class Seen:
    """A trial's :class:`~ablate.training.base.Live`: what the trainer reported."""

    def __init__(self) -> None:
        self.epochs: list[EpochRecord] = []
        self.signs = 0
        self.pids: list[int | None] = []

    def epoch(self, record: EpochRecord) -> None:
        self.epochs.append(record)

    def progress(self, images: int) -> None:
        self.signs += 1

    def process(self, pid: int | None) -> None:
        self.pids.append(pid)


def _trainer(tmp_path: Path, mode: str = "ok", **kw: Any) -> CommandTrainer:
    path = tmp_path / "cmd.yaml"
    path.write_text(command_study_text(tmp_path / "results", mode, **kw))
    trainer = trainer_for(load_study(path))
    assert isinstance(trainer, CommandTrainer)
    return trainer


def _wide_deep(trainer: CommandTrainer) -> TrialSpec:
    return next(
        s for s in expand_trials(trainer.study) if s.cell.as_dict() == {"wide": True, "deep": True}
    )


def _study(tmp_path: Path, trainer: str | dict[str, Any],
           factors: str = "{bn: [false, true]}") -> CommandTrainer:  # fmt: skip
    path = tmp_path / "s.yaml"
    if isinstance(trainer, dict):
        trainer = json.dumps(trainer)  # JSON is YAML, quoted right
    path.write_text(f"name: s\ntrainer: {trainer}\nresponses: {{score: max}}\n"
                    f"factors: {factors}\nresults: {tmp_path / 'results'}\n")  # fmt: skip
    found = trainer_for(load_study(path))
    assert isinstance(found, CommandTrainer)
    return found


def test_levels_are_rendered_as_command_lines_expect(tmp_path: Path) -> None:
    factors = '{bn: [true, false], act: ["it\'s a b", relu], rate: [0.5, 0.25]}'
    fields = "--bn={bn} {bn:flag=--batch-norm} {bn:int} {act} {rate:.3f} {seed} {epochs}"
    plain = _study(tmp_path, {"command": f"printf %s| {fields}", "options": {"epochs": 3}},
                   factors)  # fmt: skip
    first = expand_trials(plain.study)[0]  # bn true, act "it's a b", rate 0.5
    argv = plain.argv(first, tmp_path)
    assert argv == ["printf", "%s|", "--bn=true", "--batch-norm", "1", "it's a b", "0.500",
                    str(first.seed), "3"]  # fmt: skip
    off = next(s for s in expand_trials(plain.study) if s.cell.as_dict()["bn"] is False)
    assert "--batch-norm" not in plain.argv(off, tmp_path)  # a false flag: no argument at all

    shell = _study(tmp_path, {"command": f"printf '%s|' {fields}", "shell": True,
                              "options": {"epochs": 3}}, factors)  # fmt: skip
    said = subprocess.run(shell.argv(first, tmp_path), capture_output=True, text=True, check=True)
    assert said.stdout == f"--bn=true|--batch-norm|1|it's a b|0.500|{first.seed}|3|"


def test_the_checks_name_an_unknown_field_and_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(AblateError, match="names bogus, which is not a factor") as caught:
        _study(tmp_path, '{command: "python train.py --x {bogus} --out {result}"}').check()
    assert "known here: bn, epochs_file" in str(caught.value)
    with pytest.raises(AblateError, match="'no-such-program' is not found"):
        _study(tmp_path, '{command: "no-such-program {bn}"}').check()
    (tmp_path / "train.sh").write_text("#!/bin/sh\n")
    with pytest.raises(AblateError, match=r"train.sh is not executable; make it so \(chmod"):
        _study(tmp_path, '{command: "./train.sh {bn}"}').check()
    with pytest.raises(AblateError, match=r"names print \$1, .* \(a literal brace is written {{"):
        _study(tmp_path, {"command": "awk '{print $1}' {bn}"}).check()
    with pytest.raises(AblateError, match=r"a literal brace as \{\{ or \}\}"):
        template_fields("python train.py --bn {bn")


def test_the_dry_run_prints_the_first_trials_command_as_it_will_run(tmp_path: Path) -> None:
    (tmp_path / "cmd.yaml").write_text(command_study_text(tmp_path / "results"))
    done = run_cli("run", "cmd.yaml", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())
    assert "Every check passed" in words and "The first trial runs: python " in words
    assert "--mode ok --wide false --deep false --seed 768 --out " in words
    assert "/results/cmd/trials/" in words and "/result.json" in words


@pytest.mark.parametrize(("mode", "status", "said"), [
    ("fail", "failed", ["the command exited with code 3", "ValueError: bad shape", "trial.log"]),
    ("signal", "failed", ["the command was killed by signal 9"]),
    ("noresult", "failed", ["exited 0 but wrote no result to", "result.json"]),
    ("badjson", "failed", ["is not JSON"]),
    ("missing", "failed", ["returned no loss, which responses: declares"]),
    ("nan", "diverged", ["returned a non-finite score"]),
])  # fmt: skip
def test_a_programs_failures_are_said_with_what_went_wrong(
    tmp_path: Path, mode: str, status: str, said: list[str]
) -> None:
    trainer = _trainer(tmp_path, mode)
    spec = expand_trials(trainer.study)[0]
    (result,) = trainer.train([spec], [Seen()], lambda: False)
    assert result.status == status
    for fragment in said:
        assert fragment in result.error
    assert result.transient == (mode == "signal")  # a killed program is tried again


def test_a_program_that_succeeds_gives_its_responses_and_epochs(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    spec, seen = _wide_deep(trainer), Seen()
    (result,) = trainer.train([spec], [seen], lambda: False)
    assert result.status == "complete", result.error
    assert result.values["score"] == pytest.approx(0.85 + (spec.seed % 7) * 0.01)
    assert [e.epoch for e in seen.epochs] == [1, 2] and len(result.history) == 2
    assert seen.epochs[1].values == {"loss": 0.5, "score": result.values["score"]}
    assert seen.signs >= 1 and seen.pids[-1] is None and seen.pids[0]
    workdir = trainer.folder(spec)
    assert workdir == trainer.study.results_dir.resolve() / "trials" / spec.key
    assert (workdir / "trial.log").read_text().startswith("$ python ")
    env = json.loads((workdir / "env.json").read_text())
    assert env["ABLATE_TRIAL_KEY"] == spec.key and env["ABLATE_SEED"] == str(spec.seed)


def _gone(pid: int) -> bool:
    """Whether a process has ended (a zombie waiting for init to reap it counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_a_stop_ends_the_program_and_what_it_started(tmp_path: Path) -> None:
    """A stop reaches the worker as KeyboardInterrupt (SIGTERM here, as its coordinator sends
    it): the program's whole process group ends before the trial goes back."""
    trainer = _trainer(tmp_path, "hang")
    spec = expand_trials(trainer.study)[0]
    child = trainer.folder(spec) / "child"

    def stop_when_running() -> None:
        deadline = time.monotonic() + 30
        while not child.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGUSR1)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, interrupt)
    threading.Thread(target=stop_when_running, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.train([spec], [Seen()], lambda: False)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert time.monotonic() - started < 20
    program = int((trainer.folder(spec) / "pid").read_text())
    grandchild = int(child.read_text())
    deadline = time.monotonic() + 5
    while not (_gone(program) and _gone(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(program) and _gone(grandchild)
