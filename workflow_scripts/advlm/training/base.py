"""The method interface, plain fine-tuning (``base``) and what every method shares.

A method implements ``backward(model, batch)``: it computes its loss for one batch and calls
``backward()`` itself (so that methods that accumulate gradients over several passes, such as FreeLB,
fit the same loop) and returns the loss value for logging. ``epoch_examples`` lets a method change
the training data of an epoch (input-space methods regenerate adversarial examples there).
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F


class BaseMethod:
    """Plain fine-tuning: cross-entropy on the clean batch."""

    name = "base"
    needs: tuple[str, ...] = ()  # run objects the constructor takes besides hyperparameters (see build_method)
    regenerates_examples = False  # epoch_examples does costly work (an attack) that a checkpoint should keep

    def __init__(self, **hyperparameters):
        if hyperparameters:
            raise ValueError(f"method {self.name!r} takes no hyperparameters, got {sorted(hyperparameters)}")

    def epoch_examples(self, epoch: int, model, examples: pd.DataFrame) -> pd.DataFrame:
        return examples

    def epoch_size(self, epoch: int, num_examples: int) -> int:
        """How many examples ``epoch_examples`` will give (at most), for the learning-rate schedule."""
        return num_examples

    def set_budget_scale(self, scale: float) -> None:
        """Scale the perturbation budget by ``scale`` in [0, 1] for the next steps (finetune.budget_ramp_epochs):
        methods with a continuous budget (the embedding-space ones) override it; discrete ones ignore it."""

    def own_parameters(self, model) -> list:
        """Trainable parameters of the method's own, made for ``model`` (InfoBERT's mutual-information critic): the
        training loop's optimizer steps them with the model's, and its checkpoints keep them. None by default."""
        return []

    def backward(self, model, batch: dict) -> float:
        loss = _cross_entropy(model(**batch["inputs"]).logits.float(), batch)
        loss.backward()
        return float(loss.detach())


def _cross_entropy(logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """Batch mean of the cross-entropy, each example's term times its ``weight`` where the batch has weights
    (TextAttack's Trainer: adversarial examples weighted by alpha, then the mean over the batch)."""
    losses = F.cross_entropy(logits, batch["labels"], reduction="none")
    if "weights" in batch:
        losses = losses * batch["weights"]
    return losses.mean()


def _require(method, **conditions: bool) -> None:
    bad = [key for key, ok in conditions.items() if not ok]
    if bad:
        raise ValueError(f"method {method.name!r}: invalid " + ", ".join(f"{k}={getattr(method, k)!r}" for k in bad))
