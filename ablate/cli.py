"""The ``ablate`` command: parse arguments, call the library, print, choose the exit code.

Exit codes: 0 done; 1 an unexpected error (a bug: the traceback is shown); 2 a problem the
user can fix (the message says how); 130 interrupted with Ctrl-C (a rerun resumes).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.designs.matrix import CODINGS
from ablate.errors import AblateError
from ablate.stats.analysis import ADJUSTMENTS
from ablate.stats.tables import TABLE_FORMATS, TABLES
from ablate.views.style import IMAGE_FORMATS

if TYPE_CHECKING:
    from ablate.results import Results
    from ablate.stats.analysis import Analysis

STORAGE_ENV = "ABLATE_STORAGE"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="ablate: %(message)s", stream=sys.stderr)
    try:
        return args.handler(args)
    except AblateError as err:
        _print_error(err)
        return err.exit_code
    except KeyboardInterrupt:
        print("ablate: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: show where, but never a storage password
        print(
            "ablate: unexpected error (a bug in ablate; please report it with this output):\n"
            + _scrub(traceback.format_exc()),
            file=sys.stderr,
        )
        return 1


def _print_error(err: AblateError) -> None:
    """The message as one paragraph, then its detail (the user's own traceback) as it is."""
    message = " ".join(str(err).splitlines())  # one paragraph, whatever went into it
    print(f"ablate: error: {_scrub(message)}", file=sys.stderr)
    if err.detail:
        print(_scrub(err.detail), file=sys.stderr)


def _scrub(text: str) -> str:
    from ablate.secrets import scrub

    return scrub(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ablate",
        description="Factorial ablation studies of Keras models, with OLS effect analysis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run (or resume) every trial of a study file")
    run.add_argument("study", help="study file (YAML), e.g. studies/quick.yaml")
    _storage_option(run)
    _worker_options(run)
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="check the study file and show what would run, without training anything",
    )
    run.set_defaults(handler=_cmd_run, join=False)

    worker = sub.add_parser(
        "worker", help="join a study started elsewhere: claim and train its trials"
    )
    worker.add_argument("study", help="the study file, or a results folder with its study.yaml")
    _storage_option(worker)
    _worker_options(worker)
    worker.set_defaults(handler=_cmd_run, join=True, dry_run=False)

    status = sub.add_parser("status", help="where a study stands, also while it runs elsewhere")
    status.add_argument("results", help="results folder (or the study file)")
    _storage_option(status)
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(handler=_cmd_status)

    exp = sub.add_parser("export", help="rewrite a study's parquet files from its storage")
    exp.add_argument("results", help="results folder, e.g. results/quick")
    _storage_option(exp)
    exp.set_defaults(handler=_cmd_export)

    ana = sub.add_parser(
        "analyze", help="fit OLS to a study's results: effects, ANOVA, marginal means"
    )
    ana.add_argument("results", help="results folder, or a parquet/CSV file")
    _analysis_options(ana)
    ana.add_argument("--format", choices=TABLE_FORMATS, default="text")
    ana.add_argument(
        "--table",
        choices=TABLES,
        default="coefficients",
        help="the table --format csv writes (default: coefficients)",
    )
    ana.add_argument("--output", type=Path, help="write to this file instead of stdout")
    ana.add_argument("--design-matrix", type=Path, help="also write the fitted matrix (CSV)")
    ana.set_defaults(handler=_cmd_analyze)

    plot = sub.add_parser("plot", help="draw the effect charts of a study's results")
    plot.add_argument("results", help="results folder, or a parquet/CSV file")
    plot.add_argument("--out", type=Path, help="folder for the charts (default: RESULTS/plots)")
    plot.add_argument("--format", choices=IMAGE_FORMATS, default="png")
    _analysis_options(plot)
    _cells_option(plot)
    plot.set_defaults(handler=_cmd_plot)
    doctor = sub.add_parser(
        "doctor", help="check a study's results against its storage; --repair fixes them"
    )
    doctor.add_argument("results", help="results folder, e.g. results/quick")
    _storage_option(doctor)
    doctor.add_argument(
        "--repair", action="store_true", help="fix what can be fixed without losing data"
    )
    doctor.set_defaults(handler=_cmd_doctor)

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
    plan.set_defaults(handler=_cmd_plan)

    report = sub.add_parser(
        "report",
        help="write a self-contained HTML report (and Markdown) with every table and chart",
    )
    report.add_argument("results", help="results folder, or a parquet/CSV file")
    report.add_argument("--out", type=Path, help="folder for report.html (default: RESULTS)")
    _analysis_options(report)
    _cells_option(report)
    report.set_defaults(handler=_cmd_report)
    return parser


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
        f"(default: ${STORAGE_ENV}, else a journal file in the results folder)",
    )


