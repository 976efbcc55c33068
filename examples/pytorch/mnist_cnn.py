"""A small PyTorch CNN with its own training loop, for ablate's ``trainer:`` seam.

The data is the MNIST sample ablate ships (``ablate.load_sample()``: 5,000 training and 1,000
test digits, 28x28, pixels in [0, 1]); the first ``train_size`` training digits are used. Two
3x3 convolutions of ``width`` channels, each followed by max-pooling, then a linear layer to
the 10 classes; the factors switch BatchNorm after each convolution, dropout before the
classifier, a residual shortcut around the second convolution, and the activation.
Adam, cross-entropy, ``epochs`` passes in an order drawn from ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import ablate

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


class Net(nn.Module):
    """(n, 1, 28, 28) digits -> (n, 10) class logits."""

    def __init__(self, batch_norm: bool, dropout: bool, shortcut: bool, activation: str,
                 width: int = 16) -> None:  # fmt: skip
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(width)) if batch_norm else nn.Identity
        self.conv1 = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), norm(),
                                   ACTIVATIONS[activation]())  # fmt: skip
        self.conv2 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), norm(),
                                   ACTIVATIONS[activation]())  # fmt: skip
        self.shortcut = shortcut
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3 if dropout else 0.0),
                                  nn.Linear(width * 7 * 7, 10))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(self.conv1(x), 2)  # (n, width, 14, 14)
        y = self.conv2(h)  # (n, width, 14, 14)
        h = F.max_pool2d(y + h if self.shortcut else y, 2)  # (n, width, 7, 7)
        return self.head(h)  # (n, 10)


def train(
    batch_norm: bool, dropout: bool, shortcut: bool, activation: str, seed: int,
    report: Callable[..., None], epochs: int = 3, train_size: int = 2000,
    batch_size: int = 64, learning_rate: float = 2e-3,
) -> dict[str, float]:  # fmt: skip
    """Train one trial; returns the responses the study file declares."""
    data = ablate.load_sample()
    x_train = torch.from_numpy(data.x_train[:train_size]).permute(0, 3, 1, 2)  # (n, 1, 28, 28)
    y_train = torch.from_numpy(data.y_train[:train_size]).long()
    x_test = torch.from_numpy(data.x_test).permute(0, 3, 1, 2)
    y_test = torch.from_numpy(data.y_test).long()
    model = Net(batch_norm, dropout, shortcut, activation)  # ablate seeded torch: same weights
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    order = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        train_loss = train_epoch(model, optimizer, x_train, y_train, order, batch_size)
        test_loss, test_accuracy = evaluate(model, x_test, y_test)
        report(epoch, train_loss=train_loss, test_loss=test_loss,
               test_accuracy=test_accuracy)  # fmt: skip
    test_loss, test_accuracy = evaluate(model, x_test, y_test)
    return {"test_accuracy": test_accuracy, "test_loss": test_loss}


def train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    order: torch.Generator, batch_size: int,
) -> float:  # fmt: skip
    """One pass over the training set in the order ``order`` draws; the mean training loss."""
    model.train()
    total = 0.0
    for batch in torch.randperm(len(x), generator=order).split(batch_size):
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss) * len(batch)
    return total / len(x)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on (x, y), in inference mode."""
    model.eval()
    logits = model(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())
