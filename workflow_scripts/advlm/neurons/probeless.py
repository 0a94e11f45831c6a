"""The probe-free ranking (NeuroX ``probeless``, Antverg & Belinkov 2022) and how concentrated its score is."""

from __future__ import annotations

import numpy as np

from .ranking import top_neurons


def probeless_scores(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NeuroX's ``probeless`` score of each neuron (Antverg & Belinkov 2022): the sum over all pairs of tags
    (a, b) of |mean activation on words tagged a - mean on words tagged b|.

    No probe is trained, so no regularizer enters the score. The tag means come from one product with a one-hot
    matrix, which copies no rows of ``X``.
    """
    classes, index = np.unique(y, return_inverse=True)
    onehot = np.zeros((len(classes), len(y)), dtype=np.float32)
    onehot[index, np.arange(len(y))] = 1
    means = (onehot @ X).astype(np.float64) / onehot.sum(axis=1, keepdims=True)
    return sum((np.abs(means[a] - means[a + 1 :]).sum(axis=0) for a in range(len(classes))), np.zeros(X.shape[1]))


def probeless_concentration(scores: np.ndarray, share: float, hidden: int) -> dict:
    """The fewest top-scored neurons that hold ``share`` of the total probeless score, as a count and a share of
    all neurons: the fewer, the more the tags' differences are concentrated in a few neurons."""
    (selected,) = top_neurons(scores[None, :], share)
    return {
        "mass_share": share,
        "n": int(len(selected)),
        "share": len(selected) / len(scores),
        "layer_distribution": np.bincount(selected // hidden, minlength=len(scores) // hidden).tolist(),
    }
