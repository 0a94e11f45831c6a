"""Fine-tuning: one training loop; each method is a small class holding its own math.

A method implements ``backward(model, batch)``: it computes its loss for one batch and calls
``backward()`` itself (so that methods that accumulate gradients over several passes, such as FreeLB,
fit the same loop) and returns the loss value for logging. ``epoch_examples`` lets a method change
the training data of an epoch (input-space methods regenerate adversarial examples there).

A method is built from its hyperparameters (the keyword arguments of its class; their defaults equal
those of ``finetune.method_params`` in schemas/config.schema.yaml, which tests/test_methods.py checks)
plus the run objects of the training loop it names in ``needs`` (``tokenizer``, ``max_length``,
``device``, ``seed``), e.g. an input-space method that attacks the model through the tokenizer.

Input-space methods (a2t, advaug) add adversarial examples to an epoch's data in ``epoch_examples``, with a
per-example loss weight. Embedding-space methods (pgd, freelb, lds) perturb the word embeddings
``E = model.get_input_embeddings()(input_ids)``, before the position/type embeddings, LayerNorm and
dropout that the model adds to ``inputs_embeds``. Padding positions are never perturbed, and the norm
of a perturbation is taken per example over its whole [T, d] slice (FreeLB, TextDefender, Miyato et
al.). Reference code and defaults: ../shared/research/methods.md, sections 3-5.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import get_linear_schedule_with_warmup

from . import artifacts, convergence, timing
from .checkpoint import Checkpoints, fingerprint, restore
from .evaluation import classification_metrics
from .models import adamw, autocast, encode, load_classifier, load_tokenizer, predict_proba, token_lengths
from .runtime import provenance, seed_everything

if TYPE_CHECKING:
    from .attacks.resources import AttackResources

log = logging.getLogger(__name__)


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


# --- embedding-space methods ---------------------------------------------------------------------------


def _word_embeddings(model, inputs: dict) -> torch.Tensor:
    return model.get_input_embeddings()(inputs["input_ids"])


def _logits(model, inputs: dict, embeds: torch.Tensor) -> torch.Tensor:
    """Float32 logits of the model fed word embeddings ``embeds`` in place of ``inputs['input_ids']``."""
    rest = {key: value for key, value in inputs.items() if key != "input_ids"}
    return model(inputs_embeds=embeds, **rest).logits.float()


def _token_mask(inputs: dict, embeds: torch.Tensor) -> torch.Tensor:
    """[B, T, 1]: 1 on tokens, 0 on padding."""
    return inputs["attention_mask"].to(embeds.dtype).unsqueeze(-1)


def _norm(x: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example L2 or L-infinity norm over all but the batch dimension, shaped to broadcast against ``x``."""
    flat = x.flatten(1).float()
    value = flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)
    return value.view(-1, *[1] * (x.dim() - 1))


