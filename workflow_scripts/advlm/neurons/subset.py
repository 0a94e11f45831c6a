"""The minimal neuron subset: the fewest top-ranked neurons whose retrained probe reaches one shared accuracy target.

The target is the same number for every model of a dataset (:func:`shared_target`), so that a model with a weaker
full probe does not pass with fewer neurons. The number of neurons is searched on a geometric grid from 1 upwards,
scanning the curve point by point (:func:`scan`): the first grid point that reaches the target is the answer
whatever the curve does elsewhere, so no monotonicity is assumed (a bisection would assume it).
"""

from __future__ import annotations

from .probe import LinearProbe, refit


def shared_target(setting: dict, reference_accuracy: float | None) -> dict:
    """The validation accuracy every model's minimal subset must reach (config ``neurons.minimal_target``).

    ``{"accuracy": a}``: that absolute accuracy. ``{"reference_share": s}``: ``s`` times the reference probe's
    (the start model without fine-tuning) validation accuracy, ``reference_accuracy`` (the mean over its refits).
    """
    if "accuracy" in setting:
        return {"accuracy": float(setting["accuracy"]), "rule": "absolute"}
    if reference_accuracy is None:
        raise ValueError("neurons.minimal_target.reference_share needs the reference probe's validation accuracy")
    return {
        "accuracy": float(setting["reference_share"] * reference_accuracy),
        "rule": f"{setting['reference_share']} x the reference probe's validation accuracy {reference_accuracy:.4f}",
    }


def size_grid(num_neurons: int, ratio: float) -> list[int]:
    """Subset sizes 1, then each the previous times ``ratio`` (at least one more), up to ``num_neurons`` included."""
    sizes = [1]
    while sizes[-1] < num_neurons:
        sizes.append(min(num_neurons, max(sizes[-1] + 1, int(round(sizes[-1] * ratio)))))
    return sizes


def scan(score, sizes: list[int], target: float) -> tuple[int | None, dict]:
    """The first size in ``sizes`` (ascending) whose ``score`` reaches ``target``, and the scores computed.

    Every size before the answer is scored, none after it: the answer does not depend on the curve beyond it.
    None where no size reaches the target.
    """
    curve = {}
    for n in sizes:
        curve[n] = score(n)
        if curve[n] >= target:
            return n, curve
    return None, curve


def minimal_subset(
    chosen: LinearProbe, ranked: dict, y: dict, full: dict, target: float, ratio: float, max_iter: int, tol: float
) -> dict:
    """The fewest top-ranked neurons (on the size grid) whose retrained probe reaches ``target`` on validation.

    ``ranked``: the features of every split with their columns in ranking order, so that the top-n neurons are
    the view ``[:, :n]``, never a copy. ``full``: the all-neuron probe's accuracy per split, the grid's last point
    (not refit). Where no size reaches the target the subset is all neurons and ``reached`` is false: the model
    needs every neuron and still falls short, the most a share can say. Nothing passed in is written to.
    """
    num_neurons = ranked["train"].shape[1]
    scores = {num_neurons: full}

    def validation_accuracy(n):
        if n not in scores:
            scores[n] = refit(chosen, ranked, y, slice(0, n), max_iter, tol)
        return scores[n]["validation"]

    n, _ = scan(validation_accuracy, size_grid(num_neurons, ratio), target)
    reached = n is not None
    n = n if reached else num_neurons
    return {
        "selected_on": "validation",
        "target": target,
        "reached": reached,
        "n": n,
        "share": n / num_neurons,
        **scores[n],
        "curve": [{"n": k, **scores[k]} for k in sorted(scores)],
    }
