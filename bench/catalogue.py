"""The benchmark results in ``bench/results/`` as one Markdown table, for the documentation.

Every row is read from its JSON file -- the machine, the date, the backend and the library
versions as the benchmark recorded them -- so that the Performance page never retypes them.
The documentation build (``docs/conf.py``) writes the table into a generated page.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

#: What each benchmark script measures, by the prefix of its result files.
SCRIPTS = {
    "analyze-large": ("analyze_large.py", "`ablate analyze` of a large table"),
    "bootstrap-agreement": (
        "bootstrap_agreement.py",
        "how often the seed bootstrap disagrees with OLS, by replicates",
    ),
    "chaos": ("chaos.py", "a study under killed, stopped and cut-off workers"),
    "codebase": ("codebase.py", "the code's shape: layers, cycles, sizes, mypy errors"),
    "install-size": ("install_size.py", "the core install against the full one, on disk"),
    "quick": ("quick.py", "the quick study of the README, run and analysed"),
    "budget": ("budget.py", "loading the full MNIST; one worker's peak memory"),
    "scale": ("scale.py", "the trial queue: claim + finish latency, storage per trial"),
    "sequential-coverage": ("sequential_coverage.py", "coverage after `--until-halfwidth`"),
    "sequential-decided": ("sequential_decided.py", "error rates of `--until-decided`, simulated"),
    "study": ("study.py", "whole studies: a plain Keras loop against `ablate run`"),
    "throughput-gpu": ("throughput.py --gpu", "one GPU: plain `fit` against packs of trials"),
    "throughput": ("throughput.py", "one trial: `model.fit` against ablate's training path"),
    "trial-cost": ("trial_cost.py", "where a small trial's time goes"),
    "workers": ("workers.py", "1, 2 and 4 workers on one machine"),
}


def rows(directory: Path = RESULTS) -> list[dict[str, str]]:
    """One row per result file: file, benchmark, date, machine, backend and versions."""
    found = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        machine: dict[str, Any] = data.get("machine", {})
        prefix = next((p for p in SCRIPTS if path.name.startswith(p + "-")), "")
        script, what = SCRIPTS.get(prefix, ("", data.get("what", "")))
        found.append({
            "file": path.name,
            "script": f"bench/{script}" if script else "",
            "what": what,
            "date": _date(path.name, machine),
            "machine": _machine(machine),
            "backend": _backend(machine),
        })  # fmt: skip
    return found


def markdown(directory: Path = RESULTS) -> str:
    """A section per benchmark script, each a table of its result files, newest first."""
    lines = [
        "Every file in `bench/results/`, by the script that wrote it, with what its JSON records "
        "about the machine and the software. Reproduce one by running its script (its "
        "docstring gives the options; the file's `settings` or `args` hold those used) on a "
        "like machine, and compare timings only within one run of a benchmark.",
    ]
    by_script = sorted(rows(directory), key=lambda r: r["script"])
    for script, members in itertools.groupby(by_script, key=lambda r: r["script"]):
        group = sorted(members, key=lambda r: (r["date"], r["file"]), reverse=True)
        title = f"`{script}`: {group[0]['what']}" if script else "Other results"
        lines += ["", f"### {title}", "", "| file | date | machine | backend and versions |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        lines += [f"| `{r['file']}` | {r['date']} | {r['machine']} | {r['backend']} |"
                  for r in group]  # fmt: skip
    return "\n".join(lines) + "\n"


def _date(name: str, machine: dict[str, Any]) -> str:
    if machine.get("date"):
        return str(machine["date"])[:10]
    stamp = re.search(r"(20\d{6})", name)
    return f"{stamp[1][:4]}-{stamp[1][4:6]}-{stamp[1][6:]}" if stamp else ""


def _machine(machine: dict[str, Any]) -> str:
    gpus = machine.get("gpus") or ([machine["gpu"]] if machine.get("gpu") else [])
    cores = machine.get("cores") or machine.get("cpu_cores")
    parts = [str(machine.get("cpu", "")).strip(), f"{cores} cores" if cores else ""]
    if machine.get("memory_gib"):
        parts.append(f"{machine['memory_gib']} GiB")
    parts += [str(g).split(" (UUID")[0] for g in gpus]
    return ", ".join(p for p in parts if p).replace("|", "/")


def _backend(machine: dict[str, Any]) -> str:
    versions: dict[str, str] = machine.get("versions", {})
    backend = machine.get("backend", "")
    shown = ["python", "keras", backend, "optuna"]
    listed = ", ".join(f"{k} {versions[k]}" for k in dict.fromkeys(shown) if k in versions)
    return f"{backend}: {listed}" if backend else listed
