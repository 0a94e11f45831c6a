"""How specialized the neurons are: the metrics and their direction, the tags' top neurons and their overlap."""

from __future__ import annotations

import numpy as np

from .ranking import top_neurons

# The specialization metrics of a probe record, and which direction means "more specialized". The neuron table's
# columns carry these names (advlm.neurons.report).
SPECIALIZATION = {
    "minimal_share": "lower",  # share of all neurons the minimal subset needs to reach the shared target (refit mean)
    "selectivity": "higher",  # linguistic minus control-task test accuracy, all layers (Hewitt & Liang)
    "mean_jaccard": "lower",  # mean off-diagonal Jaccard overlap of the tags' top neurons
    "probeless_share": "lower",  # fewest neurons holding top_mass of the probe-free (probeless) score, as a share
}

# The causal test's metric (advlm.neurons.causal, in the record's classifier_ablation; fine-tuned models only) and
# which direction means "more of the out-of-domain accuracy rests on the top specialized neurons". Kept here, not in
# causal.py, so that the claims import no torch.
CAUSAL = {
    "ood_specific_drop": "higher",  # out-of-domain accuracy lost to the top neurons' ablation beyond as many random
}


def jaccard_matrix(sets: list[np.ndarray]) -> np.ndarray:
    """Pairwise |A & B| / |A | B| of neuron sets: how much the tags share their top neurons."""
    return np.array([[len(np.intersect1d(a, b)) / len(np.union1d(a, b)) for b in sets] for a in sets])


def tag_specialization(weights: np.ndarray, classes: list[str], hidden: int, top_mass: float) -> tuple[dict, list]:
    """Neurons each tag needs (its top neurons), where they are and how much the tags share them."""
    layers = weights.shape[1] // hidden
    top = top_neurons(weights, top_mass)
    union = np.unique(np.concatenate(top))
    jaccard = jaccard_matrix(top)
    return {
        "mass_share": top_mass,
        "overall": int(len(union)),
        "per_tag": {tag: int(len(t)) for tag, t in zip(classes, top)},
        "layer_distribution": np.bincount(union // hidden, minlength=layers).tolist(),
        "per_tag_layer": {tag: np.bincount(t // hidden, minlength=layers).tolist() for tag, t in zip(classes, top)},
        "jaccard": {
            "matrix": jaccard.round(4).tolist(),
            "mean_off_diagonal": float(jaccard[~np.eye(len(top), dtype=bool)].mean()),
        },
    }, top


def specialization_summary(values: dict, variances: dict) -> dict:
    """The :data:`SPECIALIZATION` metrics with the direction that means "more specialized", for the record, and
    where a metric is a mean over probe refits, the variance of that mean (``variance_of_mean``; NaN: one refit)."""
    return {
        name: {
            "value": float(values[name]),
            "more_specialized": direction,
            **({"variance_of_mean": float(variances[name])} if name in variances else {}),
        }
        for name, direction in SPECIALIZATION.items()
    }
