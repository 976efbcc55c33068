"""ablate's version: ``project.version`` of pyproject.toml, as installed (CHANGELOG.md says
what each version changed; results folders record the version that wrote them)."""

from __future__ import annotations

from importlib import metadata


def installed_version() -> str:
    """The installed package's version ("0+unknown" in a source tree never installed)."""
    try:
        return metadata.version("ablate")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = installed_version()
