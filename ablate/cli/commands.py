"""The ``ablate`` command's commands: each reads its arguments, calls the library and prints.

The library is imported inside each command, so that a command starts with only what it
needs (``ablate analyze`` never imports a training framework).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ablate.errors import AblateError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ablate.execution.runner import RunSummary
    from ablate.results import Results
    from ablate.stats.analysis import Analysis
    from ablate.study import Study

#: The environment variable naming the default storage URL.
STORAGE_ENV = "ABLATE_STORAGE"


def fitted(args: argparse.Namespace) -> tuple[Results, Analysis]:
    """Load the results and fit the analysis the options ask for."""
    from ablate.results import load_results
    from ablate.stats.options import Options
    from ablate.stats.overall import analyze

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
        margin=args.margin,
        block=args.block,
        exclude_unlearned=args.exclude_unlearned,
    )
    results = load_results(args.results)
    return results, analyze(results, options)


def storage_url(args: argparse.Namespace) -> str | None:
    return args.storage or os.environ.get(STORAGE_ENV) or None


def init(args: argparse.Namespace) -> int:
    """``ablate init NAME``: a copy of a shipped study, to edit and run; without a name, the
    list of the shipped studies."""
    from ablate.study import library

    if args.name is None:
        print("The studies ablate ships (ablate init NAME writes NAME.yaml to edit):")
        for name, about in library.described():
            print(f"  {name:<16} {about}")
        return 0
    written = library.copy_to(args.name, args.to)
    print(f"wrote {written}; run it with: ablate run {written}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ablate.execution.runner import run_study
    from ablate.study import load_study

    study = load_study(_located(args.study))
    if args.dry_run:
        from ablate.execution.dryrun import dry_run

        checked = dry_run(study, args.workers, args.workers_per_gpu, storage_url(args))
        print(checked.text)
        if checked.problem is not None:
            raise checked.problem
        return 0
    # Ctrl-C (SIGINT) stops the run cleanly even when a script started it in the background:
    # the shell then sets SIGINT to "ignore", and Python would inherit that.
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # SIGTERM (SLURM before a time limit or preemption, scancel, kill) stops it the same way
        signal.signal(signal.SIGTERM, signal.default_int_handler)

    def once(s: Study) -> RunSummary:
        return run_study(s, storage_url=storage_url(args), workers=args.workers,
                         workers_per_gpu=args.workers_per_gpu, join=args.join)  # fmt: skip

    rounds = getattr(args, "until_halfwidth", None) or study.run.until_halfwidth
    rounds = rounds or getattr(args, "until_decided", False)
    summary = _rounds(study, args, once) if rounds and not args.join else once(study)
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


def _located(name: str) -> str:
    """The study file a name means (a file here before a shipped study of that name), saying
    which was taken where a name could mean either."""
    from ablate.study.parse import locate_study

    path, note = locate_study(name)
    if note:
        print(f"ablate: {note}", file=sys.stderr)
    return str(path)


def _rounds(
    study: Study, args: argparse.Namespace, once: Callable[[Study], RunSummary]
) -> RunSummary:
    """``--until-halfwidth`` or ``--until-decided``: rounds of replicates, each round said."""
    say = lambda line: print(line, flush=True)  # noqa: E731
    if args.until_decided and args.until_halfwidth:
        raise AblateError("--until-decided and --until-halfwidth are two ways to stop adding "
                          "replicates; give one of them.")  # fmt: skip
    if args.until_decided:
        from ablate.sequential.until_decided import run_until_decided

        decided = run_until_decided(study, margin=args.margin, run=once, say=say,
                                    max_replicates=args.max_replicates)  # fmt: skip
        print(decided.render(flags=True))
        return decided.summary
    from ablate.sequential.rounds import run_until_precise

    target = args.until_halfwidth or study.run.until_halfwidth
    assert target is not None  # _rounds runs for --until-halfwidth or run.until_halfwidth
    outcome = run_until_precise(study, target, max_replicates=args.max_replicates, run=once,
                                say=say)  # fmt: skip
    print(outcome.render(flags=True))
    return outcome.summary


def submit(args: argparse.Namespace) -> int:
    """``ablate submit --slurm``: checks, the queue filled, a job array of workers submitted."""
    from ablate.cluster.slurm import SlurmOptions, sbatch_script, submit_study
    from ablate.execution.preflight import checked_before_run
    from ablate.study import load_study

    study = load_study(args.study)
    options = SlurmOptions(array=args.array, workers_per_task=args.workers_per_task,
                           partition=args.partition, gpus_per_task=args.gpus_per_task,
                           time=args.time, storage_url=storage_url(args))  # fmt: skip
    if args.dry_run:
        script = sbatch_script(study, Path(args.study), options)
        checked_before_run(study)
        print(script, end="")
        return 0
    done = submit_study(study, Path(args.study), options)
    print(f"{study.name}: {done.waiting} trials waiting, {done.complete}/{done.total} "
          f"complete; submitted job array {done.job} ({options.array} tasks of "
          f"{options.workers_per_task} worker(s)), script {done.script}.\n"
          f"Watch it: ablate status {done.directory} (squeue -j {done.job}); cancel a task: "
          f"scancel {done.job}_0. When it is done: ablate analyze {done.directory}")  # fmt: skip
    return 0


def status(args: argparse.Namespace) -> int:
    from ablate.execution.progress import describe_status
    from ablate.queue.claims import opened_queue
    from ablate.study import load_study

    study = load_study(args.results)
    with opened_queue(study, storage_url(args), create=False) as queue:
        summary = queue.summary()
        policy = queue.policy
    if args.format == "json":
        print(json.dumps(dataclasses.asdict(summary), indent=2, default=str))
    else:
        print(describe_status(study.name, summary, policy))
    return 0


def doctor(args: argparse.Namespace) -> int:
    from ablate.errors import render_options
    from ablate.results.doctor import describe, diagnose

    findings = diagnose(Path(args.results), storage_url(args), repair=args.repair)
    print(render_options(describe(findings, args.repair), flags=True))
    problems = [f for f in findings if f.severity == "problem"]
    if problems:
        fixable = any(f.repair for f in problems)
        raise AblateError(
            f"{len(problems)} problem(s) in {args.results}"
            + ("; `ablate doctor --repair` fixes those marked [--repair]." if fixable else ".")
        )
    return 0


def export(args: argparse.Namespace) -> int:
    from ablate.queue.claims import opened_queue
    from ablate.results import export
    from ablate.study import load_study

    if args.mlflow:
        return to_mlflow(Path(args.results), args.mlflow, args.experiment)
    if args.experiment:
        raise AblateError("--experiment names the MLflow experiment; give --mlflow URI too.")
    study = load_study(args.results)
    directory = Path(args.results)
    with opened_queue(study, storage_url(args), create=False) as queue:
        rows = export(study, queue.records(), queue.outputs, directory)
    print(f"{directory}: exported {rows} finished trials")
    return 0


def to_mlflow(folder: Path, uri: str, experiment: str | None) -> int:
    """The results folder to MLflow, with its analysis (JSON) and its report (HTML), as the
    study file's analysis settings make them."""
    import tempfile

    from ablate.results import load_results
    from ablate.results.mlflow_export import export_to_mlflow
    from ablate.stats.overall import analyze
    from ablate.views.report import write_report
    from ablate.views.tables import render

    results = load_results(folder)
    with tempfile.TemporaryDirectory(prefix="ablate-mlflow-") as tmp:
        attached: list[Path] = []
        try:
            analysis = analyze(results)
        except AblateError as err:  # the trials still go; the analysis cannot
            print(f"ablate: the analysis is not attached: {err.render(flags=True)}",
                  file=sys.stderr)  # fmt: skip
        else:
            attached = [Path(tmp) / "analysis.json", write_report(results, analysis,
                                                                  Path(tmp), ()).html]  # fmt: skip
            attached[0].write_text(render(analysis, "json"))
        done = export_to_mlflow(folder, uri, artifacts=attached, experiment=experiment)
    print(f"{folder}: exported to MLflow at {done.uri}, experiment {done.experiment_id}: "
          f"{len(done.child_run_ids)} trial runs under run {done.parent_run_id} "
          f"({done.runs_created} created, {done.runs_updated} updated, "
          f"{done.metrics_logged} metric values logged)")  # fmt: skip
    return 0


