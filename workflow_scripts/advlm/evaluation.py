"""Generalization metrics: accuracy, macro-F1 and expected calibration error."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al. 2017): Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # right-closed bins (lo, hi]; a confidence of exactly 0 cannot occur for a softmax output
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray, ece_bins: int = 15) -> dict:
    predictions = probabilities.argmax(axis=1)
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(
            f1_score(labels, predictions, average="macro", labels=list(range(probabilities.shape[1])), zero_division=0)
        ),
        "ece": expected_calibration_error(probabilities, labels, ece_bins),
    }
