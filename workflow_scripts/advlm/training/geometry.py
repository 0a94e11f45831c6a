"""The geometry of the embedding-space methods: the word embeddings they perturb and the logits of perturbed ones,
per-example norms, the perturbation set and ascent step of PGD and FreeLB, the KL divergence of LDS, and the
realised perturbation sizes every such method records.

Padding positions are never perturbed, and the norm of a perturbation is taken per example over its whole [T, d]
slice (FreeLB, TextDefender, Miyato et al.).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F


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
