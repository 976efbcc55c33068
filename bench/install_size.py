"""How much each install of ablate puts on disk: the core (`pip install ablate`) beside the full
install with a Keras backend (`pip install 'ablate[tensorflow]'`), measured in virtual
environments built for it.

    python3 -m venv /tmp/core && /tmp/core/bin/pip install .
    python3 -m venv /tmp/full && /tmp/full/bin/pip install '.[tensorflow]'
    python bench/install_size.py core=/tmp/core full=/tmp/full

For each environment: the size of its site-packages, its number of distributions, the largest
ones, and which deep-learning frameworks it holds; the ratio of each to the first. Results go
to bench/results/install-size-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._machine import describe_machine, save  # noqa: E402

#: Prints, in the environment measured, each distribution's name and its files' total bytes.
SIZES = """
import importlib.metadata as md, json, os
out = {}
for dist in md.distributions():
    total = 0
    for f in dist.files or ():
        path = dist.locate_file(f)
        if os.path.isfile(path):
            total += os.path.getsize(path)
    out[dist.metadata["Name"]] = out.get(dist.metadata["Name"], 0) + total
print(json.dumps(out))
"""
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")


def measure(venv: Path) -> dict[str, Any]:
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-c", SIZES], capture_output=True, text=True, check=True)
    sizes: dict[str, int] = json.loads(done.stdout)
    site = next((venv / "lib").glob("python3*/site-packages"))
    on_disk = int(subprocess.run(["du", "-sb", str(site)], capture_output=True, text=True,
                                 check=True).stdout.split()[0])  # fmt: skip
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:12]
    return {
        "site_packages_mb": round(on_disk / 1e6, 1),
        "distributions": len(sizes),
        "frameworks": sorted(n for n in sizes if n.lower() in FRAMEWORKS),
        "largest_mb": {name: round(size / 1e6, 1) for name, size in largest},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="+", metavar="LABEL=VENV")
    args = parser.parse_args()
    measured = {}
    for item in args.envs:
        label, _, path = item.partition("=")
        measured[label] = measure(Path(path))
    first = next(iter(measured.values()))["site_packages_mb"]
    for label, m in measured.items():
        m["ratio_to_first"] = round(m["site_packages_mb"] / first, 2)
        frameworks = ", ".join(m["frameworks"]) or "none"
        print(f"{label}: {m['site_packages_mb']} MB in {m['distributions']} distributions "
              f"(x{m['ratio_to_first']}), frameworks: {frameworks}")  # fmt: skip
    payload = {"machine": describe_machine(), "installs": measured}
    path = save(HERE / "results", "install-size", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