def analyze(args: argparse.Namespace) -> int:
    from ablate.views.tables import render

    _, analysis = fitted(args)
    if args.design_matrix:
        from ablate.results import write_atomic

        write_atomic(args.design_matrix, analysis.model_matrix.matrix.to_csv(index=False).encode())
        print(f"wrote the design matrix to {args.design_matrix}", file=sys.stderr)
    full = args.full or args.format != "text"
    text = render(analysis, args.format, args.table, full=full, only=tuple(args.section))
    _emit(text.rstrip("\n"), args.output)
    return 0


def plot(args: argparse.Namespace) -> int:
    from ablate.views.plots import draw_all, save_charts

    results, analysis = fitted(args)
    out = args.out or (
        results.source / "plots" if results.source.is_dir() else results.source.parent
    )
    picks = tuple(p.strip() for p in args.cells.split(",") if p.strip())
    for path in save_charts(draw_all(results, analysis, picks), out, args.format):
        print(f"{path}  ({path.stat().st_size / 1024:.0f} kB)")
    return 0


def plan(args: argparse.Namespace) -> int:
    from ablate.stats.power import Noise, noise_from_pilot, plan_replicates
    from ablate.study import load_study
    from ablate.views.plan import render_plan

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
    from ablate.errors import render_options

    print(render_options(render_plan(plan), flags=True))
    return 0


def report(args: argparse.Namespace) -> int:
    from ablate.views.report import write_report

    results, analysis = fitted(args)
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
