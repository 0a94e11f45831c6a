"""Corpus augmentation with adversarial word substitutions, built from TextAttack components."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd

from .runtime import offline_textattack


def build_augmenter(name: str, params: dict, resources_dir: str | Path):
    """A TextAttack ``Augmenter`` swapping ``pct_words_to_swap`` of the words of a text, ``copies`` times.

    ``wordnet``: WordNet synonyms (the PWWS substitution set). Stopwords and already swapped words are
    never changed, as in TextAttack's recipes.
    """
    offline_textattack(resources_dir)
    from nltk.corpus import stopwords
    from textattack.augmentation import Augmenter
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.transformations import WordSwapWordNet

    transformations = {"wordnet": lambda: WordSwapWordNet()}
    if name not in transformations:
        raise ValueError(f"unknown augmenter {name!r}; known: {sorted(transformations)}")
    constraints = [RepeatModification(), StopwordModification(stopwords=set(stopwords.words("english")))]
    return Augmenter(transformation=transformations[name](), constraints=constraints,
                     pct_words_to_swap=params["pct_words_to_swap"], transformations_per_example=params["copies"])


def augment_corpus(texts: pd.DataFrame, augmenter, seed: int) -> pd.DataFrame:
    """The original texts (``copy`` 0) followed by their augmented copies (``copy`` 1..k).

    Seeded per text, so the augmentation of one text does not depend on which texts come before it.
    """
    rows = []
    for row in texts.itertuples(index=False):
        rows.append({"id": row.id, "text": row.text, "copy": 0})
        random.seed(f"{seed}-{row.id}")
        np.random.seed(random.randrange(2**32))
        for copy, augmented in enumerate(augmenter.augment(row.text), start=1):
            rows.append({"id": row.id, "text": augmented, "copy": copy})
    return pd.DataFrame(rows)
