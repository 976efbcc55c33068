"""CONTRIBUTING.md's code map names every package and module ablate has, so that a newcomer's
map of the code is never missing a piece."""

from __future__ import annotations

from tests.helpers import ROOT


def test_the_code_map_names_every_package_and_module() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    missing = []
    for path in sorted((ROOT / "ablate").rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        if f"`{path.stem}`" not in text and f"`{path.stem}." not in text:
            missing.append(str(path.relative_to(ROOT)))
    for folder in sorted(p for p in (ROOT / "ablate").iterdir() if (p / "__init__.py").is_file()):
        if f"`{folder.name}/`" not in text:
            missing.append(f"{folder.relative_to(ROOT)}/")
    assert not missing, f"CONTRIBUTING.md's code map lacks {missing}"