def _unit(x: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """``x / ||x||`` per example (0 where x is 0); x is first divided by max|x| so that tiny gradients do not
    underflow when squared (Miyato et al.'s ``_scale_l2``)."""
    x = x / _norm(x, "linf").clamp_min(1e-30)
    return x / _norm(x, norm).clamp_min(1e-12)


def kl_divergence(clean_logits: torch.Tensor, perturbed_logits: torch.Tensor) -> torch.Tensor:
    """Batch mean of KL(p_clean || p_perturbed), clean distribution first and a constant (stop-gradient), as in
    Miyato et al.'s ``_kl_divergence_with_logits``: no gradient flows into ``clean_logits``."""
    clean = F.log_softmax(clean_logits.detach().float(), dim=-1)
    perturbed = F.log_softmax(perturbed_logits.float(), dim=-1)
    return (clean.exp() * (clean - perturbed)).sum(-1).mean()


@dataclasses.dataclass(frozen=True)
class Perturbation:
    """The perturbation set and ascent step of PGD and FreeLB: TextDefender's ``delta_initial`` and
    ``delta_update`` (= zhuchen03/FreeLB). ``epsilon`` 0 means unbounded."""

    norm: str
    step_size: float
    init_mag: float
    epsilon: float

    def init(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Random start: L2 U(-1,1)*init_mag/sqrt(tokens*d) per example, L-inf U(-init_mag, init_mag); 0 on padding."""
        if self.init_mag <= 0:
            return torch.zeros_like(embeds)
        noise = torch.empty_like(embeds).uniform_(-1, 1) * mask
        if self.norm == "l2":
            dims = mask.sum(dim=(1, 2), keepdim=True).clamp_min(1) * embeds.size(-1)
            return self.project(noise * (self.init_mag / dims.sqrt()))
        return self.project(noise * self.init_mag)

    def step(self, delta: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """delta + step_size * grad / ||grad|| (norm of the configured kind), projected onto the epsilon-ball."""
        return self.project(delta + self.step_size * _unit(grad * mask, self.norm)) * mask

    def scaled(self, scale: float) -> Perturbation:
        """The same ball and step, every size times ``scale`` (the budget ramp); epsilon 0 stays unbounded."""
        return dataclasses.replace(
            self, step_size=self.step_size * scale, init_mag=self.init_mag * scale, epsilon=self.epsilon * scale
        )

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        if self.epsilon <= 0:
            return delta
        if self.norm == "l2":
            return delta * (self.epsilon / _norm(delta, "l2").clamp_min(1e-12)).clamp(max=1.0)
        return delta.clamp(-self.epsilon, self.epsilon)


class RealisedSize:
    """The perturbations a method's update used, per example, in the norm its budget bounds (L2 or L-infinity):
    absolute, and relative to the same norm of the word-embedding sequence it perturbs (padding excluded). A method
    whose update averages several passes (FreeLB) adds every pass's delta: each example counts with its mean and
    its largest over the passes. Budgets compare across methods only as realised sizes: an epsilon that the ascent
    never reaches does nothing."""

    def __init__(self, norm: str = "l2"):
        self.norm = norm
        self.sizes, self.largest, self.relative, self.relative_largest = [], [], [], []
        self.passes = 0

    def add(self, deltas: list[torch.Tensor], embeds: torch.Tensor, mask: torch.Tensor) -> None:
        """One step's perturbations: the delta of each pass whose loss the update uses."""
        with torch.no_grad():
            sizes = torch.stack([_norm(delta * mask, self.norm).flatten() for delta in deltas])  # passes x examples
            text = _norm(embeds.detach() * mask, self.norm).flatten().clamp_min(1e-12)
            for store, values in (
                (self.sizes, sizes.mean(0)),
                (self.largest, sizes.amax(0)),
                (self.relative, (sizes / text).mean(0)),
                (self.relative_largest, (sizes / text).amax(0)),
            ):
                store.append(values.cpu())
            self.passes = len(deltas)

    def summary(self, epsilon: float | None = None) -> dict | None:
        """Since the last summary (then forgotten): the norm, passes per step, the mean over examples of each one's
        mean over passes, the largest over examples and passes (absolute and relative), and with ``epsilon`` the
        share of examples whose largest pass reached the bound (projection binding)."""
        if not self.sizes:
            return None
        sizes, largest = torch.cat(self.sizes), torch.cat(self.largest)
        relative, relative_largest = torch.cat(self.relative), torch.cat(self.relative_largest)
        self.sizes, self.largest, self.relative, self.relative_largest = [], [], [], []
        out = {
            "norm": self.norm,
            "passes": self.passes,
            "examples": len(sizes),
            "mean": float(sizes.mean()),
            "max": float(largest.max()),
            "relative_mean": float(relative.mean()),
            "relative_max": float(relative_largest.max()),
        }
        if epsilon:
            out["at_bound"] = float((largest >= 0.999 * epsilon).float().mean())
        return out


def realised_size(method) -> dict | None:
    """The epoch's realised perturbation sizes of an embedding-space method (None for the others). After a
    resume inside an epoch they cover the steps since the resume."""
    realised = getattr(method, "realised", None)
    return realised.summary(getattr(method, "epsilon", None)) if realised else None


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


# --- input-space methods ---------------------------------------------------------------------------------


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
        from .attacks import running

        context = self.attack_context
        wrapper = running.make_wrapper(
            model, self.tokenizer, self.max_length, context.batch_size, context.resources.root
        )  # puts the model in eval mode
        from .attacks.recipes import build_attack  # imports textattack: after make_wrapper's offline set-up

        params = {"query_budget": self.query_budget, "batch_size": context.batch_size, "options": context.options}
        attack = build_attack("a2t", wrapper, params, context.resources)
        with _kept_random_state():  # the attack reseeds per example; training's dropout stream goes on unchanged
            return running.attack_until(attack, examples, self.wanted(len(examples)), seed)


@dataclasses.dataclass
class AdvAug(BaseMethod):
    """Offline adversarial augmentation: the rule ``attack_train`` attacked ``share`` of the training set (a
    seeded sample) once with ``attack`` against the trained ``base`` model of the same pre-training variant
    and seed; fine-tuning starts afresh on the clean set plus the successful adversarial examples, weighted
    by ``weight``. ``attack``, ``share`` and ``query_budget`` are read by that rule."""

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
def _dropout_off(model):
    """The model in eval mode (no dropout) inside, in its former mode after."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


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


METHODS = {method.name: method for method in (BaseMethod, AdvAug, A2T, PGD, FreeLB, LDS)}


def method_defaults(name: str) -> dict:
    """The hyperparameters of method ``name`` with their defaults."""
    method = METHODS[name]
    if not dataclasses.is_dataclass(method):
        return {}
    return {field.name: field.default for field in dataclasses.fields(method) if field.name not in method.needs}


def method_hyperparameters(method) -> dict:
    """The effective hyperparameters of a built method (defaults filled in)."""
    return {key: getattr(method, key) for key in method_defaults(method.name)}


def build_method(name: str, hyperparameters: dict, **context):
    """Method ``name`` with ``hyperparameters`` (absent ones take their defaults) and the run objects it
    names in ``needs``, taken from ``context`` (the training loop passes tokenizer, max_length, device, seed)."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; known: {sorted(METHODS)}")
    method = METHODS[name]
    known = method_defaults(name)
    unknown = sorted(set(hyperparameters) - set(known))
    if known and unknown:
        raise ValueError(f"method {name!r} has no hyperparameter {unknown}; known: {sorted(known)}")
    missing = [key for key in method.needs if key not in context]
    if missing:
        raise ValueError(f"method {name!r} needs {missing} to be built")
    return method(**hyperparameters, **{key: context[key] for key in method.needs})


# Batches are drawn from groups of this many batches sorted by length (as transformers' group_by_length).
LENGTH_GROUP_BATCHES = 16


def length_grouped(order: list[int], lengths, batch_size: int, generator: torch.Generator) -> list[int]:
    """``order`` rearranged so that each batch of ``batch_size`` holds texts of similar length: padding to the
    longest text of a batch then wastes little (on Rotten Tomatoes at length 64, a third less time per step).
    Consecutive groups of ``LENGTH_GROUP_BATCHES`` batches of the random order are sorted by length and cut into
    batches, and the full batches are shuffled, so each epoch still sees a fresh random set of batches, in random
    order; a short last batch stays last, so that the batches are the consecutive slices of the result."""
    group = batch_size * LENGTH_GROUP_BATCHES
    batches = []
    for start in range(0, len(order), group):
        members = sorted(order[start : start + group], key=lambda index: lengths[index])
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    short = [batches.pop()] if batches and len(batches[-1]) < batch_size else []
    shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()] + short
    return [index for batch in shuffled for index in batch]


