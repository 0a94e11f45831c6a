"""Neurons ranked by the probe's weight mass (Dalvi et al. 2019, NeuroX ``get_neuron_ordering``)."""

from __future__ import annotations

import numpy as np


def weight_mass(weights: np.ndarray) -> np.ndarray:
    """Each neuron's share of each class's total |w| ([classes, neurons]; rows sum to 1)."""
    magnitude = np.abs(weights)
    return magnitude / np.maximum(magnitude.sum(axis=1, keepdims=True), np.finfo(float).tiny)


def top_neurons(weights: np.ndarray, share: float) -> list[np.ndarray]:
    """Per class, the fewest highest-|w| neurons whose |w| reaches ``share`` of the class's mass (NeuroX)."""
    selected = []
    for magnitude in np.abs(weights):
        order = np.argsort(-magnitude, kind="stable")
        cumulative = np.cumsum(magnitude[order])
        # Reaching, not staying below: a class carried by one dominant neuron still gets that neuron.
        count = min(int(np.searchsorted(cumulative, share * cumulative[-1])) + 1, len(order))
        selected.append(order[:count])
    return selected


def neuron_ordering(weights: np.ndarray, stride: int) -> tuple[np.ndarray, list[int]]:
    """Global ranking as NeuroX ``get_neuron_ordering``: neurons in the order they join the union of top sets
    as the mass share sweeps 0..1 in ``stride`` steps; ``cutoffs[k]`` = ranked neurons after step ``k``.

    Within one step NeuroX's order is arbitrary; here it is by largest class mass share, for determinism.
    Neurons with zero weight for every class never join; they are appended last.
    """
    mass = weight_mass(weights).max(axis=0)
    ordering, seen, cutoffs = [], np.zeros(weights.shape[1], dtype=bool), []
    for step in range(stride + 1):
        new = np.setdiff1d(np.concatenate(top_neurons(weights, step / stride)), np.flatnonzero(seen))
        new = new[np.argsort(-mass[new], kind="stable")]
        ordering.extend(new)
        seen[new] = True
        cutoffs.append(len(ordering))
    ordering.extend(np.flatnonzero(~seen))
    return np.asarray(ordering, dtype=int), cutoffs


def ranking_table(
    weights: np.ndarray,
    classes: list[str],
    ordering: np.ndarray,
    top: list,
    hidden: int,
    probeless: np.ndarray,
    consensus: np.ndarray,
):
    """One row per neuron, best first: global rank, the tags it is a top neuron of, per-tag rank and mass share,
    the rank by mean rank over the probe refits (``consensus``) and the probe-free rank by ``probeless`` score.

    A tag's rank orders neurons by |w| for that tag (1 = largest; ties, e.g. zero weights, by neuron index).
    """
    import pandas as pd

    index = np.arange(weights.shape[1])
    rank = np.empty_like(index)
    rank[ordering] = index + 1
    consensus_rank = np.empty_like(index)
    consensus_rank[consensus] = index + 1
    top_tags = [[] for _ in index]
    for tag, members in zip(classes, top):
        for n in members:
            top_tags[n].append(tag)
    tag_rank = np.argsort(np.argsort(-np.abs(weights), axis=1, kind="stable"), axis=1) + 1
    table = pd.DataFrame(
        {
            "neuron": index,
            "layer": index // hidden,
            "unit": index % hidden,
            "rank": rank,
            "top_tags": [" ".join(tags) for tags in top_tags],
            **{f"rank_{tag}": r for tag, r in zip(classes, tag_rank)},
            **{f"mass_{tag}": m for tag, m in zip(classes, weight_mass(weights))},
            "consensus_rank": consensus_rank,
            "probeless_rank": np.argsort(np.argsort(-probeless, kind="stable"), kind="stable") + 1,
        }
    )
    return table.sort_values("rank", ignore_index=True)
