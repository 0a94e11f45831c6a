"""Corpus augmentation with adversarial word substitutions, built from TextAttack components.

TextAttack's own ``Augmenter`` regenerates every candidate text of every word after each single swap,
which costs about a second per sentence; here the positions to swap are drawn once and each drawn
word gets one random candidate from the same TextAttack transformation (and constraints), so a text
costs milliseconds.

Augmenters (``build_augmenter``):

* ``wordnet``: WordNet synonyms, TextAttack's ``WordSwapWordNet`` (the PWWS substitution set, as in
  TextAttack's ``WordNetAugmenter``).
* ``embedding``: counter-fitted word-embedding neighbours, as TextAttack's ``EmbeddingAugmenter``
  (``WordSwapEmbedding(max_candidates=50)`` with the ``WordEmbeddingDistance(min_cos_sim=0.8)``
  constraint), on the workflow's own counter-fitted vectors (``results/resources/counterfitted``, rule
  build_embeddings) instead of TextAttack's downloaded ones.
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from .runtime import offline_textattack


class WordSwapAugmenter:
    """Swap ``pct_words_to_swap`` of the words of a text (at least one) for candidates of a TextAttack
    word-swap transformation, ``copies`` times; stopwords and words without a candidate stay as they are.

    ``constraints``: TextAttack constraints every (word, candidate) swap must pass, checked once per word
    on the swap of that word alone. Only context-free constraints belong here, those that look at the
    swapped word pair only (``WordEmbeddingDistance``); stopwords and repeated modifications (TextAttack's
    default augmentation constraints) are already excluded by construction.
    """

    def __init__(self, transformation, stopwords: set[str], pct_words_to_swap: float, copies: int, constraints=()):
        self.transformation = transformation
        self.stopwords = stopwords
        self.pct_words_to_swap = pct_words_to_swap
        self.copies = copies
        self.constraints = list(constraints)
        self._candidates: dict[str, list[str]] = {}

    def candidates(self, word: str) -> list[str]:
        if word not in self._candidates:  # the transformation's look-up is the expensive part: cache it
            found = [] if word.lower() in self.stopwords else self.transformation._get_replacement_words(word)
            found = sorted({c for c in found if c != word and c.isalpha()})
            self._candidates[word] = [c for c in found if self._allowed(word, c)]
        return self._candidates[word]

    def _allowed(self, word: str, candidate: str) -> bool:
        if not self.constraints:
            return True
        from textattack.shared import AttackedText

        reference = AttackedText(word)
        if reference.words != [word]:  # not one TextAttack word on its own: no swap to check, none allowed
            return False
        swapped = reference.replace_word_at_index(0, candidate)  # sets newly_modified_indices = {0}
        return all(constraint._check_constraint(swapped, reference) for constraint in self.constraints)

    def augment(self, text: str, rng: random.Random) -> list[str]:
        from textattack.shared import AttackedText

        attacked = AttackedText(text)
        swappable = [i for i, word in enumerate(attacked.words) if self.candidates(word)]
        wanted = max(1, round(self.pct_words_to_swap * len(attacked.words)))
        copies = []
        for _ in range(self.copies):
            indices = sorted(rng.sample(swappable, min(wanted, len(swappable))))
            words = [rng.choice(self.candidates(attacked.words[i])) for i in indices]
            copies.append(attacked.replace_words_at_indices(indices, words).text if indices else text)
        return copies


def _wordnet(params: dict, embedding_dir):
    """WordNet synonyms (TextAttack's ``WordSwapWordNet``, the PWWS substitution set); no constraint."""
    from textattack.transformations import WordSwapWordNet

    return WordSwapWordNet(), []


def _embedding(params: dict, embedding_dir):
    """The ``max_candidates`` nearest counter-fitted neighbours of a word (``WordSwapEmbedding``) whose
    cosine similarity to it is at least ``min_cos_sim`` (``WordEmbeddingDistance``)."""
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.transformations import WordSwapEmbedding

    from .attacks.components import load_embedding

    if embedding_dir is None or not (Path(embedding_dir) / "vectors.npy").exists():
        where = "no directory was given" if embedding_dir is None else f"{embedding_dir} has no vectors.npy"
        raise FileNotFoundError(
            f"the embedding augmenter needs the counter-fitted embedding, but {where}: run the build_embeddings "
            "rule (snakemake results/resources/counterfitted) and pass its directory as embedding_dir"
        )
    embedding = load_embedding(str(embedding_dir))
    available = embedding.nn_matrix.shape[1] - 1
    if params["max_candidates"] > available and available < embedding.vocab_size - 1:
        raise ValueError(
            f"augment.max_candidates is {params['max_candidates']}, but {embedding_dir} holds only {available} "
            "nearest neighbours per word: raise attack.embedding.neighbours and rebuild it (rule build_embeddings)"
        )
    return (
        WordSwapEmbedding(max_candidates=params["max_candidates"], embedding=embedding),
        [WordEmbeddingDistance(embedding=embedding, min_cos_sim=params["min_cos_sim"])],
    )


TRANSFORMATIONS = {"wordnet": _wordnet, "embedding": _embedding}


def build_augmenter(
    name: str, params: dict, resources_dir: str | Path, embedding_dir: str | Path | None = None
) -> WordSwapAugmenter:
    """The augmenter ``name`` (see the module docstring) with ``params`` (``pct_words_to_swap``, ``copies``;
    ``embedding`` also reads ``max_candidates`` and ``min_cos_sim``; defaults in the config schema).

    ``resources_dir`` holds ``nltk_data``; ``embedding_dir`` is the counter-fitted embedding (the
    build_embeddings output), needed by ``embedding`` only and ignored by ``wordnet``.
    """
    if name not in TRANSFORMATIONS:
        raise ValueError(f"unknown augmenter {name!r}; known: {sorted(TRANSFORMATIONS)}")
    offline_textattack(resources_dir)
    from nltk.corpus import stopwords

    transformation, constraints = TRANSFORMATIONS[name](params, embedding_dir)
    return WordSwapAugmenter(
        transformation, set(stopwords.words("english")), params["pct_words_to_swap"], params["copies"], constraints
    )


def augment_corpus(texts: pd.DataFrame, augmenter: WordSwapAugmenter, seed: int) -> pd.DataFrame:
    """The original texts (``copy`` 0) followed by their augmented copies (``copy`` 1..k).

    Seeded per text, so the augmentation of one text does not depend on which texts come before it.
    """
    rows = []
    for row in texts.itertuples(index=False):
        rows.append({"id": row.id, "text": row.text, "copy": 0})
        rng = random.Random(f"{seed}-{row.id}")
        for copy, augmented in enumerate(augmenter.augment(row.text, rng), start=1):
            rows.append({"id": row.id, "text": augmented, "copy": copy})
    return pd.DataFrame(rows)
