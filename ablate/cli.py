"""The ``ablate`` command: parse arguments, call the library, print, choose the exit code.

Exit codes: 0 done; 1 an unexpected error (a bug: the traceback is shown); 2 a problem the
user can fix (the message says how); 130 interrupted with Ctrl-C (a rerun resumes).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ablate.errors import AblateError

STORAGE_ENV = "ABLATE_STORAGE"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except AblateError as err:
        print(f"ablate: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("ablate: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ablate",
        description="Factorial ablation studies of Keras models, with OLS effect analysis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run (or resume) every trial of a study file")
    run.add_argument("study", help="study file (YAML), e.g. studies/quick.yaml")
    _storage_option(run)
    run.set_defaults(handler=_cmd_run)

    exp = sub.add_parser("export", help="rewrite a study's parquet files from its storage")
    exp.add_argument("results", help="results folder, e.g. results/quick")
    _storage_option(exp)
    exp.set_defaults(handler=_cmd_export)

    ana = sub.add_parser("analyze", help="fit OLS to a study's results and print the effects")
    ana.add_argument("results", help="results folder, or a parquet/CSV file")
    ana.add_argument("--response", help="response column (default: test_loss)")
    ana.add_argument("--factors", help="comma-separated factor columns (for a bare file)")
    ana.add_argument("--format", choices=("text", "json"), default="text")
    ana.add_argument("--output", type=Path, help="write to this file instead of stdout")
    ana.set_defaults(handler=_cmd_analyze)

    plot = sub.add_parser("plot", help="draw the effect charts of a study's results")
    plot.add_argument("results", help="results folder, or a parquet/CSV file")
    plot.add_argument("--out", type=Path, help="folder for the charts (default: RESULTS/plots)")
    plot.add_argument("--format", choices=("png", "svg", "pdf"), default="png")
    plot.add_argument("--response", help="response column (default: test_loss)")
    plot.add_argument("--factors", help="comma-separated factor columns (for a bare file)")
    plot.set_defaults(handler=_cmd_plot)
    return parser


def _storage_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        help=f"database URL shared by several machines, e.g. postgresql://user@host/db "
        f"(default: ${STORAGE_ENV}, else a journal file in the results folder)",
    )


def _storage_url(args: argparse.Namespace) -> str | None:
    return args.storage or os.environ.get(STORAGE_ENV) or None


# ---------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from ablate.config import load_study
    from ablate.runner import run_study

    study = load_study(args.study)
    summary = run_study(study, storage_url=_storage_url(args))
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


def _cmd_export(args: argparse.Namespace) -> int:
    from ablate.config import load_study
    from ablate.results import export
    from ablate.storage import opened_queue

    study = load_study(args.results)
    directory = Path(args.results)
    with opened_queue(study, _storage_url(args), create=False) as queue:
        rows = export(queue, directory)
    print(f"{directory}: exported {rows} finished trials")
    return 0


def _factors(args: argparse.Namespace) -> list[str] | None:
    if not args.factors:
        return None
    return [f.strip() for f in args.factors.split(",") if f.strip()]


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ablate.analysis import analyze, format_table
    from ablate.results import load_results

    analysis = analyze(load_results(args.results), response=args.response, factors=_factors(args))
    text = analysis.to_json() if args.format == "json" else format_table(analysis)
    _emit(text, args.output)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from ablate.analysis import analyze
    from ablate.plots import write_plots
    from ablate.results import load_results

    results = load_results(args.results)
    analysis = analyze(results, response=args.response, factors=_factors(args))
    out = args.out or (
        results.source / "plots" if results.source.is_dir() else results.source.parent
    )
    for path in write_plots(analysis, out, args.format):
        print(path)
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