def _batch(examples: pd.DataFrame, indices: list[int], tokenizer, max_length: int, device) -> dict:
    batch = {
        "inputs": encode(tokenizer, examples["text"].iloc[indices].tolist(), max_length, device),
        "labels": torch.as_tensor(examples["label"].to_numpy()[indices], device=device),
    }
    if "weight" in examples:
        batch["weights"] = torch.as_tensor(examples["weight"].to_numpy(np.float32)[indices], device=device)
    return batch


def _stops_early(run: dict, hp: dict) -> bool:
    """Early stopping: ``patience`` epochs have passed since the best validation accuracy."""
    patience = hp.get("patience", 0)
    return patience > 0 and len(run["history"]) - run["best"]["epoch"] >= patience


class PassCounter:
    """Counts the model's forward passes and the backward passes through it (a forward whose output is in an
    autograd graph: every method here backpropagates each such pass once), per named context: ``step`` (a
    method's training step) and ``examples`` (an input-space method's attack on the training set). Passes outside
    a context (validation) are not counted. The counts are a training record's equal-footing figures."""

    def __init__(self, model, counts: dict):
        self.counts, self.context = counts, None
        self.handle = model.register_forward_hook(self._count)

    @staticmethod
    def empty() -> dict:
        return {context: {"forward": 0, "backward": 0} for context in ("step", "examples")}

    @staticmethod
    def per_step(counts: dict, steps: int) -> dict:
        return {kind: counts["step"][kind] / steps if steps else 0.0 for kind in ("forward", "backward")}

    def _count(self, module, args, output) -> None:
        if self.context is not None:
            self.counts[self.context]["forward"] += 1
            self.counts[self.context]["backward"] += int(output[0].requires_grad)

    @contextlib.contextmanager
    def counting(self, context: str):
        self.context = context
        try:
            yield
        finally:
            self.context = None

    def remove(self) -> None:
        self.handle.remove()


