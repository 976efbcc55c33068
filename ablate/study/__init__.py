"""The study: a study file parsed into frozen dataclasses, and the trials it defines."""

from __future__ import annotations

from ablate.study.parse import load_study, parse_study
from ablate.study.settings import Factor, Level, Study

__all__ = ["Factor", "Level", "Study", "load_study", "parse_study"]
