import random

import numpy as np
import pandas as pd
import pytest

from advlm import augment

TEXTS = pd.DataFrame(
    {
        "id": ["a", "b"],
        "text": ["the film is a wonderful and moving story about a brave family", "it was the worst movie of the year"],
    }
)


def test_wordnet_augmentation_swaps_the_configured_share(resources_dir):
    augmenter = augment.build_augmenter("wordnet", {"pct_words_to_swap": 0.2, "copies": 2}, resources_dir)
    corpus = augment.augment_corpus(TEXTS, augmenter, seed=3)
    assert corpus.groupby("id")["copy"].apply(list).to_dict() == {"a": [0, 1, 2], "b": [0, 1, 2]}
    original = corpus[corpus["copy"] == 0].set_index("id")["text"]
    for row in corpus[corpus["copy"] > 0].itertuples():
        before, after = original[row.id].split(), row.text.split()
        changed = [(b, a) for b, a in zip(before, after) if b != a]
        assert len(before) == len(after) and len(changed) == max(1, round(0.2 * len(before)))
        for old, new in changed:
            assert old not in augmenter.stopwords and new in augmenter.candidates(old)
    assert corpus.equals(augment.augment_corpus(TEXTS, augmenter, seed=3))  # seeded
    assert not corpus.equals(augment.augment_corpus(TEXTS, augmenter, seed=4))


def test_texts_without_candidates_stay_unchanged(resources_dir):
    augmenter = augment.build_augmenter("wordnet", {"pct_words_to_swap": 0.5, "copies": 1}, resources_dir)
    assert augmenter.augment("it is the of and", random.Random(0)) == ["it is the of and"]


# --- the embedding augmenter ---------------------------------------------------------------------------

# A word's vector: a unit axis of its own cluster plus small offsets on private axes, so the cosine of two
# words is known exactly (e.g. wonderful~marvelous 0.96, wonderful~superb 0.86, wonderful~terrible 0.64).
TINY_VECTORS = {
    "wonderful": {0: 1.0},
    "marvelous": {0: 1.0, 1: 0.3},
    "superb": {0: 1.0, 2: 0.6},
    "terrible": {0: 1.0, 11: 1.2},
    "awful": {0: 1.0, 11: 1.2, 12: 0.3},
    "film": {3: 1.0},
    "movie": {3: 1.0, 4: 0.4},
    "story": {5: 1.0},
    "tale": {5: 1.0, 13: 0.5},
    "brave": {6: 1.0},
    "courageous": {6: 1.0, 14: 0.5},
    "moving": {7: 1.0},
    "touching": {7: 1.0, 15: 0.5},
    "worst": {8: 1.0},
    "poorest": {8: 1.0, 16: 0.5},
    "family": {9: 1.0},
    "the": {10: 1.0},
    "these": {10: 1.0, 17: 0.2},  # stopwords with a close neighbour: never swapped
}
EMBEDDING_PARAMS = {"pct_words_to_swap": 0.2, "copies": 2, "max_candidates": 50, "min_cos_sim": 0.8}


def write_tiny_embedding(directory, neighbours):
    """The files build_embeddings writes (vectors.npy, vocab.txt, nn.npy), for TINY_VECTORS."""
    from advlm import artifacts, embeddings

    vocab = list(TINY_VECTORS)
    vectors = np.zeros((len(vocab), 18), dtype=np.float32)
    for row, word in enumerate(vocab):
        for axis, value in TINY_VECTORS[word].items():
            vectors[row, axis] = value
    vectors = embeddings.normalise(vectors)
    directory.mkdir(parents=True)
    np.save(directory / "vectors.npy", vectors)
    np.save(directory / "nn.npy", embeddings.nearest_neighbours(vectors, neighbours))
    artifacts.write_lines(vocab, directory / "vocab.txt")
    return directory


@pytest.fixture(scope="module")
def tiny_embedding(tmp_path_factory):
    return write_tiny_embedding(tmp_path_factory.mktemp("embedding") / "counterfitted", len(TINY_VECTORS) - 1)


def cos(a, b):
    va, vb = (np.array([TINY_VECTORS[w].get(axis, 0.0) for axis in range(18)]) for w in (a, b))
    return float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))


def test_embedding_candidates_are_close_neighbours(resources_dir, tiny_embedding):
    assert cos("wonderful", "marvelous") > cos("wonderful", "superb") > 0.8 > cos("wonderful", "terrible")
    augmenter = augment.build_augmenter("embedding", EMBEDDING_PARAMS, resources_dir, tiny_embedding)
    neighbours = augmenter.transformation._get_replacement_words("wonderful")
    assert "terrible" in neighbours  # a neighbour, but too far: the cosine constraint drops it
    assert augmenter.candidates("wonderful") == ["marvelous", "superb"]
    assert augmenter.candidates("Wonderful") == ["Marvelous", "Superb"]  # case kept, as WordSwapEmbedding does
    assert augmenter.candidates("family") == [] and augmenter.candidates("year") == []  # none close / unknown
    assert augmenter.candidates("the") == []  # a stopword, though 'these' is close
    nearest = augment.build_augmenter(
        "embedding", {**EMBEDDING_PARAMS, "max_candidates": 1}, resources_dir, tiny_embedding
    )
    assert nearest.candidates("wonderful") == ["marvelous"]
    loose = augment.build_augmenter(
        "embedding", {**EMBEDDING_PARAMS, "min_cos_sim": 0.5}, resources_dir, tiny_embedding
    )
    assert loose.candidates("wonderful") == ["awful", "marvelous", "superb", "terrible"]


def test_embedding_augmentation_swaps_the_configured_share(resources_dir, tiny_embedding):
    augmenter = augment.build_augmenter("embedding", EMBEDDING_PARAMS, resources_dir, tiny_embedding)
    corpus = augment.augment_corpus(TEXTS, augmenter, seed=3)
    assert corpus.groupby("id")["copy"].apply(list).to_dict() == {"a": [0, 1, 2], "b": [0, 1, 2]}
    original = corpus[corpus["copy"] == 0].set_index("id")["text"]
    swapped = set()
    for row in corpus[corpus["copy"] > 0].itertuples():
        before, after = original[row.id].split(), row.text.split()
        changed = [(b, a) for b, a in zip(before, after) if b != a]
        assert len(before) == len(after) and len(changed) == max(1, round(0.2 * len(before))) == 2
        for old, new in changed:
            assert old not in augmenter.stopwords and cos(old, new) >= 0.8
            swapped.add(old)
    assert swapped <= {"film", "wonderful", "moving", "story", "brave", "worst", "movie"}
    assert corpus.equals(augment.augment_corpus(TEXTS, augmenter, seed=3))  # seeded
    assert not corpus.equals(augment.augment_corpus(TEXTS, augmenter, seed=4))


def test_embedding_augmenter_needs_the_embedding(resources_dir, tmp_path):
    for missing in (None, tmp_path / "counterfitted"):
        with pytest.raises(FileNotFoundError, match="build_embeddings"):
            augment.build_augmenter("embedding", EMBEDDING_PARAMS, resources_dir, missing)
    short = write_tiny_embedding(tmp_path / "short", neighbours=3)  # fewer neighbours kept than asked for
    with pytest.raises(ValueError, match="attack.embedding.neighbours"):
        augment.build_augmenter("embedding", {**EMBEDDING_PARAMS, "max_candidates": 5}, resources_dir, short)
    with pytest.raises(ValueError, match="unknown augmenter"):
        augment.build_augmenter("glove", EMBEDDING_PARAMS, resources_dir)
