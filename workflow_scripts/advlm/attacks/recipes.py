"""The attack recipes, one ``build`` each, composed from TextAttack's components as its recipes are, with the
offline stand-ins (``components``) where a recipe needs a resource that only exists online.

What each recipe is (paper, default options, resources, stand-ins) is data in ``catalog``; :data:`BUILDS`
holds a ``build`` for every catalog record. Every attack forbids modifying a word twice or a stopword;
stopwords are passed explicitly (NLTK's English list from the offline ``nltk_data``; TextFooler's own list),
never looked up by TextAttack.

Imports textattack: import this module only after :func:`advlm.runtime.offline_textattack`.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch
from textattack import Attack
from textattack.constraints.overlap import LevenshteinEditDistance
from textattack.constraints.pre_transformation import (
    InputColumnModification,
    RepeatModification,
    StopwordModification,
)
from textattack.constraints.semantics import WordEmbeddingDistance
from textattack.constraints.semantics.sentence_encoders import SentenceEncoder
from textattack.goal_functions import UntargetedClassification
from textattack.search_methods import GreedyWordSwapWIR
from textattack.transformations import (
    CompositeTransformation,
    WordSwapEmbedding,
    WordSwapNeighboringCharacterSwap,
    WordSwapRandomCharacterDeletion,
    WordSwapRandomCharacterInsertion,
    WordSwapRandomCharacterSubstitution,
    WordSwapWordNet,
)

from ..encoder_calibration import read_calibration
from . import catalog
from .components import (
    LocalWordSwapMaskedLM,
    MeanPoolSentenceEncoder,
    SpacyPartOfSpeech,
    load_embedding,
    load_masked_lm,
)
from .resources import AttackResources
from .truncation import VisibleMaxModificationRate, VisibleMaxWordsPerturbed, visible_word_counter


@dataclasses.dataclass(frozen=True)
class _Context:
    """What a recipe's ``build`` makes its attack from: the recipe, the attacked wrapper, the recipe's options
    (defaults updated with the config's), the query settings and the offline resources."""

    recipe: catalog.Recipe
    wrapper: object
    options: dict
    query_budget: int | None
    batch_size: int
    resources: AttackResources | None

    def need(self) -> AttackResources:
        if self.resources is None:
            raise ValueError(f"attack {self.recipe.name!r} needs resources (embedding, sentence encoder, masked LM)")
        return self.resources

    @property
    def device(self) -> torch.device:
        return next(self.wrapper.model.parameters()).device

    def stopwords(self) -> set:
        from nltk.corpus import stopwords

        return set(stopwords.words("english"))  # NLTK's list from the offline nltk_data, never downloaded

    def embedding(self):
        return load_embedding(str(self.need().embedding_dir))

    def threshold(self) -> float:
        value = self.options["sentence_encoder_threshold"]
        if value == "calibrated":
            return float(read_calibration(self.need().embedding_dir)["thresholds"][self.recipe.name]["value"])
        return float(value)

    def sentence_encoder(self):
        """The recipe's sentence-encoder constraint (window, metric, reference) on the local encoder."""
        original = self.recipe.sentence_encoder
        return MeanPoolSentenceEncoder(
            self.need().encoder_dir,
            threshold=self.threshold(),
            metric=original.metric,
            window_size=original.window_size,
            skip_text_shorter_than_window=original.skip_text_shorter_than_window,
            compare_against_original=original.compare_against_original,
            device=self.device,
        )

    def masked_lm(self, method: str, **kwargs):
        source = self.need().masked_lm
        if not source:
            raise ValueError(f"attack {self.recipe.name!r} needs a masked LM (attack.masked_lm)")
        model, tokenizer = load_masked_lm(str(source), str(self.device))
        max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
        return LocalWordSwapMaskedLM(
            source=str(source),
            method=method,
            masked_language_model=model,
            tokenizer=tokenizer,
            max_length=max_length,
            **kwargs,
        )

    def attack(self, transformation, constraints: list, search_method):
        """The ``textattack.Attack``: the shared goal function (untargeted classification within the query
        budget) and the constraints cheapest first."""
        budget = self.query_budget  # None: unlimited; TextAttack slices lists with it, so it must be an int
        goal_function = UntargetedClassification(
            self.wrapper, query_budget=float("inf") if budget is None else int(budget), model_batch_size=self.batch_size
        )
        return Attack(goal_function, cheap_constraints_first(constraints), transformation, search_method)


@functools.cache
def _textfooler_stopwords() -> frozenset:
    """TextFooler's own stopword list, read from TextAttack's recipe source (it is inline in ``build``)."""
    import ast
    import inspect

    from textattack.attack_recipes import textfooler_jin_2019

    for node in ast.walk(ast.parse(inspect.getsource(textfooler_jin_2019))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "set"
            and node.args
            and isinstance(node.args[0], ast.List)
            and len(node.args[0].elts) > 100
        ):
            return frozenset(ast.literal_eval(node.args[0]))
    raise RuntimeError("TextFooler's stopword list was not found in textattack.attack_recipes.textfooler_jin_2019")


def pwws(ctx):
    """PWWS (Ren et al. 2019) as TextAttack's ``PWWSRen2019``: WordNet synonyms, weighted-saliency order."""
    constraints = [RepeatModification(), StopwordModification(stopwords=ctx.stopwords())]
    return ctx.attack(WordSwapWordNet(), constraints, GreedyWordSwapWIR("weighted-saliency"))


def deepwordbug(ctx):
    """DeepWordBug (Gao et al. 2018) as TextAttack's ``DeepWordBugGao2018`` (all four character edits)."""
    transformation = CompositeTransformation(
        [
            WordSwapNeighboringCharacterSwap(),
            WordSwapRandomCharacterSubstitution(),
            WordSwapRandomCharacterDeletion(),
            WordSwapRandomCharacterInsertion(),
        ]
    )
    constraints = [RepeatModification(), StopwordModification(stopwords=ctx.stopwords()), LevenshteinEditDistance(30)]
    return ctx.attack(transformation, constraints, GreedyWordSwapWIR("unk"))


def textfooler(ctx):
    """TextFooler (Jin et al. 2019) as TextAttack's ``TextFoolerJin2019``, variant: counter-fitted GloVe
    (for paragramcf), spaCy POS tags (for NLTK's), MiniLM with a recalibrated threshold (for USE)."""
    options, embedding = ctx.options, ctx.embedding()
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=_textfooler_stopwords()),
        InputColumnModification(["premise", "hypothesis"], {"premise"}),
        WordEmbeddingDistance(embedding=embedding, min_cos_sim=options["min_cos_sim"]),
        SpacyPartOfSpeech(allow_verb_noun_swap=True),
        ctx.sentence_encoder(),
    ]
    transformation = WordSwapEmbedding(max_candidates=options["max_candidates"], embedding=embedding)
    return ctx.attack(transformation, constraints, GreedyWordSwapWIR(wir_method="delete"))


