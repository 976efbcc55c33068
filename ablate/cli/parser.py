"""The ``ablate`` command's arguments: one parser per command, and the options they share.

Each command's handler is in :mod:`ablate.cli.commands`; the CLI reference of the docs is
generated from :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ablate.cli import commands
from ablate.designs.matrix import CODINGS
from ablate.stats.options import ADJUSTMENTS
from ablate.version import __version__
from ablate.views.style import IMAGE_FORMATS
from ablate.views.tables import TABLE_FORMATS, TABLES


class Parser(argparse.ArgumentParser):
    """argparse's parser, with "did you mean ...?" for a mistyped command, choice or option."""

    def error(self, message: str) -> NoReturn:
        super().error(message + _suggestion(message, self._choices_in(message)))

    def _choices_in(self, message: str) -> list[str]:
        """The words a mistyped one may have meant: the choices the message lists, else the
        options of the command (and of ``ablate``) that was parsed."""
        listed = re.search(r"\(choose from (.*)\)", message)
        if listed:
            return re.findall(r"'([^']*)'", listed.group(1)) or listed.group(1).split(", ")
        return [o for a in self._actions for o in a.option_strings]

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._command_parser(getattr(parsed, "command", None))
            options = [o for a in command._actions for o in a.option_strings]
            message = f"unrecognized arguments: {' '.join(extras)}"
            command.exit(2, f"{command.format_usage()}{command.prog}: error: {message}"
                         f"{_suggestion(message, options)}\n")  # fmt: skip
        return parsed

    def _command_parser(self, name: str | None) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                return action.choices[name]  # type: ignore[no-any-return]
        return self


def _suggestion(message: str, words: list[str]) -> str:
    """ " (did you mean 'analyze'?)" for the first unknown word that is close to a known one."""
    for wrong in re.findall(r"invalid choice: '([^']*)'|(--?[\w-]+)", message):
        word = wrong[0] or wrong[1]
        close = difflib.get_close_matches(word, words, n=1, cutoff=0.6)
        if close and close[0] != word:
            return f" (did you mean {close[0]!r}?)"
    return ""


def build_parser() -> argparse.ArgumentParser:
    """The ``ablate`` command's parser, every command with its options."""
    parser = Parser(
        prog="ablate",
        description="Factorial ablation studies of Keras models or your own training code, "
        "with OLS effect analysis.",
    )
    parser.add_argument("--version", action="version", version=f"ablate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_init, _run, _worker, _submit, _status, _export, _analyze, _plot, _doctor,
                _plan, _report):  # fmt: skip
        add(sub)
    return parser


def _init(sub: argparse._SubParsersAction) -> None:
    init = sub.add_parser("init", help="write a copy of a study ablate ships, to edit and run")
    from ablate.study.library import names

    init.add_argument("name", nargs="?", help=f"the shipped study: {', '.join(names())} "
                      "(without a name: the list)")  # fmt: skip
    init.add_argument("--to", type=Path, default=Path("."), metavar="DIR",
                      help="the folder to write NAME.yaml into (default: here)")  # fmt: skip
    init.set_defaults(handler=commands.init)


def _run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run (or resume) every trial of a study file")
    run.add_argument("study", help="study file (YAML), e.g. studies/quick.yaml")
    _storage_option(run)
    _worker_options(run)
    run.add_argument(
        "--dry-run", action="store_true",
        help="make every check a run makes and show what it would do, without training",
    )  # fmt: skip
    run.add_argument(
        "--until-halfwidth", type=_positive_float, metavar="D",
        help="add rounds of replicates until every effect's confidence interval is within ±D "
        "(response units; default: the study's run.until_halfwidth)",
    )  # fmt: skip
    run.add_argument(
        "--until-decided", action="store_true",
        help="add rounds of replicates until every effect is different from 0 or equivalent "
        "within ±D (--margin D), with alpha spent over the looks",
    )  # fmt: skip
    run.add_argument(
        "--margin", type=_positive_float, metavar="D",
        help="with --until-decided: the smallest effect that matters, in the response's units "
        "(default: the study's analysis.margin)",
    )  # fmt: skip
    run.add_argument(
        "--max-replicates", type=_positive, metavar="R",
        help="the most replicates per run --until-halfwidth or --until-decided may reach "
        "(default: the study's run.max_replicates, 10)",
    )  # fmt: skip
    run.set_defaults(handler=commands.run, join=False, until_decided=False, margin=None)