def _analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--response", help="response column (default: the study's, or test_loss)")
    p.add_argument("--factors", help="comma-separated factor columns (needed for a bare file)")
    p.add_argument(
        "--coding",
        choices=CODINGS,
        default="reference",
        help="reference: 0/1 columns, no intercept (default); treatment: intercept + 0/1 "
        "against a baseline; sum: intercept + ±1 effect coding",
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


def _analysis(args: argparse.Namespace) -> tuple[Results, Analysis]:
    """Load the results and fit the analysis the options ask for."""
    from ablate.results import load_results
    from ablate.stats.analysis import Options, analyze

    baselines = []
    for item in args.baseline:
        name, sep, level = item.partition("=")
        if not sep or not name.strip() or not level.strip():
            raise AblateError(f"--baseline takes FACTOR=LEVEL, not {item!r}.")
        baselines.append((name.strip(), level.strip()))
    factors = [f.strip() for f in args.factors.split(",") if f.strip()] if args.factors else None
    options = Options(
        response=args.response,
        factors=tuple(factors) if factors else None,
        coding=args.coding,
        baselines=tuple(baselines),
        interactions=args.interactions,
        anova_type=args.anova_type,
        robust=args.robust,
        adjust=args.adjust,
        log=args.log,
        terms=tuple(
            tuple(n.strip() for n in t.split(":")) for t in args.terms.split(",") if t.strip()
        ),
        importance=not args.no_importance,
    )
    results = load_results(args.results)
    return results, analyze(results, options)


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


def _storage_url(args: argparse.Namespace) -> str | None:
    return args.storage or os.environ.get(STORAGE_ENV) or None


# ---------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from ablate.execution.runner import run_study
    from ablate.study import load_study

    study = load_study(args.study)
    if args.dry_run:
        from ablate.execution.dryrun import dry_run

        checked = dry_run(study, args.workers, args.workers_per_gpu, _storage_url(args))
        print(checked.text)
        if checked.problem is not None:
            raise checked.problem
        return 0
    # Ctrl-C (SIGINT) stops the run cleanly even when a script started it in the background:
    # the shell then sets SIGINT to "ignore", and Python would inherit that.
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGINT, signal.default_int_handler)
    summary = run_study(
        study,
        storage_url=_storage_url(args),
        workers=args.workers,
        workers_per_gpu=args.workers_per_gpu,
        join=args.join,
    )
    counts = f"{summary.complete}/{summary.total} complete"
    if summary.failed or summary.diverged:
        counts += f", {summary.failed} failed, {summary.diverged} diverged"
    print(
        f"{summary.study}: {counts}; {summary.trained} trained in this run "
        f"({summary.seconds:.0f} s). Results: {summary.directory}"
    )
    if summary.interrupted:
        print(
            f"Interrupted: {summary.missing} trials still to run; run the same command again "
            "to carry on where this one stopped.",
            file=sys.stderr,
        )
        return 130
    if summary.failed or summary.diverged:
        print(
            f"Some trials did not complete; their errors are in the error column of "
            f"{summary.directory / 'trials.parquet'}.",
            file=sys.stderr,
        )
    print(f"Next: ablate analyze {summary.directory}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from ablate.execution.progress import describe_status
    from ablate.storage.queue import opened_queue
    from ablate.study import load_study

    study = load_study(args.results)
    with opened_queue(study, _storage_url(args), create=False) as queue:
        summary = queue.summary()
        stale_after = queue.stale_after
    if args.format == "json":
        print(json.dumps(dataclasses.asdict(summary), indent=2, default=str))
    else:
        print(describe_status(study.name, summary, stale_after))
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ablate.results.doctor import describe, diagnose

    findings = diagnose(Path(args.results), _storage_url(args), repair=args.repair)
    print(describe(findings, args.repair))
    problems = [f for f in findings if f.severity == "problem"]
    if problems:
        fixable = any(f.repair for f in problems)
        raise AblateError(
            f"{len(problems)} problem(s) in {args.results}"
            + ("; `ablate doctor --repair` fixes those marked [--repair]." if fixable else ".")
        )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ablate.results import export
    from ablate.storage.queue import opened_queue
    from ablate.study import load_study

    study = load_study(args.results)
    directory = Path(args.results)
    with opened_queue(study, _storage_url(args), create=False) as queue:
        rows = export(study, queue.records(), queue.outputs, directory)
    print(f"{directory}: exported {rows} finished trials")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ablate.stats.tables import render

    _, analysis = _analysis(args)
    if args.design_matrix:
        from ablate.results import write_atomic

        write_atomic(args.design_matrix, analysis.model_matrix.matrix.to_csv(index=False).encode())
        print(f"wrote the design matrix to {args.design_matrix}", file=sys.stderr)
    _emit(render(analysis, args.format, args.table).rstrip("\n"), args.output)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from ablate.views.plots import draw_all, save_figures

    results, analysis = _analysis(args)
    out = args.out or (
        results.source / "plots" if results.source.is_dir() else results.source.parent
    )
    picks = tuple(p.strip() for p in args.cells.split(",") if p.strip())
    for path in save_figures(draw_all(results, analysis, picks), out, args.format):
        print(f"{path}  ({path.stat().st_size / 1024:.0f} kB)")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from ablate.stats.power import Noise, noise_from_pilot, plan_replicates, render_plan
    from ablate.study import load_study

    study = load_study(args.study)
    if args.response:
        study = dataclasses.replace(
            study, analysis=dataclasses.replace(study.analysis, response=args.response)
        )
    if args.sd is None and not args.pilot:
        raise AblateError(
            "ablate plan needs the noise: --sd S (the seed-to-seed SD of the response), or "
            "--pilot RESULTS (a pilot run's results, whose replicates measure it)."
        )
    noise = Noise(args.sd, "--sd")
    if args.pilot:
        measured = noise_from_pilot(args.pilot, study, args.response)
        if args.sd is not None:  # the pilot's times, the noise given
            measured = dataclasses.replace(measured, sd=args.sd, source="--sd", warning="")
        noise = measured
    from ablate.execution.planning import plan_workers

    plan = plan_replicates(
        study, args.effect, power=args.power, alpha=args.alpha, noise=noise, model=args.model,
        workers=lambda trials: len(plan_workers(study, workers=args.workers, remaining=trials)),
    )  # fmt: skip
    print(render_plan(plan))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ablate.views.report import write_report

    results, analysis = _analysis(args)
    out = args.out or (results.source if results.source.is_dir() else results.source.parent)
    picks = tuple(p.strip() for p in args.cells.split(",") if p.strip())
    report = write_report(results, analysis, out, picks)
    for path in (report.html, report.markdown, *report.charts):
        print(f"{path}  ({path.stat().st_size / 1024:.0f} kB)")
    return 0


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        print(text)
        return
    from ablate.results import write_atomic

    write_atomic(output, (text + "\n").encode())
    print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
