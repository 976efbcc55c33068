"""A training program for the command trainer's tests: what it does is chosen by ``--mode``.

    python command_program.py --mode ok --wide true --seed 3 --out result.json \
        --epochs-file epochs.jsonl [--seconds 0.5] [--marks DIR]

Modes: ``ok`` (two epochs, then the responses), ``fail`` (prints, exits 3), ``noresult``
(exits 0, writes nothing), ``badjson``, ``missing`` (no ``loss``), ``nan`` (a NaN score),
``signal`` (kills itself with SIGKILL), ``hang`` (starts a grandchild, both sleep for ever,
silent), ``hang_once`` (hangs on the first attempt of the wide-and-deep trial; ``--marks``
holds the marker), ``fail_wide`` (fails where ``--wide true``). Every run writes its pid, its
grandchild's pid where it has one, and the environment it saw to the working directory.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("--mode", "--wide", "--deep", "--seed", "--out", "--epochs-file", "--marks"):
        p.add_argument(name, default="")
    p.add_argument("--seconds", type=float, default=0.0)
    a = p.parse_args()
    Path("pid").write_text(str(os.getpid()))
    Path("env.json").write_text(json.dumps(dict(os.environ)))
    wide, deep = a.wide == "true", a.deep == "true"
    if a.mode == "hang" or (a.mode == "hang_once" and wide and deep and _first(a.marks)):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path("child").write_text(str(child.pid))
        time.sleep(600)
    if a.mode == "signal":
        os.kill(os.getpid(), 9)
    if a.mode == "fail" or (a.mode == "fail_wide" and wide):
        print("loading data\nTraceback (most recent call last):\nValueError: bad shape")
        return 3
    score = 0.5 + 0.25 * wide + 0.1 * deep + (int(a.seed) % 7) * 0.01
    for epoch in (1, 2):
        time.sleep(a.seconds / 2)
        print(f"epoch {epoch}", flush=True)
        if a.epochs_file:
            with open(a.epochs_file, "a") as f:
                f.write(json.dumps({"epoch": epoch, "loss": 1 / epoch, "score": score}) + "\n")
    out = {"score": score, "loss": 1 - score}
    if a.mode == "noresult":
        return 0
    text = {"badjson": "{score: 0.5", "missing": json.dumps({"score": score}),
            "nan": '{"score": NaN, "loss": 0.5}'}.get(a.mode, json.dumps(out))  # fmt: skip
    Path(a.out).write_text(text)
    return 0


def _first(marks: str) -> bool:
    """Whether this is the first attempt (it leaves a marker for the next)."""
    marker = Path(marks) / "hung-once"
    if marker.exists():
        return False
    marker.touch()
    return True


if __name__ == "__main__":
    sys.exit(main())