def _worker(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser(
        "worker", help="join a study started elsewhere: claim and train its trials"
    )
    worker.add_argument("study", help="the study file, or a results folder with its study.yaml")
    _storage_option(worker)
    _worker_options(worker)
    worker.set_defaults(handler=commands.run, join=True, dry_run=False)


def _submit(sub: argparse._SubParsersAction) -> None:
    submit = sub.add_parser(
        "submit", help="check a study, queue its trials and submit its workers to a cluster "
        "(SLURM: a job array of `ablate worker`)",
    )  # fmt: skip
    submit.add_argument("study", help="study file (YAML), e.g. studies/quick.yaml")
    submit.add_argument(
        "--slurm",
        action="store_true",
        required=True,
        help="submit to SLURM with sbatch (the scheduler ablate supports)",
    )
    submit.add_argument(
        "--array",
        type=_positive,
        default=2,
        metavar="N",
        help="array tasks, each a group of workers on one node (default 2)",
    )
    submit.add_argument(
        "--workers-per-task",
        type=_positive,
        default=1,
        metavar="W",
        help="workers (and CPUs) per task (default 1)",
    )
    submit.add_argument("--partition", metavar="P", help="the SLURM partition")
    submit.add_argument("--gpus-per-task", type=_positive, metavar="G", help="GPUs per task")
    submit.add_argument("--time", metavar="T", help="each task's time limit (SLURM's format)")
    _storage_option(submit)
    submit.add_argument(
        "--dry-run",
        action="store_true",
        help="make the checks and print the sbatch script, without submitting",
    )
    submit.set_defaults(handler=commands.submit)


def _status(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="where a study stands, also while it runs elsewhere")
    status.add_argument("results", help="results folder (or the study file)")
    _storage_option(status)
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(handler=commands.status)


def _export(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser("export", help="rewrite a study's parquet files from its storage, or "
                         "copy its results to MLflow (--mlflow)")  # fmt: skip
    exp.add_argument("results", help="results folder, e.g. results/quick")
    _storage_option(exp)
    exp.add_argument(
        "--mlflow",
        metavar="URI",
        help="copy the results folder to this MLflow "
        "tracking server (http://HOST:PORT) instead: the study a run, each trial a "
        "child run, the analysis and the report attached; again, it updates them",
    )
    exp.add_argument("--experiment", metavar="NAME", help="the MLflow experiment (default: "
                     "ablate/<study name>)")  # fmt: skip
    exp.set_defaults(handler=commands.export)


def _analyze(sub: argparse._SubParsersAction) -> None:
    ana = sub.add_parser(
        "analyze", help="fit OLS to a study's results: effects, ANOVA, marginal means"
    )
    ana.add_argument("results", help="results folder, or a parquet/CSV file")
    _analysis_options(ana)
    ana.add_argument("--format", choices=TABLE_FORMATS, default="text")
    ana.add_argument(
        "--full", action="store_true",
        help="every table (text prints one screen by default: the findings, the design, the "
        "effects, the levels of factors with three or more, the ANOVA and what is missing)",
    )  # fmt: skip
    ana.add_argument(
        "--section", action="append", default=[], metavar="NAME",
        help="print this section only (repeatable), e.g. coefficients, pairwise, dispersion",
    )  # fmt: skip
    ana.add_argument("--table", choices=TABLES, default="coefficients",
                     help="the table --format csv writes (default: coefficients)")  # fmt: skip
    ana.add_argument("--output", type=Path, help="write to this file instead of stdout")
    ana.add_argument("--design-matrix", type=Path, help="also write the fitted matrix (CSV)")
    ana.set_defaults(handler=commands.analyze)


def _plot(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser("plot", help="draw the effect charts of a study's results")
    plot.add_argument("results", help="results folder, or a parquet/CSV file")
    plot.add_argument("--out", type=Path, help="folder for the charts (default: RESULTS/plots)")
    plot.add_argument("--format", choices=IMAGE_FORMATS, default="png")
    _analysis_options(plot)
    _cells_option(plot)
    plot.set_defaults(handler=commands.plot)


def _doctor(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser(
        "doctor", help="check a study's results against its storage; --repair fixes them"
    )
    doctor.add_argument("results", help="results folder, e.g. results/quick")
    _storage_option(doctor)
    doctor.add_argument(
        "--repair", action="store_true", help="fix what can be fixed without losing data"
    )
    doctor.set_defaults(handler=commands.doctor)


def _plan(sub: argparse._SubParsersAction) -> None:
    plan = sub.add_parser(
        "plan", help="how many replicates a study's design needs to detect an effect of size D"
    )
    plan.add_argument("study", help="study file (YAML), or a results folder")
    plan.add_argument(
        "--effect", type=_positive_float, required=True, metavar="D",
        help="the smallest difference in the response worth detecting, in its units",
    )  # fmt: skip
    plan.add_argument("--power", type=float, default=0.8, help="power to reach (default 0.8)")
    plan.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    plan.add_argument(
        "--sd", type=_positive_float, help="the noise SD, seed to seed (overrides a pilot's)"
    )
    plan.add_argument(
        "--pilot", help="results of a pilot run: its pure error gives the noise (unless --sd), "
        "its trial times the expected wall time",
    )  # fmt: skip
    plan.add_argument("--response", help="response column (default: the study's)")
    plan.add_argument(
        "--model", choices=("main", "main+2fi"),
        help="the model the analysis will fit (default: the design's, else main effects)",
    )  # fmt: skip
    plan.add_argument("--workers", type=_positive, help="workers to assume (default: automatic)")
    plan.set_defaults(handler=commands.plan)


def _report(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report",
        help="write a self-contained HTML report (and Markdown) with every table and chart",
    )
    report.add_argument("results", help="results folder, or a parquet/CSV file")
    report.add_argument("--out", type=Path, help="folder for report.html (default: RESULTS)")
    _analysis_options(report)
    _cells_option(report)
    report.set_defaults(handler=commands.report)


# ---------------------------------------------------------------------------------------------
# Options several commands share


def _cells_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cells",
        default="best,worst",
        help="trials whose learned latent space and reconstructions to draw: best, worst, "
        "or trial keys, comma-separated (default: best,worst)",
    )


def _storage_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        help=f"database URL shared by several machines, e.g. postgresql://user@host/db "
        f"(default: ${commands.STORAGE_ENV}, else a journal file in the results folder)",
    )


def _analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--response", help="response column (default: the study's, or test_loss)")
    p.add_argument("--factors", help="comma-separated factor columns (needed for a bare file)")
    p.add_argument(
        "--coding",
        choices=CODINGS,
        default="reference",
        help="reference: 0/1 columns against each factor's baseline, the first categorical "
        "factor's level means in place of an intercept (default); sum: intercept + ±1 effect "
        "coding (Type III sums of squares need it)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="FACTOR=LEVEL",
        help="reference level of a factor (repeatable; default: its first level)",
    )
    p.add_argument(
        "--interactions",
        type=_positive,
        default=1,
        metavar="ORDER",
        help="add interactions up to this order (2: all pairs); default 1, main effects",
    )
    p.add_argument(
        "--terms",
        default="",
        metavar="A:B,...",
        help="interactions to add besides --interactions, e.g. a:c,a:d (one per alias chain "
        "of a fraction)",
    )
    p.add_argument(
        "--no-importance",
        action="store_true",
        help="leave out the importance table (fANOVA and PED-ANOVA through Optuna)",
    )
    p.add_argument(
        "--anova-type", type=int, choices=(2, 3), default=2, help="2 (default) or 3 (sum coding)"
    )
    p.add_argument("--robust", choices=("hc3",), help="heteroscedasticity-robust (HC3) errors")
    p.add_argument(
        "--adjust", choices=ADJUSTMENTS, default="holm", help="multiple-testing adjustment of p"
    )
    p.add_argument("--log", action="store_true", help="analyse the log of the response")
    p.add_argument(
        "--margin",
        type=_positive_float,
        metavar="D",
        help="equivalence margin in the response's units: every effect and pairwise difference "
        "gets a verdict (different, equivalent within ±D, inconclusive) from two one-sided "
        "tests (default: the study's analysis.margin)",
    )
    p.add_argument(
        "--block",
        metavar="COLUMN",
        help="fit a column as a block beside the factors, fixed and random: replicate treats "
        "seeds as blocks (default: the study's analysis.block)",
    )
    p.add_argument(
        "--exclude-unlearned",
        action="store_true",
        help="leave out the trials that did not beat the trivial baseline (counted in the notes)",
    )


def _worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=_positive,
        help="worker processes on this machine (default: one per GPU slot, else per core)",
    )
    p.add_argument(
        "--workers-per-gpu",
        type=_positive,
        help="trials that share one GPU (default: the study's run.workers_per_gpu, 2)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
