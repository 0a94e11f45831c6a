"""Whether a trained model converged: the two checks every training record carries.

A model is *converged* when both hold (``LEVEL`` 0.05, one-sided):

* **above chance**: its accuracy on the validation split of the kept epoch is significantly above the
  majority-class rate (exact binomial test). An attack cannot flip a constant prediction, so a model at chance
  looks robust for a trivial reason, and its generalization says nothing about its training method.
* **not still improving**: the kept epoch is not one at which the model was still getting better by more than
  the noise. Where a later epoch ran and did not beat it, the model had stopped improving. Where the kept epoch is
  the last one run, its validation predictions are compared, example by example, with those of the epoch before
  (epoch 0: the start model): the exact McNemar test (the one-sided binomial test on the examples that changed
  from wrong to right against those that changed from right to wrong) says whether the last epoch's gain is
  more than the noise of two evaluations of one validation set. A paired test, because both epochs are
  evaluated on the same examples: a gain of 2 points is noise when 30 examples flip each way, and not when 6 flip
  and none flips back.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.05


def above_majority_p(correct: int, n: int, majority_rate: float) -> float:
    """One-sided exact binomial p of ``correct`` of ``n`` against the majority-class rate."""
    from scipy.stats import binomtest

    return float(binomtest(int(correct), int(n), majority_rate, alternative="greater").pvalue)


def improvement_p(before: np.ndarray, after: np.ndarray) -> float:
    """One-sided exact McNemar p that ``after`` (per-example correctness) is better than ``before``."""
    from scipy.stats import binomtest

    gained = int(np.sum(~before & after))
    lost = int(np.sum(before & ~after))
    if gained + lost == 0:
        return 1.0
    return float(binomtest(gained, gained + lost, 0.5, alternative="greater").pvalue)


def check(correct_by_epoch: list[np.ndarray], best_epoch: int, labels: np.ndarray) -> dict:
    """The convergence record of a training run: ``correct_by_epoch[e]`` is the validation correctness after epoch
    ``e`` (0: the start model, before training), ``best_epoch`` the kept one (>= 1), ``labels`` the validation
    labels."""
    correct = np.asarray(correct_by_epoch[best_epoch], dtype=bool)
    majority = float(np.bincount(labels).max() / len(labels))
    p_chance = above_majority_p(correct.sum(), len(correct), majority)
    last = len(correct_by_epoch) - 1
    if best_epoch < last:
        p_improving = None  # later epochs ran and did not beat it
    else:
        p_improving = improvement_p(np.asarray(correct_by_epoch[best_epoch - 1], bool), correct)
    above_chance = p_chance < LEVEL
    still_improving = p_improving is not None and p_improving < LEVEL
    reasons = []
    if not above_chance:
        reasons.append(f"validation accuracy {correct.mean():.3f} not above the majority rate {majority:.3f}")
    if still_improving:
        reasons.append(f"still improving at its last epoch {best_epoch} (McNemar p {p_improving:.3g})")
    return {
        "converged": not reasons,
        "reason": "; ".join(reasons),
        "majority_rate": majority,
        "p_above_majority": p_chance,
        "p_still_improving": p_improving,
        "level": LEVEL,
    }
