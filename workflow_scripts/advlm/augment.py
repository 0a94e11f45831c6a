"""Corpus augmentation with adversarial word substitutions, built from TextAttack components.

TextAttack's own ``Augmenter`` regenerates every candidate text of every word after each single swap,
which costs about a second per sentence; here the positions to swap are drawn once and each drawn
word gets one random candidate from the same TextAttack transformation, so a text costs milliseconds.
"""
from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from .runtime import offline_textattack


class WordSwapAugmenter:
    """Swap ``pct_words_to_swap`` of the words of a text (at least one) for candidates of a TextAttack
    word-swap transformation, ``copies`` times; stopwords and words without a candidate stay as they are."""

    def __init__(self, transformation, stopwords: set[str], pct_words_to_swap: float, copies: int):
        self.transformation = transformation
        self.stopwords = stopwords
        self.pct_words_to_swap = pct_words_to_swap
        self.copies = copies
        self._candidates: dict[str, list[str]] = {}

    def candidates(self, word: str) -> list[str]:
        if word not in self._candidates:  # the transformation's look-up is the expensive part: cache it
            found = [] if word.lower() in self.stopwords else self.transformation._get_replacement_words(word)
            self._candidates[word] = sorted({c for c in found if c != word and c.isalpha()})
        return self._candidates[word]

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


def build_augmenter(name: str, params: dict, resources_dir: str | Path) -> WordSwapAugmenter:
    """``wordnet``: WordNet synonyms (TextAttack's ``WordSwapWordNet``, the PWWS substitution set)."""
    offline_textattack(resources_dir)
    from nltk.corpus import stopwords
    from textattack.transformations import WordSwapWordNet

    transformations = {"wordnet": WordSwapWordNet}
    if name not in transformations:
        raise ValueError(f"unknown augmenter {name!r}; known: {sorted(transformations)}")
    return WordSwapAugmenter(transformations[name](), set(stopwords.words("english")),
                             params["pct_words_to_swap"], params["copies"])


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
