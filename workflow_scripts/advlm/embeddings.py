"""Counter-fitted word vectors (Mrkšić et al., NAACL 2016) built from GloVe and WordNet, with numpy only.

TextAttack's embedding-swap attacks (TextFooler, A2T) use "paragramcf", counter-fitted Paragram-SL999
vectors downloaded from S3. Offline we build the equivalent ourselves: start from GloVe 6B 50-d, restrict
the vocabulary to the most frequent alphabetic words, and run counter-fitting with WordNet synonym and
antonym pairs:

* antonym repel (AR): ``sum over antonyms  max(0, delta - d(u, w))``, pushing antonyms apart,
* synonym attract (SA): ``sum over synonyms max(0, d(u, w) - gamma)``, pulling synonyms together,
* vector space preservation (VSP): ``sum over pairs closer than rho in the original space
  max(0, d(u, w) - d0(u, w))``, keeping the original neighbourhood of every word that moves,

with ``d = 1 - cos``. As in the reference implementation (github.com/nmrksic/counter-fitting), each epoch is
one full-batch step: every word moves by the mean of its active per-pair (projected) gradients scaled by
``k1``/``k2``/``k3``, then the moved vectors are renormalised to unit length. Defaults are the paper's
(delta 1.0, gamma 0.0, rho 0.2, k1 = k2 = k3 = 0.1, 20 epochs).

The output directory holds ``vectors.npy`` (float32, N x D, unit rows), ``vocab.txt`` (one word a line, row
order), ``nn.npy`` (int32, N x (K + 1): each row the indices of the word itself and its K nearest
neighbours by cosine, nearest first: the ``nn_matrix`` TextAttack's ``WordEmbedding`` expects),
``pairs.npz`` (the WordNet constraint pairs: ``synonyms`` and ``antonyms``, (M, 2) row indices) and
``MANIFEST.json`` (parameters, statistics, sources and the sha256 of every file).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np

from . import artifacts

log = logging.getLogger(__name__)

DEFAULTS = {
    "vocab_size": 65000,  # TextAttack's paragramcf has 65,713 words
    "min_word_length": 2,
    "synonym_max_sense_rank": 3,  # a synonym pair must share a synset among the first senses of both words
    "expand_adjective_antonyms": True,
    "delta": 1.0,
    "gamma": 0.0,
    "rho": 0.2,
    "k1": 0.1,
    "k2": 0.1,
    "k3": 0.1,
    "epochs": 20,
    "neighbours": 50,
}
PROBE_WORDS = ("good", "bad", "terrible", "wonderful", "boring", "funny", "movie", "love", "hate", "slow")
WORD = re.compile(r"[a-z]+")
WORDNET_POS = ("n", "v", "a", "r")


# --- vocabulary --------------------------------------------------------------------------------------


def select_vocabulary(words: list[str], size: int, min_length: int = 2) -> np.ndarray:
    """Row indices of the first ``size`` purely alphabetic lower-case words (GloVe is frequency-ordered).

    Only alphabetic words: TextAttack turns a punctuation candidate into a deletion, which leaves no
    modified index and crashes its sentence-encoder constraints.
    """
    keep = [i for i, word in enumerate(words) if len(word) >= min_length and WORD.fullmatch(word)]
    return np.asarray(keep[:size], dtype=np.int64)


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


# --- WordNet constraints -----------------------------------------------------------------------------


def load_wordnet(nltk_dir: str | Path):
    """NLTK's WordNet reader on the offline ``nltk_data`` resource (never downloads).

    NLTK >= 3.10 reads corpora only under ``nltk.data.path``, so the directory is added to it.
    """
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    nltk_dir = Path(nltk_dir).resolve()
    root = nltk_dir / "corpora" / "wordnet"
    if not (root / "data.noun").exists():
        raise FileNotFoundError(f"WordNet missing under {root}: build the nltk_data resource first")
    if str(nltk_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_dir))
    return WordNetCorpusReader(str(root), None)


def _pairs_array(pairs: set[tuple[int, int]]) -> np.ndarray:
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def wordnet_pairs(
    vocab: list[str], wordnet, max_sense_rank: int = 3, expand_adjective_antonyms: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Synonym and antonym pairs of vocabulary words, as ``(M, 2)`` index arrays with ``i < j``.

    * Synonyms: two words sharing a synset that is among the first ``max_sense_rank`` senses (WordNet's
      frequency order) of *both* words. WordNet lists rare senses too ("good" is also a commodity);
      the rank limit keeps the pairs to senses the words usually have.
    * Antonyms: WordNet's lemma antonyms. With ``expand_adjective_antonyms``, an adjective antonym pair
      also opposes the two clusters of satellite adjectives around the pair's head synsets (e.g.
      "terrible" and "awful", satellites of *bad*, against "superb", a satellite of *good*), the way
      WordNet defines antonymy for satellites.
    """
    index = {word: i for i, word in enumerate(vocab)}
    directed: set[tuple[int, int]] = set()
    antonyms: set[tuple[int, int]] = set()

    def add_antonyms(words_a, words_b):
        for a in words_a:
            for b in words_b:
                if a in index and b in index and a != b:
                    antonyms.add((min(index[a], index[b]), max(index[a], index[b])))

    def names(synsets):
        return {lemma.name().lower() for synset in synsets for lemma in synset.lemmas()}

    for word, i in index.items():
        for pos in WORDNET_POS:
            for rank, lemma in enumerate(wordnet.lemmas(word, pos)):
                if rank < max_sense_rank:
                    for other in lemma.synset().lemmas():
                        j = index.get(other.name().lower())
                        if j is not None and j != i:
                            directed.add((i, j))
                for antonym in lemma.antonyms():
                    add_antonyms([word], [antonym.name().lower()])
    synonyms = {(min(i, j), max(i, j)) for i, j in directed if (j, i) in directed}
    if expand_adjective_antonyms:
        for synset in wordnet.all_synsets("a"):  # head adjectives only ("s" are satellites)
            for lemma in synset.lemmas():
                for antonym in lemma.antonyms():
                    cluster_a = names([synset, *synset.similar_tos()])
                    other = antonym.synset()
                    cluster_b = names([other, *other.similar_tos()])
                    add_antonyms(cluster_a, cluster_b)
    synonyms -= antonyms  # a pair WordNet calls both (different senses) is not pulled together
    return _pairs_array(synonyms), _pairs_array(antonyms)


