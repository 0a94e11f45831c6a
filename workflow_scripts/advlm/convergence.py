"""Whether a trained model converged: the checks every training record carries, each able to fail.

A model is *converged* when all three hold (``LEVEL`` 0.05, one-sided):

* **above chance**: its validation accuracy at the kept epoch is significantly above the majority-class rate
  (exact binomial test). An attack cannot flip a constant prediction, so a model at chance looks robust for a
  trivial reason, and its generalization says nothing about its training method.
* **stopped improving** (an equivalence test, on every model, whichever epoch was kept): the run's mean gain in
  validation accuracy per epoch over its last ``WINDOW`` epochs, paired example by example (every epoch sees the
  same validation examples), has a one-sided upper confidence bound below ``GAIN_MARGIN``. The check must *show*
  the plateau: a small but uncertain gain fails too. The interval is the paired t interval of the per-example
  differences (scipy's ``ttest_rel``), the Wald interval of a paired difference of proportions; a window of two
  epochs halves the noise of a one-epoch difference per epoch, so that one noisy epoch neither ends nor fails a run.
* **training loss levelling off**: the mean training loss fell less in the last epoch than in the one before, or
  by at most ``LOSS_FLAT`` (nearly flat, or rising). A loss still falling at an undiminished rate means the optimizer is
  still moving the model. Not a threshold on the loss itself: fine-tuned on a few hundred examples, a model's clean
  training loss keeps falling toward 0 as it memorises them while its validation accuracy is flat (measured,
  docs/protocol.md). With a constant learning rate (training.loop) neither this nor the gain can be an artifact of
  a schedule that decays to zero at the cap.

The margins are set from measured learning curves (docs/protocol.md): a run cut one epoch short of its rising curve
fails, a run at its plateau passes.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.05
WINDOW = 2  # epochs over which the gain per epoch is measured
GAIN_MARGIN = 0.03  # validation accuracy per epoch ruled out at the run's end (300 examples: SE of the gain ~0.01)
# nats: a smaller fall of the training loss in the last epoch is a plateau whatever came before. Measured: `base`
# memorising its last examples falls 0.04-0.06 an epoch near a loss of 0 (0.077 -> 0.014); runs still learning fell
# 0.2-0.44 an epoch (docs/protocol.md)
LOSS_FLAT = 0.1


def above_majority_p(correct: int, n: int, majority_rate: float) -> float:
    """One-sided exact binomial p of ``correct`` of ``n`` against the majority-class rate."""
    from scipy.stats import binomtest

    return float(binomtest(int(correct), int(n), majority_rate, alternative="greater").pvalue)


def gain_per_epoch(before: np.ndarray, after: np.ndarray, epochs: int, level: float = LEVEL) -> tuple[float, float]:
    """The mean gain in accuracy per epoch from ``before`` to ``after`` (per-example correctness on the same examples,
    ``epochs`` apart) and its one-sided upper ``1 - level`` confidence bound (paired t interval). No example
    changed: the gain is exactly 0."""
    from scipy.stats import ttest_rel

    before, after = np.asarray(before, float), np.asarray(after, float)
    gain = float(np.mean(after - before)) / epochs
    if np.all(after == before):
        return gain, gain
    return gain, float(ttest_rel(after, before).confidence_interval(1 - 2 * level).high) / epochs


def loss_levelling(losses: list[float]) -> str | None:
    """Why the training loss is not levelling off (None where it is): it needs the last three epochs' losses."""
    if len(losses) < 3:
        return f"{len(losses)} epoch(s): too few to show the training loss levelling off"
    before, last = losses[-3] - losses[-2], losses[-2] - losses[-1]
    if last <= LOSS_FLAT or last < before:
        return None
    return (
        f"training loss still falling at an undiminished rate ({-last:+.3f} in the last epoch, {-before:+.3f} before)"
    )


def check(correct_by_epoch: list[np.ndarray], kept_epoch: int, labels: np.ndarray, losses: list[float]) -> dict:
    """The convergence record of a training run: ``correct_by_epoch[e]`` is the validation correctness after epoch
    ``e`` (0: the start model, before training), ``kept_epoch`` the kept one (>= 1), ``labels`` the validation
    labels, ``losses[e - 1]`` the mean training loss of epoch ``e``."""
    correct = np.asarray(correct_by_epoch[kept_epoch], dtype=bool)
    majority = float(np.bincount(labels).max() / len(labels))
    p_chance = above_majority_p(correct.sum(), len(correct), majority)
    last = len(correct_by_epoch) - 1
    window = min(WINDOW, last)
    gain, gain_upper = gain_per_epoch(correct_by_epoch[last - window], correct_by_epoch[last], window)
    reasons = []
    if p_chance >= LEVEL:
        reasons.append(f"validation accuracy {correct.mean():.3f} not above the majority rate {majority:.3f}")
    if gain_upper >= GAIN_MARGIN:
        reasons.append(
            f"not shown to have stopped improving: epochs {last - window}-{last} gained {gain:+.3f} per epoch "
            f"(upper {1 - LEVEL:.0%} bound {gain_upper:+.3f} >= margin {GAIN_MARGIN})"
        )
    loss_reason = loss_levelling(losses)
    reasons += [loss_reason] if loss_reason else []
    return {
        "converged": not reasons,
        "reason": "; ".join(reasons),
        "majority_rate": majority,
        "p_above_majority": p_chance,
        "gain_window": window,
        "gain_per_epoch": gain,
        "gain_upper": gain_upper,
        "gain_margin": GAIN_MARGIN,
        "loss_levelling": loss_reason is None,
        "level": LEVEL,
    }
