"""What a change to the code's shape did: the import graph and the sizes that make code hard
to change, for this checkout or another (a worktree of an earlier commit).

    python bench/codebase.py [--root PATH] [--label NAME]

Measures, for the ``ablate`` package under ``--root``: each package's floor in the layers
contract of its pyproject.toml (0 is the bottom) and which packages the storage imports;
import cycles between modules (a depth-first search of the module graph); imports made inside
functions (lazy imports); the longest module and function, in lines; every use of ``Any``
(names in the code, not in strings); and, where mypy is installed, its error count over the
package with the project's configuration. Results go to bench/results/codebase-<label>-<date>.json.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._machine import describe_machine, save  # noqa: E402


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    out = {}
    for path in sorted((root / "ablate").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, tree: ast.AST) -> list[tuple[str, bool]]:
    """(imported ablate module, inside a function?) of every import in a module."""
    found = []
    package = name if name.count(".") < 1 else name.rsplit(".", 1)[0]

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, inside) for a in child.names if a.name.startswith("ablate"))
            elif isinstance(child, ast.ImportFrom):
                target = child.module or ""
                if child.level:
                    target = ".".join([*package.split(".")[: -child.level + 1 or None], target])
                if target.startswith("ablate"):  # a name that is a module counts as that module
                    found.extend((f"{target.rstrip('.')}\0{a.name}", inside) for a in child.names)
            visit(child, nested)

    visit(tree, False)
    return found


def _module(target: str, found: dict[str, Path]) -> str:
    """The module an import names: itself, or for ``from X import Y`` (written ``X\0Y``) the
    module X.Y where Y is one, else X."""
    if "\0" in target:
        package, name = target.split("\0")
        target = f"{package}.{name}" if f"{package}.{name}" in found else package
    while target and target not in found:
        target = target.rsplit(".", 1)[0] if "." in target else ""
    return target


def floors(root: Path) -> dict[str, int]:
    """Each package's layer, counted from the bottom, per the contract in pyproject.toml."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    layers = contract["layers"]
    out = {}
    for i, layer in enumerate(reversed(layers)):
        for name in (p.strip() for p in layer.split("|")):
            out[name.removeprefix("ablate.")] = i
    return out


def cycles(graph: dict[str, set[str]]) -> int:
    """Strongly connected groups of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    count = [0, 0]

    def connect(v: str) -> None:
        index[v] = low[v] = count[0]
        count[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            count[1] += len(group) > 1

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            connect(v)
    return count[1]


def _lazy(tree: ast.AST) -> int:
    """Imports made inside functions."""
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inner = {
        id(i) for d in defs for i in ast.walk(d) if isinstance(i, (ast.Import, ast.ImportFrom))
    }
    return len(inner)


def sizes(path: Path, tree: ast.AST) -> tuple[int, list[tuple[str, int]], int]:
    """A module's lines, its functions' lengths, its uses of ``Any``."""
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    functions = [(f"{path.stem}.{n.name}", (n.end_lineno or n.lineno) - n.lineno + 1)
                 for n in defs]  # fmt: skip
    anys = sum(1 for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "Any")
    anys += sum(1 for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "Any")
    return len(path.read_text().splitlines()), functions, anys


def measure(root: Path) -> dict[str, Any]:
    found = modules(root)
    graph: dict[str, set[str]] = {}
    lazy = 0
    lines: dict[str, int] = {}
    functions: list[tuple[str, int]] = []
    anys = 0
    for name, path in found.items():
        tree = ast.parse(path.read_text())
        targets = imports(name, tree)
        lazy += _lazy(tree)
        graph[name] = {_module(t, found) for t, _ in targets} - {name, ""}
        lines[name], mine, n_any = sizes(path, tree)
        functions += mine
        anys += n_any
    floor = floors(root)
    package = lambda m: m.split(".")[1] if m.count(".") else m  # noqa: E731
    storage_imports = sorted({package(t) for m, ts in graph.items() if package(m) == "storage"
                              for t in ts if package(t) != "storage"})  # fmt: skip
    longest_module = max(lines.items(), key=lambda kv: kv[1])
    longest_function = max(functions, key=lambda kv: kv[1])
    return {
        "modules": len(found), "lines": sum(lines.values()), "floors": floor,
        "storage_floor": floor.get("storage"), "storage_imports": storage_imports,
        "cycles": cycles(graph), "imports_inside_functions": lazy,
        "longest_module": list(longest_module), "longest_function": list(longest_function),
        "functions_over_40_lines": sum(n > 40 for _, n in functions), "any": anys,
        "mypy_errors": _mypy(root),
    }  # fmt: skip


def _mypy(root: Path) -> int | None:
    try:
        done = subprocess.run([sys.executable, "-m", "mypy", "ablate"], cwd=root,
                              capture_output=True, text=True, timeout=900)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"Found (\d+) errors?", done.stdout)
    return int(found[1]) if found else (0 if "Success" in done.stdout else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE.parent)
    parser.add_argument("--label", default="now")
    args = parser.parse_args()
    result = measure(args.root.resolve())
    print(result)
    print(save(HERE / "results", f"codebase-{args.label}",
               {"machine": describe_machine(), "root": str(args.root), **result}))  # fmt: skip


if __name__ == "__main__":
    main()
