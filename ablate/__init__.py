"""ablate: factorial ablation studies of Keras models, with linear-model effect analysis.

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

from ablate.errors import AblateError
from ablate.execution.runner import RunSummary, run_study
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
