"""What a trained model learned, drawn from the outputs saved with its trial, task by task.

- reconstruction: test inputs over their reconstructions; with an encoder, the latent space
  coloured by label: a 2-d one as it is, with a walk decoded across it; a larger one projected
  on its first two principal components, beside the spread of every dimension (how many the
  model uses);
- classification: the confusion matrix (shares of each true class) and every class's recall;
- regression: predicted against true targets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ablate.views.style import MUTED, PLAIN, TAB10, figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def learned_figure(outputs: dict[str, np.ndarray], title: str) -> Figure:
    """The figure for whatever the trial saved (see the module's docstring)."""
    if "confusion" in outputs:
        fig = _classification(outputs)
    elif "y_pred" in outputs:
        fig = _regression(outputs)
    else:
        fig = _reconstruction(outputs)
    fig.suptitle(title, fontsize="medium")
    return fig


def _reconstruction(outputs: dict[str, np.ndarray]) -> Figure:
    """Test inputs over their reconstructions; with an encoder, below them the latent space by
    label -- the plane itself and a walk decoded across it where the latent space is 2-d, else
    its first two principal components beside the spread of every latent dimension."""
    latent = outputs.get("latent")
    has_latent = latent is not None and latent.ndim == 2 and latent.shape[1] >= 2
    fig = figure(5.6 if has_latent else 1.9)
    if has_latent:
        grid = fig.add_gridspec(2, 2, height_ratios=(1, 3.2))
        recon_ax = fig.add_subplot(grid[0, :])
        left, right = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    else:
        recon_ax = fig.subplots(1, 1)
    if "originals" in outputs:
        originals, recons = outputs["originals"], outputs["reconstructions"]
        pairs = np.concatenate([_row(originals), _row(recons)])
        colour = pairs.ndim == 3
        recon_ax.imshow(pairs, cmap=None if colour else "gray_r", vmin=0, vmax=255)
        height = originals.shape[1]
        recon_ax.set_yticks([height / 2, 1.5 * height], ["test input", "reconstruction"],
                            fontsize="x-small")  # fmt: skip
        recon_ax.set_title(f"{len(originals)} test inputs and their reconstructions",
                           fontsize="small")  # fmt: skip
    recon_ax.set_xticks([])
    if not has_latent:
        return fig
    z = np.asarray(latent, dtype=float)
    if z.shape[1] == 2:
        _scatter(left, z, outputs.get("labels"), ("z₁ (latent mean)", "z₂ (latent mean)"),
                 f"the 2-d latent space of {len(z):,} test inputs")  # fmt: skip
        if "walk" in outputs:
            _walk(right, outputs)
        else:
            _dimension_spread(right, z)
        return fig
    projected, shares = _principal_components(z)
    axes = (f"PC1 ({shares[0]:.0%} of the variance)", f"PC2 ({shares[1]:.0%})")
    _scatter(left, projected, outputs.get("labels"), axes,
             f"{len(z):,} test inputs' {z.shape[1]}-d latent means, projected (PCA)")  # fmt: skip
    _dimension_spread(right, z)
    return fig


def _principal_components(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components of ``z``'s rows, and each component's share of the
    total variance."""
    centred = z - z.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    total = variance.sum() or 1.0
    return centred @ vt[:2].T, variance[:2] / total


def _scatter(
    ax: Axes, z: np.ndarray, labels: np.ndarray | None, names: tuple[str, str], title: str
) -> None:
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=3, color=PLAIN)
    else:
        for i, label in enumerate(np.unique(labels)[:20]):
            sel = labels == label
            ax.scatter(z[sel, 0], z[sel, 1], s=3, color=TAB10[i % len(TAB10)], label=str(label))
        ax.legend(title="label", fontsize="xx-small", title_fontsize="xx-small", markerscale=3,
                  frameon=False, ncols=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # fmt: skip
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title, fontsize="small")


def _walk(ax: Axes, outputs: dict[str, np.ndarray]) -> None:
    walk = outputs["walk"]
    side = round(len(walk) ** 0.5)
    mosaic = np.block([[walk[r * side + c] for c in range(side)] for r in range(side)])
    xs, ys = outputs["walk_x"], outputs["walk_y"]
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=255, extent=(xs[0], xs[-1], ys[-1], ys[0]),
              aspect="auto")  # fmt: skip
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    ax.set_title("images decoded across the latent plane", fontsize="small")


#: A latent dimension whose mean varies less than this across test inputs carries nothing
#: (the "active units" of Burda et al. 2016: variance of the encoder's mean above 0.01).
ACTIVE = 0.01


def _dimension_spread(ax: Axes, z: np.ndarray) -> None:
    """The variance of every latent dimension's mean across the test inputs, largest first:
    how many dimensions the model uses."""
    variance = np.sort(z.var(axis=0))[::-1]
    used = variance > ACTIVE
    x = np.arange(1, len(variance) + 1)
    ax.bar(x[used], variance[used], color=PLAIN)
    if (~used).any():
        ax.bar(x[~used], np.maximum(variance[~used], 1e-6), color=MUTED)
    ax.axhline(ACTIVE, color="0.3", linestyle=":", linewidth=1,
               label=f"in use above {ACTIVE:g}")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("latent dimension (by variance)")
    ax.set_ylabel("variance of its mean across inputs")
    ax.set_title(f"{int(used.sum())} of {len(variance)} latent dimensions in use",
                 fontsize="small")  # fmt: skip
    ax.legend(fontsize="xx-small", frameon=False, loc="upper right")


def _row(images: np.ndarray) -> np.ndarray:
    """(n, H, W[, 3]) -> (H, W·n[, 3]), side by side."""
    return np.concatenate(list(images), axis=1)


def _classification(outputs: dict[str, np.ndarray]) -> Figure:
    """The confusion matrix as shares of each true class, and the recall of every class."""
    confusion = outputs["confusion"].astype(float)
    k = len(confusion)
    names = [str(n) for n in outputs.get("class_names", np.arange(k))]
    support = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, support, out=np.zeros_like(confusion), where=support > 0)
    fig = figure(max(3.4, 0.32 * k + 1.6))
    matrix_ax, recall_ax = fig.subplots(1, 2, width_ratios=(1.25, 1))
    image = matrix_ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if k <= 12:
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    matrix_ax.text(j, i, f"{int(confusion[i, j])}", ha="center", va="center",
                                   fontsize="xx-small",
                                   color="white" if shares[i, j] > 0.5 else "0.2")  # fmt: skip
    matrix_ax.set_xticks(range(k), names, rotation=90 if k > 5 else 0, fontsize="x-small")
    matrix_ax.set_yticks(range(k), names, fontsize="x-small")
    matrix_ax.set_xlabel("predicted class")
    matrix_ax.set_ylabel("true class")
    matrix_ax.set_title("confusion matrix (colour: share of the true class)", fontsize="small")
    fig.colorbar(image, ax=matrix_ax, shrink=0.8)
    recall = outputs.get("recall", np.diag(shares))
    y = np.arange(k)[::-1]
    recall_ax.barh(y, np.nan_to_num(recall), color=PLAIN, height=0.7)
    recall_ax.axvline(1 / k, color="0.3", linestyle=":", linewidth=1, label=f"chance (1/{k})")
    recall_ax.set_yticks(y, names, fontsize="x-small")
    recall_ax.set_xlim(0, 1)
    recall_ax.set_xlabel("recall (share of the class found)")
    balanced = float(np.nanmean(recall))
    recall_ax.set_title(f"per-class recall\nmean {balanced:.3f} (balanced accuracy)",
                        fontsize="small")  # fmt: skip
    recall_ax.legend(fontsize="xx-small", frameon=False, loc="lower right")
    recall_ax.grid(axis="x", color="0.92")
    return fig


def _regression(outputs: dict[str, np.ndarray]) -> Figure:
    """Predicted against true targets (the first output), with the line of perfect fit."""
    truth = outputs["y_true"].reshape(len(outputs["y_true"]), -1)[:, 0]
    predicted = outputs["y_pred"].reshape(len(outputs["y_pred"]), -1)[:, 0]
    fig = figure(4.2)
    ax = fig.subplots()
    ax.scatter(truth, predicted, s=6, alpha=0.5, color=PLAIN)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="0.3", linestyle="--", linewidth=1,
            label="perfect prediction")  # fmt: skip
    ax.set_xlabel("true target")
    ax.set_ylabel("predicted target")
    ax.set_title(f"predictions for {len(truth):,} test examples", fontsize="small")
    ax.legend(fontsize="x-small", frameon=False)
    ax.grid(color="0.94")
    return fig