# --- counter-fitting ---------------------------------------------------------------------------------


def vsp_pairs(
    vectors: np.ndarray, rows: np.ndarray, rho: float, exclude: np.ndarray | None = None, block: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Directed pairs ``(i, j)`` closer than cosine distance ``rho`` in ``vectors`` with ``i`` or ``j`` in ``rows``
    (both directions), and their original distances; sorted, without the pairs in ``exclude``.

    Only the constrained words (``rows``) are moved by the other terms, so only their neighbourhoods can change;
    a neighbour follows a moved word and holds it back. Synonym and antonym pairs are excluded: preserving
    their original distance would undo exactly what the constraints ask for.
    """
    n = len(vectors)
    found, distances = [], []
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        similarity = vectors[chunk] @ vectors.T
        similarity[np.arange(len(chunk)), chunk] = -np.inf
        r, c = np.nonzero(similarity > 1 - rho)
        found.append(np.stack([chunk[r], c], axis=1))
        distances.append(1 - similarity[r, c])
    if not found:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    pairs = np.concatenate(found).astype(np.int64)
    distance = np.concatenate(distances).astype(np.float32)
    pairs, distance = np.concatenate([pairs, pairs[:, ::-1]]), np.concatenate([distance, distance])
    keys, first = np.unique(pairs[:, 0] * n + pairs[:, 1], return_index=True)
    pairs, distance = pairs[first], distance[first]
    if exclude is not None and len(exclude):
        excluded = np.concatenate([exclude, exclude[:, ::-1]]).astype(np.int64)
        keep = ~np.isin(keys, excluded[:, 0] * n + excluded[:, 1])
        pairs, distance = pairs[keep], distance[keep]
    return pairs, distance


def _both_directions(pairs: np.ndarray) -> np.ndarray:
    return np.concatenate([pairs, pairs[:, ::-1]]) if len(pairs) else pairs


def counter_fit(
    vectors: np.ndarray, synonyms: np.ndarray, antonyms: np.ndarray, params: dict, chunk: int = 250_000
) -> tuple[np.ndarray, list[dict]]:
    """Counter-fit unit ``vectors`` (N x D) with synonym/antonym index pairs; returns new unit vectors.

    Each epoch every pair ``(u, w)`` (both directions) whose hinge is active contributes the projected
    gradient of ``d(u, w) = 1 - u.w`` with respect to ``u``, ``-(w - (u.w) u)``: antonyms (``d < delta``)
    move ``u`` up that gradient with weight ``k1``, synonyms (``d > gamma``) down it with ``k2``, and VSP
    pairs (``d > d0``: the hinge's gradient is zero at ``d = d0``) down it with ``k3``. A word moves by the mean of
    its contributions; then the moved vectors are renormalised (the others stay bit-identical). Deterministic (no
    sampling).
    """
    params = {**DEFAULTS, **params}
    vectors = normalise(np.asarray(vectors, dtype=np.float32)).copy()
    n = len(vectors)
    moving = (
        np.unique(np.concatenate([synonyms.ravel(), antonyms.ravel()]))
        if len(synonyms) + len(antonyms)
        else np.zeros(0, np.int64)
    )
    constrained = np.concatenate([synonyms, antonyms]).reshape(-1, 2)
    vsp, vsp_d0 = vsp_pairs(vectors, moving, params["rho"], exclude=constrained)
    terms = [  # (directed pairs, coefficient of (w - (u.w) u), activation test on the current distance)
        ("antonym", _both_directions(antonyms), -params["k1"], lambda d, _: d < params["delta"], None),
        ("synonym", _both_directions(synonyms), params["k2"], lambda d, _: d > params["gamma"], None),
        ("vsp", vsp, params["k3"], lambda d, d0: d > d0 + 1e-6, vsp_d0),
    ]
    history = []
    for epoch in range(params["epochs"]):
        update = np.zeros_like(vectors)
        count = np.zeros(n, dtype=np.int64)
        active_counts = {}
        for name, pairs, coefficient, active, reference in terms:
            active_total = 0
            for start in range(0, len(pairs), chunk):
                i, j = pairs[start : start + chunk, 0], pairs[start : start + chunk, 1]
                u, w = vectors[i], vectors[j]
                dots = np.einsum("ij,ij->i", u, w)
                keep = active(1 - dots, None if reference is None else reference[start : start + chunk])
                if not keep.any():
                    continue
                i, dots, u, w = i[keep], dots[keep], u[keep], w[keep]
                step = coefficient * (w - dots[:, None] * u)
                order = np.argsort(i, kind="stable")
                i, step = i[order], step[order]
                starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
                update[i[starts]] += np.add.reduceat(step, starts, axis=0)
                count += np.bincount(i, minlength=n)
                active_total += int(keep.sum())
            active_counts[name] = active_total
        moved = count > 0
        vectors[moved] = normalise(vectors[moved] + update[moved] / count[moved, None])
        history.append({"epoch": epoch + 1, "active_pairs": active_counts, "moved_words": int(moved.sum())})
        log.info("counter-fitting epoch %d: %s", epoch + 1, active_counts)
    return vectors.astype(np.float32), history


def nearest_neighbours(vectors: np.ndarray, k: int, block: int = 512, stride: int = 8) -> np.ndarray:
    """``(N, k + 1)`` int32: column 0 the word itself, then its ``k`` nearest neighbours by cosine.

    Ties are broken by the lower index, so the matrix is deterministic. A full partition of every row is
    slow, so each row is first cut at the (k+1)-th largest similarity among every ``stride``-th column (a
    lower bound of the row's own (k+1)-th largest) and only the columns above it are sorted.
    """
    n = len(vectors)
    k = min(k, n - 1)
    stride = max(1, min(stride, n // (k + 1)))
    out = np.empty((n, k + 1), dtype=np.int32)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        similarity = vectors[rows] @ vectors.T
        similarity[np.arange(len(rows)), rows] = np.inf  # the word itself first, whatever duplicates exist
        sub = similarity[:, ::stride]
        cut = np.partition(sub, sub.shape[1] - (k + 1), axis=1)[:, sub.shape[1] - (k + 1)]
        r, c = np.nonzero(similarity >= cut[:, None])
        order = np.lexsort((c, -similarity[r, c], r))
        r, c = r[order], c[order]
        first = np.searchsorted(r, np.arange(len(rows)))
        out[rows] = c[first[:, None] + np.arange(k + 1)]
    return out


def pair_lists(vocab: list[str], pairs: np.ndarray) -> dict[str, list[str]]:
    """Each word's partners in ``pairs`` (both directions), sorted: ``{"good": ["bad", ...], ...}``."""
    out: dict[str, set] = {}
    for i, j in np.asarray(pairs).reshape(-1, 2):
        out.setdefault(vocab[i], set()).add(vocab[j])
        out.setdefault(vocab[j], set()).add(vocab[i])
    return {word: sorted(partners) for word, partners in out.items()}


def _mean_cos(vectors: np.ndarray, pairs: np.ndarray) -> float | None:
    if not len(pairs):
        return None
    return float(np.einsum("ij,ij->i", vectors[pairs[:, 0]], vectors[pairs[:, 1]]).mean())


def neighbour_words(vectors: np.ndarray, vocab: list[str], words=PROBE_WORDS, k: int = 8) -> dict[str, list[str]]:
    index = {word: i for i, word in enumerate(vocab)}
    out = {}
    for word in words:
        if word in index:
            similarity = vectors @ vectors[index[word]]
            similarity[index[word]] = -np.inf
            out[word] = [vocab[j] for j in np.argsort(-similarity, kind="stable")[:k]]
    return out


def build_counterfitted(glove_dir: str | Path, nltk_dir: str | Path, out_dir: str | Path, params: dict) -> dict:
    """Build ``out_dir`` (see the module docstring) from the ``glove`` and ``nltk_data`` resources.

    Returns the statistics (also recorded in MANIFEST.json by :func:`write_manifest`).
    """
    params = {**DEFAULTS, **params}
    glove_dir, out_dir = Path(glove_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    all_words = (glove_dir / "vocab.txt").read_text().splitlines()
    rows = select_vocabulary(all_words, params["vocab_size"], params["min_word_length"])
    vocab = [all_words[i] for i in rows]
    original = normalise(np.load(glove_dir / "vectors.npy", mmap_mode="r")[rows].astype(np.float32))
    wordnet = load_wordnet(nltk_dir)
    synonyms, antonyms = wordnet_pairs(
        vocab, wordnet, params["synonym_max_sense_rank"], params["expand_adjective_antonyms"]
    )
    log.info("%d words, %d synonym pairs, %d antonym pairs", len(vocab), len(synonyms), len(antonyms))
    fitted, history = counter_fit(original, synonyms, antonyms, params)
    nn = nearest_neighbours(fitted, params["neighbours"])
    np.save(out_dir / "vectors.npy", fitted)
    np.save(out_dir / "nn.npy", nn)
    artifacts.write_lines(vocab, out_dir / "vocab.txt")
    np.savez(out_dir / "pairs.npz", synonyms=synonyms, antonyms=antonyms)
    return {
        "vocab_size": len(vocab),
        "dimension": int(fitted.shape[1]),
        "synonym_pairs": len(synonyms),
        "antonym_pairs": len(antonyms),
        "mean_cos_synonyms": {"before": _mean_cos(original, synonyms), "after": _mean_cos(fitted, synonyms)},
        "mean_cos_antonyms": {"before": _mean_cos(original, antonyms), "after": _mean_cos(fitted, antonyms)},
        "neighbours_before": neighbour_words(original, vocab),
        "neighbours_after": neighbour_words(fitted, vocab),
        "examples": {
            kind: [
                [vocab[i], vocab[j]]
                for i, j in pairs[np.random.default_rng(0).choice(len(pairs), min(20, len(pairs)), replace=False)]
            ]
            for kind, pairs in (("synonyms", synonyms), ("antonyms", antonyms))
        },
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
    }


def write_manifest(out_dir: str | Path, source: dict) -> dict:
    """MANIFEST.json with ``source`` (parameters, statistics, inputs) and the sha256 of every other file."""
    from .resources import sha256

    out_dir = Path(out_dir)
    files = {
        str(path.relative_to(out_dir)): sha256(path)
        for path in sorted(out_dir.rglob("*"))
        if path.is_file() and path.name != "MANIFEST.json"
    }
    manifest = {"source": source, "files": files}
    artifacts.write_json(manifest, out_dir / "MANIFEST.json")
    return manifest


def load(directory: str | Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(vectors, vocab, nn)`` of a directory written by :func:`build_counterfitted`."""
    directory = Path(directory)
    vocab = (directory / "vocab.txt").read_text().splitlines()
    return np.load(directory / "vectors.npy"), vocab, np.load(directory / "nn.npy")
