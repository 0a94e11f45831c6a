"""The control task (Hewitt & Liang 2019): selectivity = linguistic minus control-task accuracy."""

from __future__ import annotations

import numpy as np


def control_labels(words, tags, train: np.ndarray, seed) -> np.ndarray:
    """Hewitt & Liang's control task: each word type gets one tag, drawn (``seed``) from the tag distribution of
    the train words, and every token of the type carries it whatever its context.

    Types cover all splits, so test words are labelled too. They are lowercased: an uncased model cannot tell
    "The" from "the", and a cased one can still memorise the merged type.
    """
    types, token_type = np.unique([word.lower() for word in words], return_inverse=True)
    classes, counts = np.unique(np.asarray(tags)[train], return_counts=True)
    return np.random.default_rng(seed).choice(classes, size=len(types), p=counts / counts.sum())[token_type]


def control_tasks(words, tags, split: dict, seeds: list) -> list[dict]:
    """One control task per seed (:func:`control_labels`, drawn in the order of ``seeds``): its labels per split."""
    return [
        {name: labels[index] for name, index in split.items()}
        for labels in (control_labels(words, tags, split["train"], seed) for seed in seeds)
    ]
