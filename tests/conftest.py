"""Shared fixtures: a tiny real study (small VAE, bundled MNIST sample) and a quiet backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports TensorFlow: CPU only, no start-up chatter, deterministic threads.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABLATE_OFFLINE", "1")

from tests.helpers import tiny_study_text


@pytest.fixture
def tiny_study_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(tiny_study_text(tmp_path / "results"))
    return path
