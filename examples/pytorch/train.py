"""Train the small MNIST CNN of mnist_cnn.py from the command line: a script as researchers write
them (argparse in, a JSON file out), which ablate's command trainer runs once per trial.

    python train.py --batch-norm --act gelu --seed 3 --out result.json

It writes the test accuracy and loss to ``--out`` as one JSON object and, with
``--epochs-file``, appends one JSON line per epoch (the curves ablate draws). The data is an
MNIST ``.npz`` in Keras's layout (``--data``), by default the sample that ablate ships.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

# The model and its epoch of the function example, beside this file.
from mnist_cnn import Net, evaluate, train_epoch


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-norm", action="store_true", help="BatchNorm after each conv")
    parser.add_argument("--dropout", action="store_true", help="dropout before the classifier")
    parser.add_argument("--shortcut", action="store_true", help="a residual shortcut")
    parser.add_argument("--act", choices=["relu", "gelu"], default="relu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="an MNIST .npz (x_train, y_train, x_test, y_test)")
    parser.add_argument("--out", required=True, help="where the results go, as JSON")
    parser.add_argument("--epochs-file", help="where each epoch's values go, a JSON line each")
    return parser.parse_args()


def load(path: str | None) -> tuple[torch.Tensor, ...]:
    """Images as (n, 1, 28, 28) floats in [0, 1], labels as integers."""
    if path is None:
        import ablate  # only for the MNIST sample it bundles

        data = ablate.load_sample()
        arrays = data.x_train[..., 0], data.y_train, data.x_test[..., 0], data.y_test
    else:
        with np.load(path) as f:
            arrays = tuple(f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    x_train, y_train, x_test, y_test = (torch.from_numpy(np.asarray(a)) for a in arrays)
    scale = 255.0 if x_train.dtype == torch.uint8 else 1.0
    return (x_train[:, None].float() / scale, y_train.long(), x_test[:, None].float() / scale,
            y_test.long())  # fmt: skip


def main() -> None:
    args = arguments()
    torch.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load(args.data)
    x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
    model = Net(args.batch_norm, args.dropout, args.shortcut, args.act)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    order = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        train_loss = train_epoch(model, optimizer, x_train, y_train, order, args.batch_size)
        test_loss, test_accuracy = evaluate(model, x_test, y_test)
        print(f"epoch {epoch}: train loss {train_loss:.4f}, test accuracy "
              f"{test_accuracy:.4f}")  # fmt: skip
        if args.epochs_file:
            row = {"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss}
            row["test_accuracy"] = test_accuracy
            with open(args.epochs_file, "a") as f:
                f.write(json.dumps(row) + "\n")
    with open(args.out, "w") as f:
        json.dump({"test_accuracy": test_accuracy, "test_loss": test_loss}, f)


if __name__ == "__main__":
    main()
