"""Attention-map figures: one heatmap with token labels, or a grid of heads."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_array(weights: Any) -> np.ndarray:
    if hasattr(weights, "detach"):
        weights = weights.detach().float().cpu().numpy()
    arr = np.asarray(weights, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D (queries x keys) attention matrix, got shape {arr.shape}")
    return arr


def plot_attention(weights: Any, tokens: Sequence[str], title: str = "Attention",
                   key_tokens: Sequence[str] | None = None, ax: Any = None, colorbar: bool = True,
                   vmax: float | None = None) -> Any:
    """Heatmap of one (queries x keys) attention matrix, axes labelled with the tokens; colours run
    from 0 to `vmax` (default: this matrix's maximum).

    Returns the matplotlib Axes; the caller calls `plt.show()`."""
    import matplotlib.pyplot as plt

    arr = _as_array(weights)
    keys = list(key_tokens) if key_tokens is not None else list(tokens)
    if arr.shape != (len(tokens), len(keys)):
        raise ValueError(f"weights of shape {arr.shape} do not match {len(tokens)} query and {len(keys)} key tokens")
    if ax is None:
        size = max(3.0, 0.45 * max(arr.shape) + 1.5)
        _, ax = plt.subplots(figsize=(size, size * 0.85))
    top = float(arr.max()) if vmax is None else float(vmax)
    im = ax.imshow(arr, cmap="viridis", vmin=0.0, vmax=max(top, 1e-9))
    ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tokens)), list(tokens), fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return ax


def plot_attention_grid(weights: Any, tokens: Sequence[str], title: str = "Attention heads",
                        ncols: int = 4, head_titles: Sequence[str] | None = None) -> Any:
    """Grid of heatmaps for a (heads x queries x keys) tensor; returns the Figure. Every head is
    drawn on one colour scale (0 to the largest weight of any head), so the single colour bar reads
    true for all of them and a diffuse head looks pale beside a sharp one."""
    import matplotlib.pyplot as plt

    if hasattr(weights, "detach"):
        weights = weights.detach().float().cpu().numpy()
    arr = np.asarray(weights, dtype=float)
    if arr.ndim != 3:
        raise ValueError(f"expected (heads, queries, keys), got shape {arr.shape}")
    heads = arr.shape[0]
    top = float(arr.max())
    ncols = min(ncols, heads)
    nrows = -(-heads // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.8 * nrows), squeeze=False)
    for h, ax in enumerate(axes.flat):
        if h >= heads:
            ax.axis("off")
            continue
        label = head_titles[h] if head_titles else f"head {h}"
        plot_attention(arr[h], tokens, title=label, ax=ax, colorbar=False, vmax=top)
        if h % ncols:
            ax.set_ylabel("")
            ax.set_yticklabels([])
        if h < heads - ncols:
            ax.set_xlabel("")
    fig.colorbar(axes.flat[0].images[0], ax=axes, fraction=0.02, pad=0.02, label="weight")
    fig.suptitle(title)
    return fig
