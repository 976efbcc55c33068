"""Any program as a trial (``trainer: {command: ...}``): a command line run once per trial.

The study's command is a template; each trial fills in its fields and runs it in a folder of
its own, ``results/<study>/trials/<trial key>/``, its output (stdout and stderr) kept in
``trial.log`` there. The fields:

- each factor (``{activation}``) and each of ``trainer.options``: the trial's level, or the
  option's value; a boolean as ``true``/``false``, or with ``{bn:flag=--bn}`` the flag for a
  true level and nothing (no argument at all) for a false one, with ``{bn:int}`` as 1/0;
  other format specs as Python's (``{rate:.3g}``);
- ``{seed}``, ``{replicate}``, ``{trial_key}``, ``{workdir}`` (the trial's folder, where the
  program runs), ``{study_dir}`` (the study file's folder);
- ``{result}``: the file the program writes its responses to, as one JSON object
  (``{"val_accuracy": 0.91}``), every response ``responses:`` declares among them;
- ``{epochs_file}`` (optional): a file the program appends one JSON object per line to, an
  epoch each (``{"epoch": 3, "train_loss": 0.4}``): read as it grows, for live progress, the
  epochs table and the learning curves.

Without ``shell: true`` the command is split like a shell would (``shlex``) and run as an
argument list, each field one argument whatever it holds; with it, it runs under ``/bin/sh
-c`` with every value quoted for the shell. A path in the command that names a file beside the
study file (``train.py``, ``./score.sh``) is made absolute, so that the program is found from
the trial's folder. A line the program prints, or an epoch it writes, is a sign of progress
(``run.stall_timeout``). The program runs in a process group of its own, which a stop (Ctrl-C,
SIGTERM from SLURM, a time limit) ends -- SIGTERM, then SIGKILL 5 s later -- before the trial
goes back to the queue; a program whose worker is killed is killed with it (and its
coordinator kills the rest of its group). The outcome: a non-zero exit fails the trial
with the exit code and the log's last lines (tried again where a signal killed it); no result
file, a result that is not JSON, a missing or non-numeric response fail it naming the file and
what is wrong; a NaN or infinite response marks it diverged.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ablate.errors import AblateError
from ablate.study.grid import TrialSpec, expand_trials
from ablate.tasks.declared import DeclaredTask
from ablate.training import backend
from ablate.training.base import Checked, Live, StopRequested, Trainer
from ablate.training.records import EpochRecord, TrialResult
from ablate.training.user import outcome, stream_seeds

#: The fields every trial fills in, besides its factors and the options.
FIELDS = ("seed", "replicate", "trial_key", "workdir", "study_dir", "result", "epochs_file")
#: Where a trial's folders are, in the study's results folder.
TRIALS_DIR = "trials"
LOG = "trial.log"
#: Seconds a stopped program gets to end before its process group is killed.
GRACE = 5.0
#: Lines of the log a failed trial's message shows.
TAIL = 12


class _Fields(string.Formatter):
    """Formats a level as command lines expect it (see the module); ``quote``: each value
    quoted for the shell (a flag is the template's own text, and stays as written)."""

    def __init__(self, quote: bool = False) -> None:
        self.quote = quote

    def format_field(self, value: Any, spec: str) -> str:
        if spec.startswith("flag="):
            return spec.removeprefix("flag=") if value else ""
        if spec == "int" and isinstance(value, bool):
            text = str(int(value))
        elif isinstance(value, bool) and not spec:
            text = "true" if value else "false"
        else:
            text = format(value, spec)
        return shlex.quote(text) if self.quote else text


def template_fields(command: str) -> list[str]:
    """The field names a command template uses; AblateError if it is not a valid template."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(command) if name]
    except ValueError as err:
        raise AblateError(f"trainer.command: {err} in {command!r}; write a field as {{name}} and a "
                          "literal brace as {{ or }}") from None  # fmt: skip


class CommandTrainer(Trainer):
    """Runs the study's command once per trial (see the module)."""

    kind = "command"

    @property
    def command(self) -> str:
        assert self.study.trainer is not None and self.study.trainer.command is not None
        return self.study.trainer.command

    @property
    def shell(self) -> bool:
        return bool(self.study.trainer and self.study.trainer.shell)

    def check(self, *, build: bool = True) -> Checked:
        """Every field of the template known, every seed stream's seed passed on, the
        program found; nothing runs."""
        study = self.study
        where = f"{study.source or study.name}: trainer.command"
        self._check_fields(where)
        trials = expand_trials(study)
        cells = {t.cell.label: t for t in trials}.values()
        argv = [self.argv(t, Path("/trial")) for t in cells][0]  # noqa: RUF015 (every cell's)
        problem = _unrunnable(argv[2].split()[0] if self.shell else argv[0])
        if problem:
            raise AblateError(f"{where}: {problem}")
        responses = ", ".join(r.name for r in study.responses)
        what = f"the command {self.command!r} (writing {responses} to {{result}})"
        task = study.task_spec
        assert isinstance(task, DeclaredTask)  # a study with a trainer: its declared responses
        return Checked("the data your program loads", task.baselines(), what)

    def _check_fields(self, where: str) -> None:
        assert self.study.trainer is not None
        streams = [f"seed_{name}" for name in self.study.streams.names]
        options = (name for name, _ in self.study.trainer.options)
        known = {*self.study.factor_names, *options, *FIELDS, *streams}
        used = {re.split(r"[.\[]", n)[0] for n in template_fields(self.command)}
        unknown = sorted(used - known)
        if unknown:
            raise AblateError(
                f"{where}: the template names {', '.join(unknown)}, which is not a factor, an "
                f"option or one of {', '.join(FIELDS)}; known here: {', '.join(sorted(known))} "
                "(a literal brace is written {{ or }})"
            )
        unused = [name for name in streams if name not in used]
        if unused:
            raise AblateError(
                f"{where}: replicates names seed streams, but the template passes no "
                f"{', '.join('{' + n + '}' for n in unused)}; pass each stream's seed to the "
                "program (as an argument: {seed_init}), or give replicates as a count"
            )

    def describe(self, checked: Checked) -> list[str]:
        first = expand_trials(self.study)[0]
        folder = self.folder(first)
        return [f"Trained by {checked.model}, each trial in a folder of its own "
                f"({folder.parent}/<trial key>/, its output in {LOG}).",
                f"The first trial runs: {shlex.join(self.argv(first, folder))}"]  # fmt: skip

    def folder(self, spec: TrialSpec) -> Path:
        return (self.study.results_dir / TRIALS_DIR / spec.key).resolve()

    def values(self, spec: TrialSpec, workdir: Path) -> dict[str, Any]:
        """Every field's value for one trial."""
        assert self.study.trainer is not None
        return {**dict(self.study.trainer.options), **spec.cell.as_dict(), **stream_seeds(spec),
                "seed": spec.seed,
                "replicate": spec.replicate, "trial_key": spec.key, "workdir": str(workdir),
                "study_dir": str(self._home() or Path.cwd()),
                "result": str(workdir / "result.json"),
                "epochs_file": str(workdir / "epochs.jsonl")}  # fmt: skip

    def argv(self, spec: TrialSpec, workdir: Path) -> list[str]:
        """The trial's command as it runs: an argument list (or sh -c and its line)."""
        values = self.values(spec, workdir)
        try:
            if self.shell:
                return ["/bin/sh", "-c", _Fields(quote=True).vformat(self.command, (), values)]
            out, fields, beside = [], _Fields(), self._beside()
            for token in shlex.split(self.command):
                filled = fields.vformat(token, (), values)
                if filled or not template_fields(token):  # a false flag is no argument at all
                    out.append(beside.get(filled, filled))
            return out
        except (ValueError, TypeError) as err:  # a format spec that does not fit a level
            raise AblateError(f"trainer.command: {err} while filling in {spec.cell.label} "
                              f"({self.command!r}); fix the field's format") from None  # fmt: skip

    def _home(self) -> Path | None:
        """The folder of the study file (None: a study not read from a file)."""
        source = self.study.source
        return Path(source).resolve().parent if source and Path(source).is_file() else None

    def _beside(self) -> dict[str, str]:
        """Paths in the command that name files beside the study file, made absolute."""
        home = self._home()
        if home is None:
            return {}
        tokens = shlex.split(self.command) if not self.shell else []
        return {t: str(home / t) for t in tokens if "{" not in t and not Path(t).is_absolute()
                and (home / t).is_file()}  # fmt: skip

    def train(
        self, specs: Sequence[TrialSpec], lives: Sequence[Live], stop: StopRequested
    ) -> list[TrialResult]:
        (spec,), (live,) = specs, lives
        workdir = self.folder(spec)
        workdir.mkdir(parents=True, exist_ok=True)
        for leftover in ("result.json", "epochs.jsonl"):  # an earlier attempt's
            (workdir / leftover).unlink(missing_ok=True)
        return [Run(self, spec, workdir, live).go()]


def environment() -> dict[str, str]:
    """The environment a trial's program runs in: the worker's (its GPU in
    ``CUDA_VISIBLE_DEVICES``, its thread count in ``OMP_NUM_THREADS``), with the folder of the
    Python that runs ablate first on ``PATH``: ``python`` in a command is the interpreter of
    ablate's own environment, whether or not that environment was activated."""
    env = dict(os.environ)
    here = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([here, *(p for p in env.get("PATH", "").split(os.pathsep)
                                          if p and p != here)])  # fmt: skip
    return env


def _unrunnable(program: str) -> str:
    """Why the program cannot start ("" where it can)."""
    path = Path(program)
    if "/" not in program:
        if shutil.which(program, path=environment()["PATH"]) is None:
            return (
                f"the program {program!r} is not found (neither a file beside the study "
                "file nor a command on PATH); check the command, or install the program"
            )
        return ""
    if not path.is_file():
        return f"the program {program} is not found; check the command"
    if not os.access(path, os.X_OK):
        return (
            f"the program {program} is not executable; make it so (chmod +x), or name "
            f"its interpreter first (python {path.name} ...)"
        )
    return ""


class Run:
    """One trial's program: started, watched, stopped, read (see the module)."""

    def __init__(self, trainer: CommandTrainer, spec: TrialSpec, workdir: Path, live: Live) -> None:
        self.trainer, self.spec, self.workdir, self.live = trainer, spec, workdir, live
        self.history: list[EpochRecord] = []
        self._read = 0  # bytes of the epochs file read so far
        self._logged = 0  # size of the log last seen

    def go(self) -> TrialResult:
        start = time.perf_counter()
        argv = self.trainer.argv(self.spec, self.workdir)
        log = self.workdir / LOG
        with open(log, "ab") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            try:
                proc = self._start(argv, out)
            except OSError as err:  # gone since the checks, or not executable
                return TrialResult(status="failed", error=f"the command could not start: "
                                   f"{err.strerror or err} ({argv[0]})", error_type="OSError",
                                   seconds=time.perf_counter() - start)  # fmt: skip
        try:
            self.live.process(proc.pid)
            while proc.poll() is None:
                time.sleep(0.2)
                self._watch(log)
        except BaseException:  # a stop (Ctrl-C, SIGTERM, a time limit): the program first
            _end_group(proc)
            raise
        finally:
            self.live.process(None)
        self._watch(log)
        return self._outcome(proc.returncode, time.perf_counter() - start)

    def _start(self, argv: list[str], out: Any) -> subprocess.Popen[bytes]:
        env = {**environment(), "ABLATE_TRIAL_KEY": self.spec.key,
               "ABLATE_SEED": str(self.spec.seed), "PYTHONUNBUFFERED": "1"}  # fmt: skip
        # A process group of its own: a stop ends the program and whatever it started; its
        # coordinator ends the group too where the worker itself is killed (Live.process).
        return subprocess.Popen(
            argv, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True, preexec_fn=_die_with_us,
        )  # fmt: skip

    def _watch(self, log: Path) -> None:
        """New epochs from the epochs file, and new output in the log: signs of progress."""
        epochs = self.workdir / "epochs.jsonl"
        with contextlib.suppress(OSError):
            with open(epochs, "rb") as f:
                f.seek(self._read)
                chunk = f.read()
            whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
            self._read += len(whole)
            for line in whole.decode(errors="replace").splitlines():
                self._epoch(line)
        size = log.stat().st_size if log.exists() else 0
        if size > self._logged:
            self._logged = size
            self.live.progress(0)

    def _epoch(self, line: str) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return  # not an epoch: the program's own business
        if not isinstance(data, dict):
            return
        number = data.pop("epoch", len(self.history) + 1)
        values = {str(k): _number(v) for k, v in data.items()}
        record = EpochRecord(epoch=int(number), values=values, learning_rate=0.0,
                             train_seconds=0.0, eval_seconds=0.0)  # fmt: skip
        self.history.append(record)
        self.live.epoch(record)

    def _failed(self, code: int, log: Path, common: dict[str, Any]) -> TrialResult:
        """A program that exited non-zero: the code and its output's last line (its first
        line is what tells failures apart, so it names no path), the log's last lines as
        the trial's traceback; one killed by a signal is tried again (``run.retries``)."""
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        tail = _tail(log)
        last = f"; its output ends: {tail[-1].strip()}" if tail else "; it printed nothing"
        return TrialResult(status="failed", error=f"the command {how}{last} (all of it in {log})",
                           error_type="CommandFailed", transient=code < 0,
                           traceback="\n".join([f"The last lines of {log}:", *tail]),
                           **common)  # fmt: skip

    def _outcome(self, code: int, seconds: float) -> TrialResult:
        history = tuple(self.history)
        gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        provenance = {"backend": "command", "device": f"gpu:{gpu}" if gpu else "cpu",
                      "versions": backend.versions()}  # fmt: skip
        common: dict[str, Any] = {"epochs": len(history), "history": history, "seconds": seconds,
                                  "train_seconds": seconds, **provenance}  # fmt: skip
        log = self.workdir / LOG
        if code != 0:
            return self._failed(code, log, common)
        path = self.workdir / "result.json"
        if not path.is_file():
            return TrialResult(status="failed", error=f"the command exited 0 but wrote no "
                               f"result to {path}; write the responses there as one JSON "
                               f"object (its output is in {log})", error_type="NoResult",
                               **common)  # fmt: skip
        try:
            returned = json.loads(path.read_text())
        except (ValueError, OSError) as err:
            return TrialResult(status="failed", error=f"the result file {path} is not JSON "
                               f"({err})", error_type="BadResult", **common)  # fmt: skip
        source = f"the command's result file ({path})"
        return outcome(self.trainer.study, returned, history, seconds, source, provenance)


def _parent_death_signal() -> Callable[[], None]:
    """What a started program runs before its own code: ask the kernel to SIGKILL it when the
    worker that started it dies, however it dies (Linux; elsewhere nothing). Resolved here,
    in the worker, so that the child between fork and exec calls one C function and nothing
    else."""
    with contextlib.suppress(OSError, AttributeError):
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        return lambda: prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    return lambda: None


_die_with_us = _parent_death_signal()


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the program's process group, SIGKILL if it is still there after GRACE."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(path: Path, lines: int = TAIL) -> list[str]:
    """The last lines of a log, past the command line ablate wrote at its top."""
    with contextlib.suppress(OSError):
        text = path.read_bytes()[-20_000:].decode(errors="replace")
        return [line for line in text.splitlines() if not line.startswith("$ ")][-lines:]
    return []


def _number(value: object) -> float | None:
    """A number an epoch line holds (None where it holds something else)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
