"""Input-space methods (a2t, advaug): they add adversarial examples to an epoch's data in ``epoch_examples``, with a
per-example loss weight. Reference code and defaults: ../shared/research/methods.md, sections 3-5.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .base import BaseMethod, _require

if TYPE_CHECKING:
    from ..attacks.resources import AttackResources


def _with_adversarial(examples: pd.DataFrame, adversarial: pd.DataFrame, weight: float) -> pd.DataFrame:
    """The clean examples (weight 1) followed by the perturbed texts of successful attacks (weight ``weight``)."""
    successes = adversarial[adversarial["outcome"] == "success"]
    added = pd.DataFrame(
        {
            "id": successes["id"].astype(str) + "-adv",
            "text": successes["perturbed_text"],
            "label": successes["label"].astype(int),
            "weight": float(weight),
        }
    )
    frame = pd.concat([examples.assign(weight=1.0), added], ignore_index=True)
    frame.attrs["adversarial"] = {"attacked": len(adversarial), "added": len(added)}
    return frame


@dataclasses.dataclass(frozen=True)
class A2TContext:
    """What the A2T method's attack needs besides its hyperparameters: where its offline resources are
    (``advlm.attacks.resources.AttackResources``), the a2t attack's options (attack.options.a2t) and the texts
    per model query batch (attack.batch_size)."""

    resources: AttackResources
    options: dict
    batch_size: int


@dataclasses.dataclass
class A2T(BaseMethod):
    """A2T (Yoo & Qi 2021; TextAttack's Trainer): ``clean_epochs`` epochs on the clean set, then at the start of
    every later epoch the current model (in eval mode) is attacked with the A2T attack (attack.options.a2t),
    each attack capped at ``query_budget`` queries, on shuffled training examples until ``share`` of the training
    set has a successful adversarial example; that epoch trains on the clean set plus those examples, whose
    cross-entropy is weighted by ``weight``."""

    name = "a2t"
    needs = ("tokenizer", "max_length", "seed", "attack_context")
    regenerates_examples = True
    clean_epochs: int = 0
    share: float = 0.2
    query_budget: int = 200
    weight: float = 1.0
    tokenizer: object = None
    max_length: int = 0
    seed: int = 0
    attack_context: A2TContext | None = None

    def __post_init__(self):
        _require(
            self,
            clean_epochs=self.clean_epochs >= 0,
            share=0 < self.share <= 1,
            query_budget=self.query_budget >= 1,
            weight=self.weight >= 0,
        )

    def epoch_examples(self, epoch: int, model, examples: pd.DataFrame) -> pd.DataFrame:
        if epoch < self.clean_epochs:
            return examples
        adversarial = self.attack(model, examples, seed=self.seed * 1000 + epoch)
        return _with_adversarial(examples, adversarial, self.weight)

    def epoch_size(self, epoch: int, num_examples: int) -> int:
        return num_examples + (self.wanted(num_examples) if epoch >= self.clean_epochs else 0)

    def wanted(self, num_examples: int) -> int:
        """Successful adversarial examples sought per adversarial epoch."""
        return round(self.share * num_examples)

    def attack(self, model, examples: pd.DataFrame, seed: int) -> pd.DataFrame:
        """Per-example attack results (``attacks.running.RESULT_COLUMNS``) against ``model`` as it is now: a new
        wrapper and attack each time, so no query result is cached from earlier weights."""
        from ..attacks import running

        context = self.attack_context
        wrapper = running.make_wrapper(
            model, self.tokenizer, self.max_length, context.batch_size, context.resources.root
        )  # puts the model in eval mode
        from ..attacks.recipes import build_attack  # imports textattack: after make_wrapper's offline set-up

        params = {"query_budget": self.query_budget, "batch_size": context.batch_size, "options": context.options}
        attack = build_attack("a2t", wrapper, params, context.resources)
        with _kept_random_state():  # the attack reseeds per example; training's dropout stream goes on unchanged
            return running.attack_until(attack, examples, self.wanted(len(examples)), seed)


@dataclasses.dataclass
class AdvAug(BaseMethod):
    """Offline adversarial augmentation: the rule ``attack_train`` attacked the training set once, in a seeded
    order until ``share`` of it had a successful adversarial example (as a2t does every epoch), with ``attack``
    against the trained ``base`` model of the same pre-training variant and seed; fine-tuning starts afresh on the
    clean set plus those examples, the same ones every epoch, weighted by ``weight``. ``attack``, ``share`` and
    ``query_budget`` are read by that rule."""

    name = "advaug"
    needs = ("adversarial_examples",)
    attack: str = "a2t"
    share: float = 1.0
    query_budget: int = 200
    weight: float = 1.0
    adversarial_examples: str | None = None  # the attack_train rule's per-example CSV

    def __post_init__(self):
        _require(self, share=0 < self.share <= 1, query_budget=self.query_budget >= 1, weight=self.weight >= 0)
        self.adversarial = pd.read_csv(self.adversarial_examples, keep_default_na=False)

    def epoch_examples(self, epoch: int, model, examples: pd.DataFrame) -> pd.DataFrame:
        return _with_adversarial(examples, self.adversarial, self.weight)

    def epoch_size(self, epoch: int, num_examples: int) -> int:
        return num_examples + int((self.adversarial["outcome"] == "success").sum())


@contextlib.contextmanager
def _kept_random_state():
    """Restores Python's, NumPy's and torch's global random state on exit."""
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])
