"""The elastic-net softmax probe: fitting (FISTA), accuracy, the choice of (C, l1_ratio) and per-layer probes."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

log = logging.getLogger(__name__)

POWER_ITERATIONS = 10


@dataclasses.dataclass
class LinearProbe:
    """A trained softmax probe with how it was fit."""

    classes: np.ndarray  # tag of each weight row
    weights: np.ndarray  # [classes, neurons]
    bias: np.ndarray
    C: float
    l1_ratio: float
    iterations: int
    objective: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes[np.argmax(X @ self.weights.T + self.bias, axis=1)]


def _largest_eigenvalue(X) -> float:
    """sigma_max(X)^2 estimated from below by power iteration on X^T X, from a fixed start (deterministic).

    0 where the iteration reaches the zero vector: X is all zeros (a dead neuron standardizes to a zero column),
    and dividing by that norm would give NaN, a step of NaN and a backtracking loop that never ends.
    """
    v = X.new_ones(X.shape[1]) / X.shape[1] ** 0.5
    for _ in range(POWER_ITERATIONS):
        v = X.T @ (X @ v)
        value = v.norm()
        if value == 0:
            return 0.0
        v = v / value
    return value.item()


def fit_probe(X: np.ndarray, y: np.ndarray, C: float, l1_ratio: float, max_iter: int, tol: float) -> LinearProbe:
    """Elastic-net softmax regression, scikit-learn's objective, solved by full-batch FISTA.

    scikit-learn minimises ``C * sum CE + l1_ratio * |W|_1 + (1 - l1_ratio) / 2 * ||W||^2`` (bias free);
    divided by ``C * n`` that is mean CE + ``l1 * |W|_1 + l2 / 2 * ||W||^2`` with ``l1 = l1_ratio / (C n)``
    and ``l2 = (1 - l1_ratio) / (C n)``, the form NeuroX's probe uses (NeuroX: non-squared L2, Adam).
    Why not those solvers: 10 epochs of Adam never set a weight to zero, and on 3000 words the top 50 neurons
    of such a probe predicted tags no better than 50 random ones; scikit-learn's saga took minutes per stage;
    and any fixed budget makes the neurons-per-tag counts depend on the budget. FISTA (proximal gradient with
    momentum, adaptive restart and a backtracking step that may also grow) stops when the objective gains
    less than ``tol`` (relative) over 10 iterations, in seconds, deterministically. ``X`` may be a column
    slice of a larger float32 array: it is used in place, never copied.
    """
    import torch
    import torch.nn.functional as F

    classes, targets = np.unique(y, return_inverse=True)
    X, targets = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(targets)
    onehot = F.one_hot(targets, len(classes)).float()
    l1, l2 = l1_ratio / (C * len(X)), (1 - l1_ratio) / (C * len(X))

    def proximal(Z, step):
        return torch.sign(Z) * torch.clamp(Z.abs() - step * l1, min=0) / (1 + step * l2)

    # The gradient of mean softmax CE is L-Lipschitz with L <= (sigma_max([X 1])^2) / 2n <= (sigma_max(X)^2 + n) / 2n.
    # ||X||_F >= sigma_max gives a step that always works, used as floor; power iteration a first step near
    # 1/L that backtracking shortens if needed. An exact sigma_max (SVD) would cost more than the fit, and a copy of X.
    min_step = 2 * len(X) / (torch.linalg.vector_norm(X).item() ** 2 + len(X))
    step = 2 * len(X) / (_largest_eigenvalue(X) + len(X))
    W, b = torch.zeros(X.shape[1], len(classes)), torch.zeros(len(classes))
    V, c, logits_W, logits_V = W, b, torch.zeros(len(X), len(classes)), torch.zeros(len(X), len(classes))
    momentum, objectives = 1.0, []
    for iteration in range(1, max_iter + 1):  # noqa: B007 (read after the loop: the iterations it took)
        loss = F.cross_entropy(logits_V, targets)
        residual = (torch.softmax(logits_V, dim=1) - onehot) / len(X)
        grad_W, grad_b = X.T @ residual, residual.sum(dim=0)
        step *= 1.5  # once most words are fit the curvature is far below the bound: try a longer step
        while True:
            W_next, b_next = proximal(V - step * grad_W, step), c - step * grad_b
            dW, db = W_next - V, b_next - c
            logits_next = X @ W_next + b_next
            loss_next = F.cross_entropy(logits_next, targets)
            linear = loss + (grad_W * dW).sum() + (grad_b * db).sum()
            if loss_next <= linear + (dW.square().sum() + db.square().sum()) / (2 * step) or step == min_step:
                break
            step = max(step / 2, min_step)
        if torch.sum((V - W_next) * (W_next - W)) > 0:  # momentum points uphill: restart it
            momentum = 1.0
        momentum_next = (1 + (1 + 4 * momentum**2) ** 0.5) / 2
        beta = (momentum - 1) / momentum_next
        V, c = W_next + beta * (W_next - W), b_next + beta * (b_next - b)
        logits_V = logits_next + beta * (logits_next - logits_W)  # linear in (W, b): saves one product with X
        W, b, logits_W, momentum = W_next, b_next, logits_next, momentum_next
        objectives.append(loss_next.item() + l1 * W.abs().sum().item() + l2 / 2 * W.square().sum().item())
        if len(objectives) > 10 and objectives[-11] - objectives[-1] <= tol * abs(objectives[-1]):
            break
    return LinearProbe(classes, W.T.numpy(), b.numpy(), C, l1_ratio, iteration, objectives[-1])


def accuracy(probe, X: np.ndarray, y: np.ndarray, zeroed=()) -> dict:
    """Overall and per-tag accuracy, optionally with the ``zeroed`` neurons set to 0.

    On standardized features 0 is the training mean, so zeroing removes what a neuron says about a word. For a
    linear probe that is the same as zeroing the neuron's weights, which copies no features.
    """
    weights = probe.weights.copy()
    weights[:, np.asarray(zeroed, dtype=int)] = 0
    correct = dataclasses.replace(probe, weights=weights).predict(X) == y
    return {
        "accuracy": float(correct.mean()),
        "per_tag": {str(tag): float(correct[y == tag].mean()) for tag in np.unique(y)},
    }


def select_probe(
    X: dict, y: dict, C_grid: list, l1_ratio_grid: list, regularization: dict | None, max_iter: int, tol: float
) -> tuple[LinearProbe, list[dict]]:
    """Fit one probe per (C, l1_ratio) of ``C_grid`` x ``l1_ratio_grid`` on train; keep, by the one-standard-error
    rule (Hastie, Tibshirani & Friedman 2009, section 7.10), the earliest grid point whose validation accuracy is
    within one binomial standard error of the best: list the strongest regularization (smallest C) first to prefer
    the sparser, cheaper probe. The grid's points differ by less than the validation split resolves (the default's
    reference: 0.830 / 0.835 / 0.836 for C 0.1 / 1 / 10, standard error 0.006), and the best of them moved from
    C 1 to C 10 between two runs with other splits, and with it every probe's cost by 40 % (docs/neurons.md).
    With a fixed ``regularization`` ({"C", "l1_ratio"}) the grid is that one point: the number of neurons a probe
    keeps moves far more with C than between models, so compared models share one C.
    """
    if regularization is not None:
        C_grid, l1_ratio_grid = [regularization["C"]], [regularization["l1_ratio"]]
    candidates, grid = [], []
    for C in C_grid:
        for l1_ratio in l1_ratio_grid:
            candidate = fit_probe(X["train"], y["train"], C, l1_ratio, max_iter, tol)
            score = accuracy(candidate, X["validation"], y["validation"])["accuracy"]
            candidates.append(candidate)
            grid.append(
                {
                    "C": C,
                    "l1_ratio": l1_ratio,
                    "validation_accuracy": score,
                    "nonzero_weights": float(np.mean(candidate.weights != 0)),
                    "iterations": candidate.iterations,
                    "objective": candidate.objective,
                }
            )
    chosen = candidates[
        within_one_standard_error([point["validation_accuracy"] for point in grid], len(y["validation"]))
    ]
    if len(C_grid) > 1 and max(C_grid) == chosen.C:
        log.warning("the largest C (weakest regularization) won on validation: extend C_grid upwards")
    return chosen, grid


def within_one_standard_error(scores: list[float], n: int) -> int:
    """The index of the first score within one binomial standard error (on ``n`` examples) of the best."""
    best = max(scores)
    tolerance = math.sqrt(best * (1 - best) / n)
    return next(index for index, score in enumerate(scores) if score >= best - tolerance)


def refit(chosen: LinearProbe, X: dict, y: dict, columns: slice, max_iter: int, tol: float) -> dict[str, float]:
    """Accuracy on every split of a probe with ``chosen``'s C and l1_ratio, trained on ``columns`` and labels ``y``.

    ``columns`` is a slice, so that the features are a view of ``X``, not a copy.
    """
    fitted = fit_probe(X["train"][:, columns], y["train"], chosen.C, chosen.l1_ratio, max_iter, tol)
    return {name: accuracy(fitted, X[name][:, columns], y[name])["accuracy"] for name in X}


def layer_accuracies(chosen: LinearProbe, X: dict, y: dict, hidden: int, max_iter: int, tol: float) -> dict:
    """A probe per layer (``chosen``'s C and l1_ratio); the best layer is chosen on validation, and its test
    accuracy is the report (the maximum of test accuracies would be biased upwards)."""
    layers = X["train"].shape[1] // hidden
    per_layer = [
        refit(chosen, X, y, slice(layer * hidden, (layer + 1) * hidden), max_iter, tol) for layer in range(layers)
    ]
    best = int(np.argmax([scores["validation"] for scores in per_layer]))  # ties: the lower layer
    return {"per_layer": per_layer, "best_layer": {"layer": best, "selected_on": "validation", **per_layer[best]}}
