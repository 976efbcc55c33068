"""ablate: factorial ablation studies of Keras models or your own training code, with
linear-model effect analysis.

The public API, for scripts and notebooks (the ``ablate`` command calls the same functions).
A study of four cells of a small VAE on the bundled MNIST sample, trained, analysed:

>>> import tempfile
>>> import ablate
>>> study = ablate.parse_study(f'''
... name: tiny
... model: {{units: [8, 6, 4, 2], depth: 1}}
... factors: {{batch_norm: [true, false], activation: [relu, sigmoid]}}
... training: {{epochs: 1, batch_size: 32}}
... data: {{dataset: mnist-sample, train_size: 96, test_size: 64}}
... results: {tempfile.mkdtemp()}
... ''')
>>> summary = ablate.run_study(study, workers=2, live=False)  # trains every missing trial
>>> summary.complete, summary.total
(4, 4)
>>> analysis = ablate.analyze(ablate.load_results(summary.directory))
>>> analysis.effects["factor"].tolist()  # each two-level factor's effect, high − low
['batch_norm', 'activation']
>>> analysis.effects["high"].tolist()
['true', 'sigmoid']

``load_study("studies/quick.yaml")`` reads a study file instead.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ablate.version import __version__ as __version__  # re-exported: ablate.__version__

if TYPE_CHECKING:
    from ablate.cluster.slurm import SlurmOptions, submit_study
    from ablate.errors import AblateError
    from ablate.execution.runner import RunSummary, run_study
    from ablate.results import Results, load_results
    from ablate.sequential.rounds import run_until_precise
    from ablate.sequential.until_decided import run_until_decided
    from ablate.stats.overall import analyze
    from ablate.stats.result import Analysis
    from ablate.study import load_study, parse_study
    from ablate.study.settings import Study

#: The public API: each name, and the module that defines it (imported when first used, so
#: that ``import ablate`` and the ``ablate analyze`` command do not load the training stack).
_API = {
    "AblateError": "ablate.errors",
    "Analysis": "ablate.stats.result",
    "Results": "ablate.results",
    "RunSummary": "ablate.execution.runner",
    "Study": "ablate.study.settings",
    "analyze": "ablate.stats.overall",
    "load_results": "ablate.results",
    "load_sample": "ablate.data.keras_datasets",
    "load_study": "ablate.study",
    "parse_study": "ablate.study",
    "run_study": "ablate.execution.runner",
    "run_until_decided": "ablate.sequential.until_decided",
    "run_until_precise": "ablate.sequential.rounds",
    "SlurmOptions": "ablate.cluster.slurm",
    "submit_study": "ablate.cluster.slurm",
}
__all__ = [
    "AblateError",
    "Analysis",
    "Results",
    "RunSummary",
    "SlurmOptions",
    "Study",
    "analyze",
    "load_results",
    "load_sample",
    "load_study",
    "parse_study",
    "run_study",
    "run_until_decided",
    "run_until_precise",
    "submit_study",
]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'ablate' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
