"""The forecasters' figures: the learning curve and forecast vs actual per video."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def learning_curve(history: Mapping[str, list[float]], best_epoch: int, title: str) -> Figure:
    """Training and validation loss per epoch, with the epoch whose weights were kept."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="train loss")
    ax.plot(epochs, history["val_loss"], label="validation loss")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle="--", label=f"kept epoch {best_epoch}")
    ax.set(xlabel="epoch", ylabel="loss (scaled)", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def forecast_plot(
    times: pd.Series,
    levels: np.ndarray,
    actual: np.ndarray,
    model: np.ndarray,
    baseline: np.ndarray,
    baseline_name: str,
    title: str,
) -> Figure:
    """Counts (top) and per-minute increments (bottom): actual, model, best baseline."""
    last = levels[:, -1]
    fig = Figure(figsize=(10, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(times, actual, label="actual", color="black", linewidth=1)
    top.plot(times, model, label="LSTM", linewidth=1)
    top.set(ylabel="count", title=title)
    top.legend()
    bottom.plot(times, actual - last, label="actual", color="black", linewidth=0.6, alpha=0.6)
    bottom.plot(times, model - last, label="LSTM", linewidth=1)
    bottom.plot(times, baseline - last, label=baseline_name, linewidth=1, linestyle="--")
    bottom.set(ylabel="next increment", xlabel="time (UTC)")
    bottom.legend()
    fig.tight_layout()
    return fig


__all__ = ["forecast_plot", "learning_curve"]
