import random

import pandas as pd

from advlm import augment

TEXTS = pd.DataFrame({"id": ["a", "b"], "text": ["the film is a wonderful and moving story about a brave family",
                                                 "it was the worst movie of the year"]})


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
