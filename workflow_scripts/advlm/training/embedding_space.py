"""Embedding-space methods (pgd, freelb, lds): they perturb the word embeddings
``E = model.get_input_embeddings()(input_ids)``, before the position/type embeddings, LayerNorm and dropout that the
model adds to ``inputs_embeds`` (the perturbation geometry they share: ``geometry``). Reference code and defaults:
../shared/research/methods.md, sections 3-5.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
import torch.nn.functional as F

from .base import BaseMethod, _require
from .geometry import Perturbation, RealisedSize, _logits, _token_mask, _unit, _word_embeddings, kl_divergence


def _check_perturbation(method) -> Perturbation:
    _require(
        method,
        steps=method.steps >= 1,
        step_size=method.step_size > 0,
        init_mag=method.init_mag >= 0,
        epsilon=method.epsilon >= 0,
        norm=method.norm in ("l2", "linf"),
    )
    return Perturbation(method.norm, method.step_size, method.init_mag, method.epsilon)


@dataclasses.dataclass
class PGD(BaseMethod):
    """PGD-AT on word embeddings (Madry et al. 2018): ``steps`` projected, normalized gradient-ascent steps on
    delta (FreeLB/TextDefender), whose parameter gradients are never computed, then one backward of
    ``clean_weight * CE(E) + CE(E + delta_K)`` (A3T: clean + adversarial; TextDefender: clean_weight 0)."""

    name = "pgd"
    steps: int = 3
    step_size: float = 0.15
    init_mag: float = 0.05
    epsilon: float = 0.35
    norm: str = "l2"
    clean_weight: float = 1.0

    def __post_init__(self):
        self.full_perturbation = self.perturbation = _check_perturbation(self)
        self.realised = RealisedSize(self.norm)
        _require(self, clean_weight=self.clean_weight >= 0)

    def set_budget_scale(self, scale: float) -> None:
        self.perturbation = self.full_perturbation.scaled(scale)

    def attack(self, model, inputs: dict, labels: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """delta_K for detached word embeddings ``embeds``."""
        mask = _token_mask(inputs, embeds)
        delta = self.perturbation.init(embeds, mask)
        for _ in range(self.steps):
            delta.requires_grad_()
            loss = F.cross_entropy(_logits(model, inputs, embeds + delta), labels)
            (grad,) = torch.autograd.grad(loss, delta)  # gradient w.r.t. delta only: parameter grads stay untouched
            delta = self.perturbation.step(delta.detach(), grad, mask)
        return delta

    def backward(self, model, batch: dict) -> float:
        inputs, labels = batch["inputs"], batch["labels"]
        embeds = _word_embeddings(model, inputs)
        delta = self.attack(model, inputs, labels, embeds.detach())
        self.realised.add([delta], embeds, _token_mask(inputs, embeds))  # the update uses delta_K alone
        loss = F.cross_entropy(_logits(model, inputs, embeds + delta), labels)
        if self.clean_weight:
            loss = loss + self.clean_weight * F.cross_entropy(_logits(model, inputs, embeds), labels)
        loss.backward()
        return float(loss.detach())


@dataclasses.dataclass
class FreeLB(BaseMethod):
    """FreeLB (Zhu et al. 2020): ``steps`` passes on E + delta_t, each backpropagating CE/steps into the parameters
    (gradients accumulate over all passes, delta_0 included) and into delta, which then takes the PGD step."""

    name = "freelb"
    steps: int = 3
    step_size: float = 0.2
    init_mag: float = 0.05
    epsilon: float = 0.35
    norm: str = "l2"

    def __post_init__(self):
        self.full_perturbation = self.perturbation = _check_perturbation(self)
        self.realised = RealisedSize(self.norm)

    def set_budget_scale(self, scale: float) -> None:
        self.perturbation = self.full_perturbation.scaled(scale)

    def backward(self, model, batch: dict) -> float:
        inputs, labels = batch["inputs"], batch["labels"]
        embeds = _word_embeddings(model, inputs)
        mask = _token_mask(inputs, embeds)
        delta = self.perturbation.init(embeds.detach(), mask)
        total, deltas = 0.0, []
        for step in range(self.steps):
            delta.requires_grad_()
            loss = F.cross_entropy(_logits(model, inputs, embeds + delta), labels) / self.steps
            loss.backward()
            total += float(loss.detach())
            deltas.append(delta.detach())
            if step == self.steps - 1:
                break
            delta = self.perturbation.step(delta.detach(), delta.grad, mask)
            embeds = _word_embeddings(model, inputs)  # the backward freed the previous graph
        self.realised.add(deltas, embeds, mask)  # the update averages every pass's gradient
        return total


@dataclasses.dataclass
class LDS(BaseMethod):
    """LDS / virtual adversarial training (Miyato et al. 2016, 2017): CE(E) + weight * KL(p(E) || p(E + r)) with
    p(E) a constant and r = epsilon * g/||g||, g from ``power_iterations`` finite-difference power iterations
    (step xi) on KL(p(E) || p(E + d)) from a random d (tensorflow/models adversarial_text)."""

    name = "lds"
    epsilon: float = 0.35
    xi: float = 0.007
    power_iterations: int = 1
    weight: float = 1.0

    def __post_init__(self):
        _require(
            self,
            epsilon=self.epsilon > 0,
            xi=self.xi > 0,
            power_iterations=self.power_iterations >= 1,
            weight=self.weight >= 0,
        )
        self.realised = RealisedSize()
        self.scale = 1.0

    def set_budget_scale(self, scale: float) -> None:
        self.scale = scale  # r's norm; the finite-difference step xi only finds r's direction and stays

    def direction(self, model, inputs: dict, embeds: torch.Tensor) -> torch.Tensor:
        """The virtual adversarial perturbation r (L2 norm epsilon per example) for detached ``embeds``.

        Found with dropout off: the clean prediction and every power iteration are passes of one deterministic
        network, so d follows the dominant curvature of KL(p(E) || p(E + d)). With dropout on, each pass draws
        its own masks and the finite difference at xi = 0.007 measures mostly the gap between two draws (the
        direction had cosine 0.04 with the dropout-free one).
        """
        mask = _token_mask(inputs, embeds)
        d = torch.randn_like(embeds) * mask
        with _dropout_off(model):
            with torch.no_grad():
                clean_logits = _logits(model, inputs, embeds)
            for _ in range(self.power_iterations):
                d = (self.xi * _unit(d)).requires_grad_()
                kl = kl_divergence(clean_logits, _logits(model, inputs, embeds + d))
                (d,) = torch.autograd.grad(kl, d)
                d = d * mask
        return self.scale * self.epsilon * _unit(d)

    def backward(self, model, batch: dict) -> float:
        inputs, labels = batch["inputs"], batch["labels"]
        embeds = _word_embeddings(model, inputs)
        logits = _logits(model, inputs, embeds)
        r = self.direction(model, inputs, embeds.detach())
        self.realised.add([r], embeds, _token_mask(inputs, embeds))
        loss = F.cross_entropy(logits, labels) + self.weight * kl_divergence(logits, _logits(model, inputs, embeds + r))
        loss.backward()
        return float(loss.detach())


@contextlib.contextmanager
def _dropout_off(model):
    """The model in eval mode (no dropout) inside, in its former mode after."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)
