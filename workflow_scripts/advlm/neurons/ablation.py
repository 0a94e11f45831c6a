"""Ablation: the probe's accuracy with its top, bottom or random neurons zeroed."""

from __future__ import annotations

import numpy as np

from .probe import accuracy


def ablation(probe, X: np.ndarray, y: np.ndarray, ordering: np.ndarray, n: int, draws: int, seed: int) -> dict:
    """Accuracy with the top-n, bottom-n or n random neurons zeroed (random: mean over ``draws`` draws)."""
    rng = np.random.default_rng(seed)
    random_runs = [accuracy(probe, X, y, rng.choice(X.shape[1], n, replace=False)) for _ in range(draws)]
    return {
        "n": n,
        "none": accuracy(probe, X, y),
        "top": accuracy(probe, X, y, ordering[:n]),
        "bottom": accuracy(probe, X, y, ordering[-n:]),
        "random": {
            "accuracy": float(np.mean([r["accuracy"] for r in random_runs])),
            "per_tag": {
                tag: float(np.mean([r["per_tag"][tag] for r in random_runs])) for tag in random_runs[0]["per_tag"]
            },
        },
    }
