"""What a trained model attended to, drawn from the ``attention_*`` arrays saved with its trial.

One panel per kind the model saved (see :mod:`ablate.models.explain`):

- ``spatial``: test digits over their attention masks (0: ignored, 1: kept);
- ``channel``: the mean weight of every channel over test digits, with its spread;
- ``transformed``: test digits over what the spatial transformer made of them;
- ``multiscale``: test digits over the largest channel weight of the module's map at every
  position, and the mean weight of every channel against the uniform 1/K;
- ``temporal``: the mean attention weight of every time step over test sequences (the
  sources' bar chart), the step that carries the label marked when it is known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ablate.views.style import MUTED, PLAIN, SIGNIFICANT, figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_HEIGHTS = {"spatial": 1.9, "channel": 2.2, "transformed": 1.9, "multiscale": 2.4,
            "temporal": 2.6}  # fmt: skip


def has_attention(outputs: dict[str, np.ndarray]) -> bool:
    """Whether a trial saved anything this module draws."""
    return any(f"attention_{kind}" in outputs for kind in _HEIGHTS)


def attention_figure(
    outputs: dict[str, np.ndarray], title: str, label_step: int | None = None
) -> Figure:
    """The panels for whatever the trial saved; ``label_step``: the time step that carries
    the label (the synthetic task's attention column), marked in the temporal chart."""
    kinds = [k for k in _HEIGHTS if f"attention_{k}" in outputs]
    fig = figure(sum(_HEIGHTS[k] for k in kinds) + 0.5)
    grid = fig.add_gridspec(len(kinds), 1, height_ratios=[_HEIGHTS[k] for k in kinds])
    for row, kind in enumerate(kinds):
        values = outputs[f"attention_{kind}"]
        inputs = outputs.get("attention_inputs")
        if kind == "spatial":
            _over_inputs(fig.add_subplot(grid[row]), inputs, values, "mask", "spatial attention "
                         "of the first convolution block (1: kept, 0: suppressed)")  # fmt: skip
        elif kind == "transformed":
            _over_inputs(fig.add_subplot(grid[row]), inputs, values / 255.0, "transformed",
                         "the spatial transformer's output (what the encoder sees)",
                         cmap="gray_r")  # fmt: skip
        elif kind == "channel":
            _channels(fig.add_subplot(grid[row]), values)
        elif kind == "multiscale":
            _multiscale(fig, grid[row], inputs, values)
        else:
            _temporal(fig.add_subplot(grid[row]), values, label_step)
    fig.suptitle(title, fontsize="medium")
    return fig


def _over_inputs(ax: Axes, inputs: np.ndarray | None, maps: np.ndarray, name: str, what: str,
                 cmap: str = "magma") -> None:  # fmt: skip
    """Test inputs (top row, grey) over one map each (bottom row, ``cmap`` from 0 to 1)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    colours = colormaps[cmap]
    rows = [colours(np.clip(np.concatenate(list(maps.astype(float)), axis=1), 0, 1))[..., :3]]
    labels = [name]
    if inputs is not None and inputs.ndim == 3 and inputs.shape[1:] == maps.shape[1:]:
        grey = 1.0 - np.concatenate(list(inputs), axis=1).astype(float) / 255.0  # ink is dark
        rows.insert(0, np.repeat(grey[..., None], 3, axis=-1))
        labels.insert(0, "test input")
    ax.imshow(np.concatenate(rows))  # RGB: the inputs grey, the maps in colour
    height = maps.shape[1]
    ax.set_yticks([height * (i + 0.5) for i in range(len(rows))], labels, fontsize="x-small")
    ax.set_xticks([])
    ax.set_title(f"{what}, {len(maps)} test inputs", fontsize="small")
    if cmap != "gray_r":
        scale = ScalarMappable(Normalize(0, 1), colours)
        ax.figure.colorbar(scale, ax=ax, shrink=0.8, pad=0.01, aspect=12)


def _channels(ax: Axes, weights: np.ndarray) -> None:
    """The mean weight of every channel, with the 10th to 90th percentile of test inputs."""
    weights = weights.astype(float)
    mean = weights.mean(axis=0)
    low, high = np.percentile(weights, [10, 90], axis=0)
    channels = np.arange(len(mean))
    ax.bar(channels, mean, color=PLAIN, width=0.75)
    ax.errorbar(channels, mean, yerr=[mean - low, high - mean], fmt="none", ecolor="0.3",
                elinewidth=0.8, capsize=1.5)  # fmt: skip
    ax.set_ylim(0, 1)
    ax.set_axisbelow(True)
    ax.set_xlabel("channel of the first convolution block")
    ax.set_ylabel("weight")
    ax.set_title(f"channel attention: mean weight over {len(weights):,} test inputs (bars: "
                 "10th-90th percentile)", fontsize="small")  # fmt: skip
    ax.grid(axis="y", color="0.92")


def _multiscale(fig: Figure, cell: Any, inputs: np.ndarray | None, a: np.ndarray) -> None:
    """Inputs over the largest channel weight at every position; mean weight per channel."""
    sub = cell.subgridspec(1, 2, width_ratios=(2.6, 1))
    _over_inputs(fig.add_subplot(sub[0]), _resized(inputs, a.shape[1:3]), a.max(axis=-1), "largest",
                 "multi-scale attention: largest channel weight per position")  # fmt: skip
    ax = fig.add_subplot(sub[1])
    k = a.shape[-1]
    ax.bar(np.arange(k), a.reshape(-1, k).mean(axis=0), color=PLAIN, width=0.75)
    ax.axhline(1 / k, color="0.3", linestyle=":", linewidth=1, label=f"uniform (1/{k})")
    ax.set_xlabel("channel")
    ax.set_ylabel("mean weight")
    ax.set_title("mean weight per channel", fontsize="small")
    ax.legend(fontsize="xx-small", frameon=False, loc="best")


def _resized(inputs: np.ndarray | None, size: tuple[int, ...]) -> np.ndarray | None:
    """Inputs (n, H, W) subsampled to the map's (h, w) by nearest pixel, to sit above it."""
    if inputs is None or inputs.ndim != 3:
        return None
    rows = np.linspace(0, inputs.shape[1] - 1, size[0]).round().astype(int)
    cols = np.linspace(0, inputs.shape[2] - 1, size[1]).round().astype(int)
    return inputs[:, rows][:, :, cols]


def _temporal(ax: Axes, weights: np.ndarray, label_step: int | None) -> None:
    """The mean weight of every step, with a 95% interval of the mean, and 1/T."""
    weights = weights.astype(float)
    n, steps = weights.shape
    mean = weights.mean(axis=0)
    half = 1.96 * weights.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(steps)
    colours = [SIGNIFICANT if t == label_step else PLAIN for t in range(steps)]
    ax.bar(np.arange(steps), mean, color=colours, width=0.75, yerr=half, ecolor="0.3",
           error_kw={"elinewidth": 0.8, "capsize": 1.5})  # fmt: skip
    ax.axhline(1 / steps, color=MUTED, linestyle=":", linewidth=1, label=f"uniform (1/{steps})")
    if label_step is not None and 0 <= label_step < steps:
        from matplotlib.patches import Patch

        handles, _ = ax.get_legend_handles_labels()
        label = f"step {label_step}: holds the label (mean weight {mean[label_step]:.2f})"
        handles.append(Patch(color=SIGNIFICANT, label=label))
        ax.legend(handles=handles, fontsize="x-small", frameon=False)
    else:
        ax.legend(fontsize="x-small", frameon=False)
    ax.set_xticks(np.arange(steps))
    ax.set_xlabel("time step")
    ax.set_ylabel("mean attention weight")
    peak = int(mean.argmax())
    ax.set_title(f"attention over time: mean weight per step over {n:,} test sequences "
                 f"(95% intervals); peak at step {peak}", fontsize="small")  # fmt: skip
    ax.set_axisbelow(True)
    ax.grid(axis="y", color="0.92")
