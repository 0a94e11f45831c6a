"""Embedding-space methods (pgd, freelb, lds, infobert): they perturb the word embeddings
``E = model.get_input_embeddings()(input_ids)``, before the position/type embeddings, LayerNorm and dropout that the
model adds to ``inputs_embeds`` (the perturbation geometry they share: ``geometry``). Reference code and defaults:
../shared/research/methods.md, sections 3-5.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

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
            loss, ascent = self.pass_backward(model, inputs, labels, embeds, delta)
            total += loss
            deltas.append(delta.detach())
            if step == self.steps - 1:
                break
            delta = self.perturbation.step(delta.detach(), ascent, mask)
            embeds = _word_embeddings(model, inputs)  # the backward freed the previous graph
        self.realised.add(deltas, embeds, mask)  # the update averages every pass's gradient
        return total

    def pass_backward(self, model, inputs: dict, labels: torch.Tensor, embeds: torch.Tensor, delta: torch.Tensor):
        """One pass on ``embeds + delta``: backpropagate its loss / steps into the parameters; return the loss and
        its gradient w.r.t. ``delta``, the direction of the next ascent step."""
        loss = F.cross_entropy(_logits(model, inputs, embeds + delta), labels) / self.steps
        loss.backward()
        return float(loss.detach()), delta.grad


class InfoNCE(torch.nn.Module):
    """The InfoNCE lower bound on I(x; y) of InfoBERT's anchored-feature regularizer, with a learned critic F on
    the concatenated pair: Linear(2d, 300), ReLU, Linear(300, 1), Softplus (AI-secure/InfoBERT MI_estimators.py
    ``InfoNCE``). For n pairs: mean_i F(x_i, y_i) - (mean_i logsumexp_j F(x_j, y_i) - log n)."""

    width = 300  # the reference's lower_size

    def __init__(self, x_dim: int, y_dim: int):
        super().__init__()
        self.critic = torch.nn.Sequential(
            torch.nn.Linear(x_dim + y_dim, self.width),
            torch.nn.ReLU(),
            torch.nn.Linear(self.width, 1),
            torch.nn.Softplus(),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(y)
        positive = self.critic(torch.cat([x, y], dim=-1)).float()
        pairs = torch.cat([x.unsqueeze(0).expand(n, -1, -1), y.unsqueeze(1).expand(-1, n, -1)], dim=-1)  # (x_j, y_i)
        scores = self.critic(pairs).float()  # [i, j, 1]
        return positive.mean() - (scores.logsumexp(dim=1).mean() - math.log(n))


@dataclasses.dataclass
class InfoBERT(FreeLB):
    """InfoBERT (Wang et al., ICLR 2021), the authors' code (AI-secure/InfoBERT ANLI/local_robust_trainer.py
    ``_adv_training_step``, MI estimator version 6; = TextDefender trainer/infobert.py): FreeLB's passes, each of
    whose loss is (CE + beta * IB + alpha * AF) / steps, with

    * IB, the information-bottleneck regularizer: the reference's CLUB upper bound (``CLUBv2``, version 3) on the
      embedding-layer features t of the batch's tokens (``hidden_states[0]``: word + position + type embeddings,
      LayerNorm, dropout; padding excluded), whose Gaussian q(t | x) has mean t and unit variance, so that the
      bound is half the mean squared distance of each token's feature to that of a token drawn uniformly (with
      replacement) from the batch: mean_i ||t_i - t_r(i)||^2 / 2;
    * AF, the anchored-feature regularizer: -I(local; global) by InfoNCE (:class:`InfoNCE`), between each text's
      local robust features, the embedding-layer features of its tokens whose gradient norm (of the pass's CE +
      beta * IB w.r.t. delta, padding excluded, [CLS] and [SEP] included) ranks in [ceil(n * cl), ceil(n * ch))
      of its n tokens in ascending order (neither the useless bottom ones nor the most vulnerable top ones), and
      its global feature, the last layer's [CLS] vector; the pairs are shuffled and split into chunks of a
      batch's size, AF the mean of the chunks' -InfoNCE.

    delta's ascent step follows the gradient of CE + beta * IB (AF's is not in it), as in the reference. The
    critic is trained with the model: the loop's optimizer (AdamW: the model's learning rate, schedule and weight
    decay) steps ``own_parameters``, outside the gradient clipping, as the reference's optimizer holds its
    mi_estimator; it is not part of the saved model.

    Where this differs from the reference:

    * the adversarial loop is this workflow's FreeLB with freelb's defaults (steps, step size, random start,
      epsilon, norm) instead of the reference's (adv-lr 0.04, init-mag 0.08, unbounded, 3 steps): the same
      realised perturbation size as the other embedding-space methods, the budget ramp (``set_budget_scale``;
      beta and alpha are not ramped, the reference's beta annealing is disabled) and new dropout masks in each
      pass (the reference reuses them, with attention dropout 0), so that InfoBERT differs from freelb by its two
      regularizers alone;
    * delta's gradient is taken with ``autograd.grad`` and the pass's whole loss backpropagated once, where the
      reference backpropagates CE + IB and then AF: the same gradients, less work;
    * the (local, global) pairs are shuffled by torch's global generator (seeded by the run), anew for each pass;
      the reference's sklearn shuffle uses a fixed random_state: the same order for every pass with as many pairs;
    * the chunks have as many pairs as the batch has texts; the reference's hold train_batch_size pairs, also
      in an epoch's smaller last batch;
    * a pass whose texts are too short to have a selected token has AF 0 (the reference would fail);
    * the returned loss is the whole objective; the reference logs CE alone.

    TextDefender builds its optimizer before its critic, which is therefore never trained (nor its gradient
    reset); here, as in the authors' code, it is.
    """

    name = "infobert"
    beta: float = 0.005
    alpha: float = 0.005
    cl: float = 0.5
    ch: float = 0.9

    def __post_init__(self):
        super().__post_init__()
        _require(
            self,
            beta=self.beta >= 0,
            alpha=self.alpha >= 0,
            cl=0 <= self.cl <= self.ch,
            ch=self.cl <= self.ch <= 1,
        )
        self.mi_estimator = None

    def own_parameters(self, model) -> list:
        if self.mi_estimator is None:  # made on first use: the loop asks before its optimizer, a test on backward
            hidden = model.config.hidden_size
            self.mi_estimator = InfoNCE(hidden, hidden).to(model.device)
        return list(self.mi_estimator.parameters())

    def pass_backward(self, model, inputs: dict, labels: torch.Tensor, embeds: torch.Tensor, delta: torch.Tensor):
        self.own_parameters(model)
        rest = {key: value for key, value in inputs.items() if key != "input_ids"}
        outputs = model(inputs_embeds=embeds + delta, output_hidden_states=True, **rest)
        tokens = inputs["attention_mask"].bool()
        first, last = outputs.hidden_states[0], outputs.hidden_states[-1]
        loss = F.cross_entropy(outputs.logits.float(), labels)
        if self.beta:
            loss = loss + self.beta * self.information_bottleneck(first, tokens)
        loss = loss / self.steps
        if self.alpha:
            (ascent,) = torch.autograd.grad(loss, delta, retain_graph=True)
            loss = loss + self.alpha * self.anchored_features(first, last, tokens, ascent, len(labels)) / self.steps
        loss.backward()
        return float(loss.detach()), ascent if self.alpha else delta.grad

    def information_bottleneck(self, first: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """IB: mean_i ||t_i - t_r(i)||^2 / 2 over the batch's tokens' embedding-layer features ``first[tokens]``."""
        features = first[tokens].float()
        partners = self.partners(len(features)).to(features.device)
        return (features - features[partners]).pow(2).sum(-1).mean() / 2

    def anchored_features(
        self, first: torch.Tensor, last: torch.Tensor, tokens: torch.Tensor, grad: torch.Tensor, chunk: int
    ) -> torch.Tensor:
        """AF: minus the mean InfoNCE, over chunks of ``chunk`` shuffled pairs, between the local robust features
        (selected by the per-token norm of ``grad``) and their text's last-layer [CLS] vector."""
        norms = grad.detach().float().norm(dim=-1)
        local, anchor = [], []
        for i in range(len(first)):
            positions = tokens[i].nonzero().flatten()
            n = len(positions)
            ranked = positions[norms[i, positions].argsort(stable=True)]
            chosen = ranked[math.ceil(n * self.cl) : math.ceil(n * self.ch)]
            local.append(first[i, chosen])
            anchor.append(last[i, 0].expand(len(chosen), -1))
        local, anchor = torch.cat(local).float(), torch.cat(anchor).float()
        if not len(local):
            return first.new_zeros((), dtype=torch.float)
        order = self.shuffle(len(local)).to(local.device)
        local, anchor = local[order], anchor[order]
        bounds = [
            self.mi_estimator(local[start : start + chunk], anchor[start : start + chunk])
            for start in range(0, len(local), chunk)
        ]
        return -torch.stack(bounds).mean()

    @staticmethod
    def partners(n: int) -> torch.Tensor:
        """The token each of n tokens is compared with in IB, uniform with replacement (CLUBv2's random_index)."""
        return torch.randint(n, (n,))

    @staticmethod
    def shuffle(n: int) -> torch.Tensor:
        """The order of the n (local, global) pairs before they are split into chunks."""
        return torch.randperm(n)


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
