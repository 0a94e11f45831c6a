"""Synonym-hull methods (ascc, dne): each word's embedding is replaced by a point of the convex hull of the embeddings
of the word and its synonyms, a convex combination sum_s w_s E[v_s] (w on the simplex), found adversarially (ASCC)
or drawn from a Dirichlet and then moved adversarially (DNE). Like the embedding-space methods they act on the word
embeddings ``E = model.get_input_embeddings()(input_ids)`` before the position/type embeddings and LayerNorm, and
record the realised displacement of E (``geometry.RealisedSize``), but the set they search is the synonyms' hull,
not a norm ball.

Synonyms: a word's ``neighbours`` nearest neighbours in the counter-fitted vectors of the ``build_embeddings`` rule
(``nn.npy``) whose cosine similarity is at least ``min_cos_sim``: the neighbour sets of both references
(Jia et al. 2019's ``counterfitted_neighbors.json``: at most 8 neighbours within Euclidean distance 0.5 of the
counter-fitted vectors, i.e. cosine 0.875 on their unit vectors), built from the vectors the workflow's embedding
attacks swap words with (a2t: cosine >= 0.8 among 20 neighbours, so every ASCC vertex is an A2T candidate). DNE
adds the synonyms' synonyms (``second_order``). Stopwords (NLTK's English list, ``resources/nltk_stopwords``)
neither get a hull nor are synonyms: in these 50-dimensional vectors the function words are each other's nearest
neighbours ("not": "non", "if", "be", "should"), where the references' 300-dimensional ones give them few or none
("an", "from", "they": none), and the attacks never swap a stopword (TextAttack's ``StopwordModification``).

Words and the model's tokens (``SynonymTable``): a hull is defined per vocabulary token, as both references do
(TextDefender's ASCC and DNE index a neighbour table by BERT token id): a token gets a hull when it is a
counter-fitted word (alphabetic, lower case, not a stopword) and at least one of its synonyms is itself one token
of the model's vocabulary; only such single-token synonyms are vertices. In a text, a token takes its hull only
where it is a whole word: not a WordPiece continuation (``##ing``) and not followed by one, so that the first piece
of a split word ("un" of "un ##fun ##ny") keeps its embedding even when that piece is a word of its own. Every
other token keeps its own embedding: all pieces of a word split into several, words without single-token
synonyms, stopwords, punctuation, special tokens and padding. On MiniLM's uncased vocabulary and the Rotten
Tomatoes training texts (at most 64 tokens), 84 % of the non-special tokens are whole words (or punctuation), and
25 % get a hull, with 4.9 vertices (the word and 3.9 synonyms) on average for ascc and 13.2 for dne (second order);
9,630 of the 30,522 vocabulary tokens have one.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import embeddings
from ..resources import STOPWORDS_FILE
from .base import BaseMethod, _require
from .embedding_space import _dropout_off
from .geometry import RealisedSize, _logits, _token_mask, _word_embeddings

MASKED = -500.0  # the logit of a slot that is no vertex (ASCC's reference: w * valid + 500 * (valid - 1))
ASCC_WEIGHT_DECAY = 2e-5  # the weight decay of ASCC's Adam on the combination logits (both references)


@dataclasses.dataclass(frozen=True)
class SynonymTable:
    """Each model token's hull, by token id. Row t of ``vertices`` is [t, its synonyms (nearest first), for DNE
    then its synonyms' synonyms], padded with t; ``valid`` marks the real vertices, ``first_order`` the token
    itself and its own synonyms (the rest are synonyms' synonyms); ``continuation`` marks WordPiece continuation
    tokens (``##...``). A token without synonyms has one vertex, itself."""

    vertices: torch.Tensor  # [V, S] long
    valid: torch.Tensor  # [V, S] bool
    first_order: torch.Tensor  # [V, S] bool
    continuation: torch.Tensor  # [V] bool

    @property
    def sizes(self) -> torch.Tensor:
        """[V]: vertices per token (1: no hull)."""
        return self.valid.sum(-1)

    def to(self, device) -> SynonymTable:
        if self.vertices.device == torch.device(device):
            return self
        return SynonymTable(*(getattr(self, field.name).to(device) for field in dataclasses.fields(self)))

    def whole_words(self, inputs: dict) -> torch.Tensor:
        """[B, T] bool: tokens that are whole words (neither a continuation nor followed by one) and not padding."""
        ids = inputs["input_ids"]
        followed = torch.zeros_like(ids, dtype=torch.bool)
        followed[:, :-1] = self.continuation[ids[:, 1:]]
        return ~self.continuation[ids] & ~followed & inputs["attention_mask"].bool()

    def batch(self, inputs: dict) -> BatchHull:
        """The hulls of one batch's tokens: those of its whole words that have synonyms."""
        ids = inputs["input_ids"]
        where = self.whole_words(inputs) & (self.sizes[ids] > 1)
        positions = where.nonzero(as_tuple=True)
        rows = ids[positions]
        width = int(self.sizes[rows].max()) if len(rows) else 1
        return BatchHull(
            where, positions, self.vertices[rows, :width], self.valid[rows, :width], self.first_order[rows, :width]
        )


@dataclasses.dataclass(frozen=True)
class BatchHull:
    """The N tokens of a batch that have a hull: their positions and their vertices ([N, S], padded with the token
    itself, ``valid`` marking the real ones). Convex weights are [N, S], 0 on the padding slots."""

    where: torch.Tensor  # [B, T] bool
    positions: tuple[torch.Tensor, torch.Tensor]
    vertices: torch.Tensor  # [N, S] long
    valid: torch.Tensor  # [N, S] bool
    first_order: torch.Tensor  # [N, S] bool

    def __len__(self) -> int:
        return len(self.vertices)

    def vertex_embeddings(self, model) -> torch.Tensor:
        """[N, S, d]: the word embeddings of the vertices."""
        return model.get_input_embeddings()(self.vertices)

    def mix(self, vertex_embeds: torch.Tensor, embeds: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``embeds`` with each hull token's embedding replaced by the convex combination ``weights`` of its
        vertices' embeddings (the other tokens keep theirs)."""
        mixed = (weights.unsqueeze(-1).to(vertex_embeds.dtype) * vertex_embeds).sum(-2)
        return embeds.index_put(self.positions, mixed.to(embeds.dtype))

    def softmax(self, logits: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.masked(logits), dim=-1)

    def masked(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.where(self.valid, logits, MASKED)


def toward_word(weights: torch.Tensor, scale: float) -> torch.Tensor:
    """The budget ramp: ``scale * weights + (1 - scale) * [1, 0, ...]``, the same combination with its displacement
    from the word (vertex 0) times ``scale``; still convex weights over the same vertices."""
    if scale >= 1:
        return weights
    word = torch.zeros_like(weights)
    word[..., 0] = 1
    return scale * weights + (1 - scale) * word


def synonym_table(
    tokenizer,
    counterfitted: str | Path,
    neighbours: int,
    min_cos_sim: float,
    second_order: bool = False,
    max_vertices: int = 0,
    stopwords: frozenset[str] = frozenset(),
) -> SynonymTable:
    """The hulls of ``tokenizer``'s vocabulary (see the module docstring): a word's synonyms are its ``neighbours``
    nearest counter-fitted neighbours with cosine >= ``min_cos_sim`` that are single tokens and not ``stopwords``;
    with ``second_order`` their own such synonyms follow (none twice, the word excluded); at most ``max_vertices``
    vertices (0: no cap), the word and its own synonyms first. A stopword gets no hull."""
    vectors, words, nn = embeddings.load(counterfitted)
    if neighbours > nn.shape[1] - 1:
        raise ValueError(f"{neighbours} neighbours asked, {nn.shape[1] - 1} precomputed in {counterfitted}/nn.npy")
    vocab = tokenizer.get_vocab()
    size = max(len(tokenizer), max(vocab.values()) + 1)
    token = np.array([-1 if word in stopwords else vocab.get(word, -1) for word in words])
    known = np.flatnonzero(token >= 0)
    candidates = nn[known, 1 : neighbours + 1]
    close = np.einsum("nd,nkd->nk", vectors[known], vectors[candidates]) >= min_cos_sim
    keep = close & (token[candidates] >= 0)
    synonyms = {int(i): candidates[row][keep[row]].tolist() for row, i in enumerate(known)}

    hulls = {}
    for i, first in synonyms.items():
        if not first:
            continue
        members = [i, *first]
        if second_order:
            seen = set(members)
            for j in first:
                for k in synonyms.get(j, ()):
                    if k not in seen:
                        seen.add(k)
                        members.append(k)
        if max_vertices:
            members = members[:max_vertices]
        hulls[int(token[i])] = ([int(token[m]) for m in members], 1 + len(first))
    width = max([len(members) for members, _ in hulls.values()], default=1)
    vertices = torch.arange(size).unsqueeze(1).repeat(1, width)
    valid = torch.zeros(size, width, dtype=torch.bool)
    valid[:, 0] = True
    first_order = valid.clone()
    for t, (members, first) in hulls.items():
        vertices[t, : len(members)] = torch.tensor(members)
        valid[t, : len(members)] = True
        first_order[t, : min(first, len(members))] = True
    pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
    continuation = torch.tensor([bool(piece) and piece.startswith("##") for piece in pieces])
    return SynonymTable(vertices, valid, first_order, continuation)


class HullSize(RealisedSize):
    """``RealisedSize`` of the hull displacement (L2, per example), plus the share of the steps' non-padding
    tokens that had a hull (``hull_share``), the mean over hull tokens and passes of the largest convex weight
    (``top_weight``: 1 is one vertex alone; ASCC's entropy term pushes it up) and of the word's own weight
    (``word_weight``)."""

    def __init__(self):
        super().__init__("l2")
        self._reset_hull()

    def _reset_hull(self) -> None:
        self.hull_tokens, self.tokens, self.top, self.word = 0, 0, [], []

    def add_hull(self, hull: BatchHull, mask: torch.Tensor, weights: list[torch.Tensor]) -> None:
        """One step's hulls and the weights of each pass whose loss the update uses."""
        self.hull_tokens += len(hull)
        self.tokens += int(mask.sum())
        for passed in weights:
            self.top.append(passed.detach().amax(-1).float().cpu())
            self.word.append(passed.detach()[:, 0].float().cpu())

    def summary(self, epsilon: float | None = None) -> dict | None:
        out = super().summary(epsilon)
        if out is not None:
            top, word = torch.cat(self.top), torch.cat(self.word)
            out["hull_share"] = self.hull_tokens / max(self.tokens, 1)
            out["top_weight"] = float(top.mean()) if len(top) else None
            out["word_weight"] = float(word.mean()) if len(word) else None
        self._reset_hull()
        return out


def _kl(clean_logits: torch.Tensor, adversarial_logits: torch.Tensor, reduction: str) -> torch.Tensor:
    """KL(p_clean || p_adversarial) with the gradient through both (unlike ``geometry.kl_divergence``): the
    references' ``KLDivLoss(log_softmax(adversarial), softmax(clean))``."""
    return F.kl_div(
        F.log_softmax(adversarial_logits.float(), dim=-1),
        F.log_softmax(clean_logits.float(), dim=-1),
        reduction=reduction,
        log_target=True,
    )


class _SynonymHull:
    """What ASCC and DNE share: the synonym table, the realised record and the budget ramp (a mixin, not itself a
    method: the registry takes every ``BaseMethod`` subclass of the module for one)."""

    needs = ("tokenizer", "counterfitted")

    def _build(self, second_order: bool = False, max_vertices: int = 0) -> None:
        if self.tokenizer is None or self.counterfitted is None:
            raise ValueError(f"method {self.name!r} needs a tokenizer and the counter-fitted vectors' directory")
        self.table = synonym_table(
            self.tokenizer,
            self.counterfitted,
            self.neighbours,
            self.min_cos_sim,
            second_order,
            max_vertices,
            frozenset(STOPWORDS_FILE.read_text().split()),
        )
        self.realised = HullSize()
        self.scale = 1.0

    def set_budget_scale(self, scale: float) -> None:
        self.scale = scale  # every combination's displacement from its word (toward_word)

    def hulls(self, inputs: dict) -> BatchHull:
        self.table = self.table.to(inputs["input_ids"].device)
        return self.table.batch(inputs)


@dataclasses.dataclass
class ASCC(_SynonymHull, BaseMethod):
    """ASCC (Dong et al., ICLR 2021, "Towards Robustness Against Natural Language Word Substitutions";
    dongxinshuai/ASCC models/BaseModelAdv.py ``get_adv_by_convex_syn`` and train_imdb_ascc.py; TextDefender
    model/models.py ``ASCCModel`` and trainer/ascc.py): every hull token's embedding is the convex combination
    softmax(w) of its vertices' embeddings, w optimized by ``steps`` Adam steps (learning rate ``step_size``, weight
    decay 2e-5, kaiming-normal start) on -KL(p(E) || p(E_w)) + entropy_weight * H(softmax(w)) with p(E) a constant
    and dropout off, i.e. towards the most divergent sparse combination; then one update on
    CE(E) + kl_weight * KL(p(E) || p(E_w)), with the gradient through both distributions (reference: weight_clean 1,
    weight_adv 0, weight_kl 4).

    Where this differs from the references, and why:

    * the hulls are per token of the model's vocabulary and only for whole single-token words with single-token
      synonyms (the module docstring); the references (TextDefender's BERT version) index the table by token id
      whatever the word around it, so the first piece of a split word took the hull of the word it spells;
    * the entropy term is averaged over the batch's non-padding tokens (tokens without a hull count with 0); the
      references average over every position of their batches padded to a fixed length (128/256), which weakens
      the term by the padding's share. The KL is summed over the batch as in both references, so the balance of
      the two terms depends on the batch size as it does there (TextDefender's BERT batches: 32);
    * the inner optimization's clean distribution and steps run with dropout off (the authors' ``eval_adv_mode``;
      TextDefender keeps the model in training mode);
    * ``set_budget_scale`` shrinks every combination toward its word (``toward_word``), for the budget ramp; the
      references have none.
    """

    name = "ascc"
    steps: int = 5
    step_size: float = 1.0
    entropy_weight: float = 10.0
    kl_weight: float = 4.0
    neighbours: int = 8
    min_cos_sim: float = 0.875
    tokenizer: object = None
    counterfitted: str | Path | None = None

    def __post_init__(self):
        _require(
            self,
            steps=self.steps >= 1,
            step_size=self.step_size > 0,
            entropy_weight=self.entropy_weight >= 0,
            kl_weight=self.kl_weight >= 0,
            neighbours=self.neighbours >= 1,
            min_cos_sim=-1 <= self.min_cos_sim <= 1,
        )
        self._build()

    def weights(self, hull: BatchHull, logits: torch.Tensor) -> torch.Tensor:
        """The convex weights of logits ``w`` (budget ramp applied)."""
        return toward_word(hull.softmax(logits), self.scale)

    def attack(self, model, inputs: dict, embeds: torch.Tensor, hull: BatchHull) -> torch.Tensor:
        """The adversarial combination logits w ([N, S], detached) for detached word embeddings ``embeds``."""
        length = inputs["input_ids"].shape[1]
        w = torch.randn(hull.vertices.shape, device=embeds.device)
        w = (w * math.sqrt(2 / (length * hull.vertices.shape[1]))).requires_grad_()  # kaiming-normal of [B, T, S, 1]
        if not len(hull):
            return w.detach()
        optimizer = torch.optim.Adam([w], lr=self.step_size, weight_decay=ASCC_WEIGHT_DECAY)
        vertex_embeds = hull.vertex_embeddings(model).detach()
        tokens = _token_mask(inputs, embeds).sum()
        with _dropout_off(model):
            with torch.no_grad():
                clean_logits = _logits(model, inputs, embeds)
            for _ in range(self.steps):
                logits = hull.masked(w)
                adversarial = _logits(model, inputs, hull.mix(vertex_embeds, embeds, self.weights(hull, w)))
                entropy = -(F.softmax(logits, -1) * F.log_softmax(logits, -1)).sum() / tokens
                loss = -_kl(clean_logits, adversarial, "sum") + self.entropy_weight * entropy
                (w.grad,) = torch.autograd.grad(loss, w)  # w's alone: parameter grads stay untouched
                optimizer.step()
        return w.detach()

    def backward(self, model, batch: dict) -> float:
        inputs, labels = batch["inputs"], batch["labels"]
        hull = self.hulls(inputs)
        embeds = _word_embeddings(model, inputs)
        weights = self.weights(hull, self.attack(model, inputs, embeds.detach(), hull))
        adversarial_embeds = hull.mix(hull.vertex_embeddings(model), embeds, weights)
        mask = _token_mask(inputs, embeds)
        self.realised.add([adversarial_embeds.detach() - embeds.detach()], embeds, mask)
        self.realised.add_hull(hull, mask, [weights])
        clean_logits = _logits(model, inputs, embeds)
        loss = F.cross_entropy(clean_logits, labels) + self.kl_weight * _kl(
            clean_logits, _logits(model, inputs, adversarial_embeds), "batchmean"
        )
        loss.backward()
        return float(loss.detach())


@dataclasses.dataclass
class DNE(_SynonymHull, BaseMethod):
    """DNE (Zhou et al., ACL 2021, "Defense against Synonym Substitution-based Adversarial Attacks via Dirichlet
    Neighborhood Ensemble"; dugu9sword/dne awesome_glue/weighted_embedding.py ``WeightedEmbedding``,
    weighted_util.py ``DecayAlphaHull``, allennlpx/training/adv_trainer.py with ``DoItYourselfPolicy``; TextDefender
    utils/dne_utils.py and trainer/dne.py): every hull token's convex weights are drawn from
    Dirichlet(alpha for the word and its synonyms, alpha * decay for its synonyms' synonyms), their logits
    l = log(w + 1e-6); a pass on that combination backpropagates CE into the parameters and into l; then ``steps``
    passes each move l by ``step_size`` * g / ||g|| (g the previous pass's gradient w.r.t. l, normalized per token
    over its vertices: the ascent stays in the hull, where softmax(l) lives) and backpropagate CE / steps (the
    authors' adv_trainer.py; TextDefender adds them undivided). The update uses the gradients of all 1 + steps
    passes (as FreeLB), each with dropout on, as in the references.

    Where this differs from the references, and why:

    * the hulls are per token and only for whole single-token words (the module docstring; as ASCC);
    * fresh Dirichlet draws from torch's generator at every step (normalized Gamma draws over each token's vertices,
      so the seed fixes them); the references sample from caches of 10,000 numpy draws per hull size, read at
      rolling offsets;
    * the word and its first-order synonyms get alpha, the synonyms' synonyms alpha * decay; the references' list
      interleaves them (each synonym followed by its own synonyms) and gives alpha to its first 1 + #synonyms
      entries, some of which are second-order, and may list a vertex twice;
    * padding slots of a hull are no vertices: their weight stays 0. The references pad the neighbour table with
      token 0 ([PAD]) at coefficient 1e-6, a slot the ascent can raise, mixing the [PAD] embedding in;
    * ``set_budget_scale`` shrinks every combination toward its word (``toward_word``); the references have none.
    """

    name = "dne"
    alpha: float = 1.0
    decay: float = 0.5
    steps: int = 3
    step_size: float = 10.0
    neighbours: int = 8
    min_cos_sim: float = 0.875
    second_order: bool = True
    max_vertices: int = 64
    tokenizer: object = None
    counterfitted: str | Path | None = None

    def __post_init__(self):
        _require(
            self,
            alpha=self.alpha > 0,
            decay=self.decay > 0,
            steps=self.steps >= 0,
            step_size=self.step_size >= 0,
            neighbours=self.neighbours >= 1,
            min_cos_sim=-1 <= self.min_cos_sim <= 1,
            max_vertices=self.max_vertices >= 2,
        )
        self._build(self.second_order, self.max_vertices)

    def concentration(self, hull: BatchHull) -> torch.Tensor:
        """[N, S]: the Dirichlet parameters of each hull token's weights (1 on padding slots, which are dropped)."""
        alpha = torch.where(hull.first_order, self.alpha, self.alpha * self.decay)
        return torch.where(hull.valid, alpha, 1.0)

    def sample(self, hull: BatchHull) -> torch.Tensor:
        """[N, S]: one Dirichlet draw per hull token over its vertices (0 on padding slots)."""
        concentration = self.concentration(hull).float()
        gamma = torch.distributions.Gamma(concentration, torch.ones_like(concentration)).sample() * hull.valid
        return gamma / gamma.sum(-1, keepdim=True)

    def backward(self, model, batch: dict) -> float:
        inputs, labels = batch["inputs"], batch["labels"]
        hull = self.hulls(inputs)
        logits = torch.log(self.sample(hull) + 1e-6)
        total, deltas, passed = 0.0, [], []
        for step in range(self.steps + 1):
            logits = (logits - logits.max(-1, keepdim=True).values).detach().requires_grad_()
            weights = toward_word(hull.softmax(logits), self.scale)
            embeds = _word_embeddings(model, inputs)  # anew each pass: the backward frees the graph
            mixed = hull.mix(hull.vertex_embeddings(model), embeds, weights)
            loss = F.cross_entropy(_logits(model, inputs, mixed), labels) / (self.steps if step else 1)
            loss.backward()
            total += float(loss.detach())
            deltas.append((mixed - embeds).detach())
            passed.append(weights.detach())
            if step == self.steps:
                break
            grad = logits.grad if logits.grad is not None else torch.zeros_like(logits)
            grad = grad * hull.valid
            logits = logits.detach() + self.step_size * grad / (grad.norm(dim=-1, keepdim=True) + 1e-6)
        mask = _token_mask(inputs, embeds)
        self.realised.add(deltas, embeds, mask)  # the update uses every pass's gradient
        self.realised.add_hull(hull, mask, passed)
        return total
