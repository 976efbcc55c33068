"""Results on disk: the folder's layout, the parquet tables exported from storage, reading back."""

from __future__ import annotations

from ablate.results.export import export
from ablate.results.files import prepare_results_dir, write_atomic
from ablate.results.load import Results, load_outputs, load_results

__all__ = [
    "Results",
    "export",
    "load_outputs",
    "load_results",
    "prepare_results_dir",
    "write_atomic",
]
