"""The minimal neuron subset: the fewest top-ranked neurons whose retrained probe keeps the probe's accuracy."""

from __future__ import annotations

from .probe import LinearProbe, refit


def smallest_passing(score, limit: int, target: float) -> int:
    """Smallest n in 1..limit with ``score(n) >= target``: doubling n from 1, then bisection.

    ``limit`` is taken to pass without a call (it is the full probe). Assumes the score grows with n, as the
    accuracy of a probe on the top-n neurons roughly does; where it does not, the n found passes but a smaller
    one might too. Each n is scored at most once: bisection only tries n strictly between tried ones.
    """
    low, high = 0, 1
    while high < limit and score(high) < target:
        low, high = high, min(2 * high, limit)
    while high - low > 1:
        middle = (low + high) // 2
        if score(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def minimal_subset(
    chosen: LinearProbe, ranked: dict, y: dict, full: dict, accuracy_share: float, max_iter: int, tol: float
) -> dict:
    """The fewest top-ranked neurons whose retrained probe keeps ``accuracy_share`` of the ``full``
    probe's validation accuracy (chosen on validation, so that test accuracy stays an unbiased report).

    ``ranked``: the features of every split with their columns already in ranking order, so that the top-n
    neurons are the view ``[:, :n]``, never a copy. Nothing is written to them.
    """
    num_neurons = ranked["train"].shape[1]
    curve = {num_neurons: full}

    def validation_accuracy(n):
        curve[n] = refit(chosen, ranked, y, slice(0, n), max_iter, tol)
        return curve[n]["validation"]

    target = accuracy_share * full["validation"]
    n = smallest_passing(validation_accuracy, num_neurons, target)
    return {
        "accuracy_share": accuracy_share,
        "selected_on": "validation",
        "target": target,
        "n": n,
        "share": n / num_neurons,
        **curve[n],
        "curve": [{"n": k, **curve[k]} for k in sorted(curve)],
    }
