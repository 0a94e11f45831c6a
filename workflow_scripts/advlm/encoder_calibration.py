"""The sentence-encoder calibration of the attacks, a part of the resource stage ``build_embeddings``: the
recipes' thresholds recalibrated for the local encoder (MiniLM), written as ``calibration.json`` beside the
counter-fitted vectors and read back by the attacks (``read_calibration``). Which recipes have a sentence
encoder, its original settings and how its threshold is recalibrated come from ``advlm.attacks.catalog``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from . import embeddings, runtime
from .attacks import catalog
from .attacks.encoder import MeanPooler
from .attacks.resources import manifest_digest

CALIBRATION_FILE = "calibration.json"


def read_calibration(embedding_dir: str | Path) -> dict:
    path = Path(embedding_dir) / CALIBRATION_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run the build_embeddings rule "
            "(snakemake results/resources/counterfitted), or give numeric thresholds"
        )
    return json.loads(path.read_text())


def _setting(window: int | None) -> str:
    """The name of a comparison setting in the record: ``window15`` (15-word windows) or ``text`` (whole texts)."""
    return f"window{window}" if window else "text"


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


def _calibration_pairs(
    texts: list[str], synonyms: dict, antonyms: dict, unrelated: list[str], stopwords: set, size: int, seed: int
):
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
        replacements = {
            "synonym": synonyms[word][rng.integers(len(synonyms[word]))],
            "antonym": antonyms[word][rng.integers(len(antonyms[word]))],
            "unrelated": unrelated[rng.integers(len(unrelated))],
        }
        if replacements["unrelated"] in (word, *synonyms[word], *antonyms[word]):
            continue
        out.append((text, i, replacements))
        if len(out) == size:
            break
    return out


def _quantiles(values) -> dict:
    values = np.asarray(values, float)
    return {f"q{int(q * 100):02d}": float(np.quantile(values, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)} | {
        "mean": float(values.mean()),
        "n": int(len(values)),
    }


def calibrate_sentence_encoder(
    texts: list[str],
    embedding_dir: str | Path,
    encoder_dir: str | Path,
    resources_dir: str | Path,
    size: int = 600,
    seed: int = 0,
    device="cpu",
) -> dict:
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
    runtime.offline_textattack(resources_dir)
    from nltk.corpus import stopwords as nltk_stopwords

    embedding_dir = Path(embedding_dir)
    vocab = (embedding_dir / "vocab.txt").read_text().splitlines()
    pairs = np.load(embedding_dir / "pairs.npz")
    synonyms, antonyms = (
        embeddings.pair_lists(vocab, pairs["synonyms"]),
        embeddings.pair_lists(vocab, pairs["antonyms"]),
    )
    stop = set(nltk_stopwords.words("english"))
    unrelated = [word for word in vocab[:10000] if word not in stop]  # the frequent words (vocab is by frequency)
    swaps = _calibration_pairs(texts, synonyms, antonyms, unrelated, stop, size, seed)
    if len(swaps) < 10:
        raise ValueError(f"only {len(swaps)} calibration swaps found in {len(texts)} texts")
    encoder = MeanPooler(encoder_dir, device)
    kinds = ("synonym", "unrelated", "antonym")

    def similarities(window):
        originals, swapped = [], {kind: [] for kind in kinds}
        for text, i, replacements in swaps:
            if window and text.num_words < window:
                continue  # the recipes skip texts shorter than the window

            def view(t, i=i):  # the text the recipe's encoder compares: a window around the swap, or all of it
                return t.text_window_around_index(i, window) if window else t.text

            originals.append(view(text))
            for kind in kinds:
                word = replacements[kind].capitalize() if text.words[i].istitle() else replacements[kind]
                swapped[kind].append(view(text.replace_word_at_index(i, word)))
        base = encoder.encode(originals)
        return {kind: (base * encoder.encode(swapped[kind])).sum(dim=1).numpy() for kind in kinds}

    recipes = [recipe for recipe in catalog.RECIPES if recipe.sentence_encoder]
    settings, sims = {}, {}
    for window in dict.fromkeys(recipe.sentence_encoder.window_size for recipe in recipes):
        setting = _setting(window)
        sims[setting] = similarities(window)
        threshold, error = eer_threshold(sims[setting]["synonym"], sims[setting]["unrelated"])
        settings[setting] = {
            "window_size": window,
            **{kind: _quantiles(sims[setting][kind]) for kind in kinds},
            "eer_threshold_cosine": threshold,
            "equal_error_rate": error,
        }

    def acceptance(setting, cosine):
        return {kind: float((values >= cosine - 1e-12).mean()) for kind, values in sims[setting].items()}

    def angular(cosine):
        return 1 - math.acos(max(-1.0, min(1.0, cosine))) / math.pi

    def cosine_of(original):
        threshold = original.threshold
        return math.cos((1 - threshold) * math.pi) if original.metric == "angular" else threshold

    def calibrated(recipe) -> tuple[float, str]:
        """The recalibrated cosine threshold of ``recipe`` (its ``calibration``) and the rule, in words."""
        original = recipe.sentence_encoder
        if recipe.calibration == "equal_error_rate":
            where = f"{original.window_size}-word windows" if original.window_size else "whole texts"
            return (
                settings[_setting(original.window_size)]["eer_threshold_cosine"],
                f"equal-error-rate threshold of synonym vs unrelated-word swaps, {where}",
            )
        if recipe.calibration == "textfooler_ratio":
            textfooler = catalog.recipe("textfooler")
            ratio = (1 - cosine_of(original)) / (1 - cosine_of(textfooler.sentence_encoder))
            return (
                1 - ratio * (1 - calibrated(textfooler)[0]),
                f"TextFooler's calibrated cosine distance x {ratio:.4f} ({recipe.title}'s original cosine "
                "distance over TextFooler's)",
            )
        if recipe.calibration == "original":
            return original.threshold, "the recipe's value, kept (it does not bind one-word swaps)"
        raise ValueError(f"attack {recipe.name!r}: unknown calibration {recipe.calibration!r}")

    thresholds = {}
    for recipe in recipes:
        original, (cosine, rule) = recipe.sentence_encoder, calibrated(recipe)
        setting = _setting(original.window_size)
        thresholds[recipe.name] = {
            "metric": original.metric,
            "window_size": original.window_size,
            "value": angular(cosine) if original.metric == "angular" else cosine,
            "cosine": cosine,
            "rule": rule,
            "original": dataclasses.asdict(original),
            "acceptance": acceptance(setting, cosine),
            "acceptance_of_original_value_unrecalibrated": acceptance(setting, cosine_of(original)),
        }
    return {
        "procedure": calibrate_sentence_encoder.__doc__.split("Returns")[0].strip(),
        "encoder": {
            "directory": Path(encoder_dir).name,
            "identity": manifest_digest(Path(encoder_dir)),
            "pooling": "mean over real tokens, L2-normalised",
        },
        "sample": {
            "texts": len(texts),
            "swaps": len(swaps),
            "seed": seed,
            "examples": [{"text": t.text, "word": t.words[i], **r} for t, i, r in swaps[:10]],
        },
        "settings": settings,
        "thresholds": thresholds,
    }