def finetune(
    model_source: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    out_dir: str | Path,
    hp: dict,
    method_name: str,
    method_params: dict,
    seed: int,
    num_labels: int,
    device,
    method_context: dict | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
) -> dict:
    """Fine-tune ``model_source`` with one method; keep the checkpoint with the best validation accuracy.

    ``hp``: the finetune section's training keys. ``epochs`` is the most epochs run; with ``patience`` > 0 the
    run stops after ``patience`` epochs without a better validation accuracy (early stopping). With
    ``budget_ramp_epochs`` > 0 the method's perturbation budget rises linearly from 0 to its value over that many
    epochs' steps (``set_budget_scale``). The start model is evaluated on the validation split first (epoch 0), so
    that the convergence check (advlm.convergence) can compare the last epoch with the one before.

    ``method_context``: the run objects input-space methods need beyond the loop's own (``attack_context`` of
    a2t, ``adversarial_examples`` of advaug; see their ``needs``).

    ``checkpoint_dir``: where the run saves its state at the end of every epoch, after an a2t epoch's attack
    and every ``checkpoint_every`` steps (advlm.checkpoint), and resumes from when it finds one.

    Writes ``out_dir/model`` (``save_pretrained`` with the tokenizer) and ``out_dir/train_log.json``.
    """
    seed_everything(seed)
    out_dir = Path(out_dir)
    tokenizer = load_tokenizer(model_source)
    model = load_classifier(model_source, num_labels).to(device)
    timing.watch(model)
    method = build_method(
        method_name,
        method_params,
        tokenizer=tokenizer,
        max_length=hp["max_length"],
        device=device,
        seed=seed,
        **(method_context or {}),
    )
    method_params = method_hyperparameters(method)  # recorded with the defaults filled in
    optimizer = adamw(model.parameters(), hp["lr"], hp["weight_decay"])
    total_steps = sum(-(-method.epoch_size(epoch, len(train)) // hp["batch_size"]) for epoch in range(hp["epochs"]))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp["warmup_ratio"] * total_steps), total_steps)
    generator = torch.Generator().manual_seed(seed)
    checkpoints = checkpoint_dir and Checkpoints(
        checkpoint_dir,
        checkpoint_every,
        fingerprint(
            str(model_source),
            hp,
            method_name,
            method_params,
            seed,
            num_labels,
            getattr(method, "adversarial", None),
            {k: v for k, v in (method_context or {}).items() if k != "adversarial_examples"},
            train,
            validation,
            model.state_dict(),
        ),
    )

    # Everything the rest of the run depends on besides model, optimizer, scheduler and random states: the
    # epoch, its examples (a2t: with this epoch's adversarial ones), their order and how far through it we are.
    run = {
        "epoch": 0,
        "step": 0,
        "examples": None,
        "order": None,
        "position": 0,
        "losses": [],
        "history": [],
        "best": None,
        "best_state": None,
        "seconds": 0.0,
        "correct": [],  # validation correctness per epoch, epoch 0 (the start model) first: the convergence check
        "passes": PassCounter.empty(),
    }
    resumed = checkpoints and checkpoints.load()
    if resumed:
        restore(resumed, model, optimizer, scheduler, generator)
        run = resumed["run"]
        if run["best_state"] is None and run["best"] is not None:  # saved when the model was the best one
            run["best_state"] = copy.deepcopy(model.state_dict())

    def save(where: str) -> None:
        best_is_model = run["best"] is not None and run["best"] is run["history"][-1] and run["position"] == 0
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "run": run
            | {"seconds": time.perf_counter() - started, "best_state": None if best_is_model else run["best_state"]},
        }
        checkpoints.save(
            state, {"where": where, "epoch": run["epoch"] + 1, "step": run["step"], "position": run["position"]}
        )

    labels = validation["label"].to_numpy()

    def validate() -> dict:
        probabilities = predict_proba(
            model, tokenizer, validation["text"].tolist(), hp["eval_batch_size"], hp["max_length"], device
        ).numpy()
        run["correct"].append((probabilities.argmax(axis=1) == labels).tolist())
        return classification_metrics(probabilities, labels)

    started = time.perf_counter() - run["seconds"]
    if not run["correct"]:
        run["start_validation"] = validate()
    ramp_steps = hp.get("budget_ramp_epochs", 0) * -(-len(train) // hp["batch_size"])
    passes = PassCounter(model, run["passes"])
    for epoch in range(run["epoch"], hp["epochs"]):
        if run["examples"] is None:  # a new epoch; a resumed one has its examples and order
            with passes.counting("examples"):
                examples = method.epoch_examples(epoch, model, train)
            order = torch.randperm(len(examples), generator=generator).tolist()
            lengths = token_lengths(tokenizer, examples["text"].tolist(), hp["max_length"])
            order = length_grouped(order, lengths, hp["batch_size"], generator)
            run.update(examples=examples, order=order, position=0, losses=[])
            if checkpoints and method.regenerates_examples:  # an attack's examples are worth keeping
                save("examples")
        examples, order = run["examples"], run["order"]
        for start in range(run["position"], len(order), hp["batch_size"]):
            batch = _batch(examples, order[start : start + hp["batch_size"]], tokenizer, hp["max_length"], device)
            model.train()
            optimizer.zero_grad(set_to_none=True)
            if ramp_steps:
                method.set_budget_scale(min(1.0, (run["step"] + 1) / ramp_steps))
            with autocast(device), passes.counting("step"):
                run["losses"].append(method.backward(model, batch))
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            run["position"], run["step"] = start + hp["batch_size"], run["step"] + 1
            if checkpoints and checkpoints.due(run["step"]) and run["position"] < len(order):
                save("step")
        metrics = validate()
        run["history"].append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(run["losses"])),
                "train_examples": len(examples),
                "adversarial": examples.attrs.get("adversarial"),
                "perturbation": realised_size(method),
                "validation": metrics,
                "seconds": time.perf_counter() - started,
            }
        )
        log.info(
            "epoch %d: loss %.4f, validation accuracy %.4f",
            epoch + 1,
            run["history"][-1]["train_loss"],
            metrics["accuracy"],
        )
        if run["best"] is None or metrics["accuracy"] > run["best"]["validation"]["accuracy"]:
            run["best"], run["best_state"] = run["history"][-1], copy.deepcopy(model.state_dict())
        run.update(epoch=epoch + 1, examples=None, order=None, position=0, losses=[])
        if _stops_early(run, hp):
            log.info(
                "early stop after epoch %d: no better validation accuracy for %d epochs", epoch + 1, hp["patience"]
            )
            break
        if checkpoints and epoch + 1 < hp["epochs"]:
            save("epoch end")

    passes.remove()
    history, best = run["history"], run["best"]
    model.load_state_dict(run["best_state"])
    model.save_pretrained(out_dir / "model")
    tokenizer.save_pretrained(out_dir / "model")
    record = {
        "method": method_name,
        "method_params": method_params,
        "model_source": str(model_source),
        "history": history,
        "best_epoch": best["epoch"],
        "start_validation": run["start_validation"],
        "epochs_run": len(history),
        "stopped_early": len(history) < hp["epochs"],
        "convergence": convergence.check([np.array(c) for c in run["correct"]], best["epoch"], labels),
        "train_seconds": time.perf_counter() - started,
        "steps": run["step"],
        "examples_seen": sum(epoch["train_examples"] for epoch in history),
        "passes": run["passes"],
        "passes_per_step": PassCounter.per_step(run["passes"], run["step"]),
        "provenance": provenance(seed, {"training": hp, "method": method_params}),
    }
    if checkpoints:
        record["checkpoint_seconds"] = checkpoints.seconds  # this attempt's saves
    artifacts.write_json(record, out_dir / "train_log.json")
    if checkpoints:
        checkpoints.remove()
    return record
