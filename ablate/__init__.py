"""ablate: factorial ablation studies of Keras models, with linear-model effect analysis.

The public API, for scripts and notebooks (the ``ablate`` command calls the same functions):

>>> study = load_study("studies/quick.yaml")
>>> summary = run_study(study)                 # trains every missing trial, exports parquet
>>> analysis = analyze(load_results(summary.directory))
>>> print(analysis.coefficients)
"""

from __future__ import annotations

from ablate.engine.runner import RunSummary, run_study
from ablate.errors import AblateError
from ablate.results import Results, load_results
from ablate.stats.analysis import Analysis, analyze
from ablate.study import load_study, parse_study
from ablate.study.settings import Study

__all__ = [
    "AblateError",
    "Analysis",
    "Results",
    "RunSummary",
    "Study",
    "analyze",
    "load_results",
    "load_study",
    "parse_study",
    "run_study",
]
