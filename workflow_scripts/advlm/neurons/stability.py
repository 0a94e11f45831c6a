"""Probe refits: each on its own sentence split and train sample, so that the spread of a measure over refits is
the noise of the probe alone (the model is fixed). The top-k overlap between refits says how stable the ranking is,
the spread of the minimal share how much of a difference between models the probe's noise can make."""

from __future__ import annotations

import itertools

import numpy as np

from .features import split_by_sentence


def refit_split(sentence_ids, tags, hp: dict, refit: int) -> dict:
    """Refit ``refit``'s word indices per split: its own sentence split (seed ``[seed, refit]``) and a train sample
    of at most ``max_train_words_per_tag`` words per tag (seed ``[seed, refit, 1]``; rarer tags keep every word).

    The cap bounds the probe's cost, which grows with the train words, and keeps frequent tags (nouns,
    punctuation) from swamping the rare ones; validation and test keep every word, so that they resolve the target.
    """
    split = split_by_sentence(sentence_ids, [hp["seed"], refit], hp["test_share"], hp["validation_share"])
    rng = np.random.default_rng([hp["seed"], refit, 1])
    train_tags = np.asarray(tags)[split["train"]]
    kept = [
        rng.choice(members, min(len(members), hp["max_train_words_per_tag"]), replace=False)
        for members in (np.flatnonzero(train_tags == tag) for tag in np.unique(train_tags))
    ]
    return {**split, "train": np.sort(split["train"][np.concatenate(kept)])}


def top_k_overlap(orderings: list[np.ndarray], k: int) -> dict:
    """Mean and smallest share of the top-``k`` neurons two refits' rankings have in common, over all pairs, and the
    share two random rankings would have in common (k / neurons)."""
    k = min(k, len(orderings[0]))
    tops = [set(ordering[:k].tolist()) for ordering in orderings]
    pairs = [len(a & b) / k for a, b in itertools.combinations(tops, 2)]
    return {
        "k": k,
        "mean": float(np.mean(pairs)) if pairs else float("nan"),
        "min": float(np.min(pairs)) if pairs else float("nan"),
        "chance": k / len(orderings[0]),
    }


def consensus_ordering(orderings: list[np.ndarray]) -> np.ndarray:
    """Neurons ordered by their mean rank over the refits (ties by neuron index)."""
    ranks = np.zeros(len(orderings[0]))
    for ordering in orderings:
        ranks[ordering] += np.arange(len(ordering))
    return np.argsort(ranks, kind="stable")


def spread(values: list[float]) -> dict:
    """A measure over refits: each value, the mean (the model's measure), the sd over refits and the variance of
    the mean (sd^2 / refits), the measurement variance that the claims' interval adds per model."""
    values = np.asarray(values, dtype=float)
    sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return {
        "values": values.tolist(),
        "mean": float(values.mean()),
        "refit_sd": sd,
        "variance_of_mean": sd**2 / len(values) if len(values) > 1 else float("nan"),
    }
