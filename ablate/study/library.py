"""The studies ablate ships, in the package: found by name, copied out by ``ablate init``.

``ablate run quick`` runs the shipped ``quick`` study where there is no file called ``quick``
in the current folder, so that a user who installed the wheel, with no clone of the
repository, can start from them; ``ablate init quick`` writes a copy (``quick.yaml``) to edit.
In the repository, ``studies/`` is a link to the same folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ablate.errors import AblateError

FOLDER = Path(__file__).resolve().parent / "studies"


def names() -> tuple[str, ...]:
    """The shipped studies' names (their files without ``.yaml``), sorted."""
    return tuple(sorted(p.stem for p in FOLDER.glob("*.yaml")))


def described() -> list[tuple[str, str]]:
    """Each shipped study's name and the first sentence of its description."""
    import yaml

    out = []
    for name in names():
        data = yaml.safe_load((FOLDER / f"{name}.yaml").read_text(encoding="utf-8")) or {}
        about = " ".join(str(data.get("description", "")).split())
        first = about.split(". ")[0]
        out.append((name, first if first[-1:] in ".?!" else first + "." if first else ""))
    return out


def path_of(name: str) -> Path | None:
    """The shipped study called ``name`` (with or without ``.yaml``), if there is one."""
    stem = name.removesuffix(".yaml")
    path = FOLDER / f"{stem}.yaml"
    return path if "/" not in stem and path.is_file() else None


def copy_to(name: str, folder: Path) -> Path:
    """Write a copy of the shipped study ``name`` into ``folder``; never overwrites."""
    source = path_of(name)
    if source is None:
        raise AblateError(f"ablate ships no study called {name!r}; it ships "
                          f"{', '.join(names())}.")  # fmt: skip
    target = folder / source.name
    if target.exists():
        raise AblateError(f"{target} exists already; edit it, or remove it to start afresh.")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