def bae(ctx):
    """BAE-R (Garg & Ramakrishnan 2020) as TextAttack's ``BAEGarg2019``, variant: the workflow's masked LM
    (for bert-base-uncased), spaCy POS tags, MiniLM with a recalibrated threshold (for USE)."""
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=ctx.stopwords()),
        SpacyPartOfSpeech(allow_verb_noun_swap=True),
        ctx.sentence_encoder(),
    ]
    transformation = ctx.masked_lm("bae", max_candidates=ctx.options["max_candidates"], min_confidence=0.0)
    return ctx.attack(transformation, constraints, GreedyWordSwapWIR(wir_method="delete"))


def bert_attack(ctx):
    """BERT-Attack (Li et al. 2020) as TextAttack's ``BERTAttackLi2020``, variant: the workflow's masked LM,
    MiniLM (for USE; the recipe's whole-text cosine 0.2 hardly ever binds)."""
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=ctx.stopwords()),
        VisibleMaxWordsPerturbed(ctx.options["max_perturbed_share"], visible_word_counter(ctx.wrapper)),
        ctx.sentence_encoder(),
    ]
    transformation = ctx.masked_lm("bert-attack", max_candidates=ctx.options["max_candidates"])
    return ctx.attack(transformation, constraints, GreedyWordSwapWIR(wir_method="unk"))


def a2t(ctx):
    """A2T (Yoo & Qi 2021) as TextAttack's ``A2TYoo2021`` (mlm=False), variant: counter-fitted GloVe, spaCy
    POS tags, MiniLM with a recalibrated threshold (for SBERT stsb-distilbert-base)."""
    options, embedding = ctx.options, ctx.embedding()
    constraints = [
        RepeatModification(),
        StopwordModification(stopwords=ctx.stopwords()),
        InputColumnModification(["premise", "hypothesis"], {"premise"}),
        SpacyPartOfSpeech(allow_verb_noun_swap=False),
        VisibleMaxModificationRate(
            float(options["max_modification_rate"]),
            int(options["min_modifications"]),
            visible_word_counter(ctx.wrapper),
        ),
        ctx.sentence_encoder(),
        WordEmbeddingDistance(embedding=embedding, min_cos_sim=options["min_cos_sim"]),
    ]
    wrapper = ctx.wrapper
    max_len = getattr(wrapper, "max_length", None) or min(
        1024, wrapper.tokenizer.model_max_length, wrapper.model.config.max_position_embeddings - 2
    )
    transformation = WordSwapEmbedding(max_candidates=options["max_candidates"], embedding=embedding)
    search_method = GreedyWordSwapWIR(wir_method="gradient", truncate_words_to=max_len)
    return ctx.attack(transformation, constraints, search_method)


# catalog name -> build (the function named after the recipe); a catalog record without its build fails here.
BUILDS = {recipe.name: globals()[recipe.name.replace("-", "_")] for recipe in catalog.RECIPES}


def attack_options(name: str, params: dict) -> dict:
    """The recipe defaults of ``name`` updated with ``params["options"]`` (unknown keys are errors)."""
    defaults = catalog.recipe(name).options
    given = dict(params.get("options") or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"attack {name!r} has no options {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **given}


def build_attack(name: str, wrapper, params: dict, resources: AttackResources | str | Path | None = None):
    """The ``textattack.Attack`` called ``name`` against ``wrapper`` (made by ``running.make_wrapper``).

    ``params``: ``query_budget`` (None: unlimited), ``batch_size`` and ``options`` (per-attack options, see the
    catalog's defaults). ``resources`` is needed by the recipes that need an embedding, a sentence encoder or a
    masked LM (the catalog says which).
    """
    recipe = catalog.recipe(name)
    resources = None if resources is None else AttackResources.coerce(resources)
    context = _Context(
        recipe, wrapper, attack_options(name, params), params.get("query_budget"), params["batch_size"], resources
    )
    return BUILDS[name](context)


def cheap_constraints_first(constraints: list) -> list:
    """The constraints with the sentence encoders last, otherwise in the recipe's order.

    TextAttack keeps a candidate text only if every constraint accepts it, and each constraint judges the
    candidate on its own, so their order changes the cost, not the result (tests/test_attacks.py checks this).
    An encoder runs a transformer on every candidate it sees; after the look-up constraints (embedding
    distance, part of speech) it sees far fewer (A2T: 60 % of the attack's time before, see docs/attacks.md).
    """
    return sorted(constraints, key=lambda constraint: isinstance(constraint, SentenceEncoder))
