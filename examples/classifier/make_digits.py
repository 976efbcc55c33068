"""Write digits.npz: 1,000 training and 300 test digits of the MNIST sample bundled with ablate.

The layout any .npz dataset needs: x_train, y_train, x_test, y_test (and, optionally,
class_names). Images stored as unsigned bytes are scaled to [0, 1] by ablate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ablate.data import SAMPLE_PATH

with np.load(SAMPLE_PATH) as sample:
    np.savez_compressed(
        Path(__file__).with_name("digits.npz"),
        x_train=sample["x_train"][:1000, :, :, None],  # (1000, 28, 28, 1) uint8
        y_train=sample["y_train"][:1000],  # (1000,) digit labels 0-9
        x_test=sample["x_test"][:300, :, :, None],
        y_test=sample["y_test"][:300],
    )
print("wrote digits.npz")
