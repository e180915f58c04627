"""Loss curves of a training run as a PNG (needs matplotlib: ``pip install rnnx[plot]``)."""

import numpy as np

__all__ = ["plot_history"]


def plot_history(train, val, path):
    """Draw the training loss of every step and the validation loss, and save a PNG.

    Parameters
    ----------
    train : array-like of shape (N, 2)
        Rows ``(step, loss)``.
    val : array-like of shape (M, 2)
        Rows ``(step, validation loss)``; may be empty.
    path : str or os.PathLike
        The PNG file to write.

    Raises
    ------
    ImportError
        If matplotlib is not installed (the message says how to install it).
    ValueError
        If there is no training loss to draw.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only, no window
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'rnnx[plot]' "
                          "(or pip install matplotlib)") from None
    train = np.asarray(train, dtype=np.float64).reshape(-1, 2)
    val = np.asarray(val, dtype=np.float64).reshape(-1, 2)
    if len(train) == 0:
        raise ValueError("there is no training loss to plot")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        ax.plot(train[:, 0], train[:, 1], lw=0.8, alpha=0.5, label="training loss (per step)")
        if len(train) >= 20:  # a moving average shows the trend through the noise
            w = max(len(train) // 50, 5)
            smooth = np.convolve(train[:, 1], np.ones(w) / w, mode="valid")
            ax.plot(train[w - 1:, 0], smooth, lw=1.5, label=f"training loss ({w}-step mean)")
        if len(val):
            ax.plot(val[:, 0], val[:, 1], "o-", lw=1.5, label="validation loss")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy per token (nats)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
