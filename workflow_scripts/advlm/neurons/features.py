"""The probe's data: a split of the words by sentence and float32 features standardized on the train split."""

from __future__ import annotations

import numpy as np

CHUNK_BYTES = 64 * 2**20  # rows of float16 activations converted to float32 at a time


def split_by_sentence(sentence_ids: np.ndarray, seed, test_share: float, validation_share: float) -> dict:
    """Word indices of train/validation/test, split by sentence so no context is shared across splits.

    ``seed``: anything numpy's ``default_rng`` takes (an int, or a list such as ``[seed, refit]``)."""
    sentences = np.random.default_rng(seed).permutation(np.unique(sentence_ids))
    n_test, n_validation = round(test_share * len(sentences)), round(validation_share * len(sentences))
    parts = {
        "test": sentences[:n_test],
        "validation": sentences[n_test : n_test + n_validation],
        "train": sentences[n_test + n_validation :],
    }
    return {name: np.flatnonzero(np.isin(sentence_ids, ids)) for name, ids in parts.items()}


def _row_chunk(num_columns: int) -> int:
    return max(1, CHUNK_BYTES // (4 * num_columns))


def standardized_splits(activations: np.ndarray, split: dict) -> dict[str, np.ndarray]:
    """Float32 ``[words, layers * hidden]`` features of each split, standardized with the train split's statistics.

    Standardized features make |w| comparable across neurons whose activation scales differ by orders. The
    float16 activations (a memory map in the workflow) are read in chunks of rows and never converted whole,
    so memory peaks at the float32 features, 4 B x words x neurons (4.0 GB for 100k words of a 13 x 768
    BERT-base), plus a few chunks. A constant neuron gets sd 1, as in scikit-learn's StandardScaler.
    """
    flat = activations.reshape(len(activations), -1)
    rows = _row_chunk(flat.shape[1])

    def chunks(index, dtype):
        for start in range(0, len(index), rows):
            yield slice(start, start + rows), flat[index[start : start + rows]].astype(dtype)

    total, squares = np.zeros(flat.shape[1]), np.zeros(flat.shape[1])
    for _, block in chunks(split["train"], np.float64):
        total += block.sum(axis=0)
        squares += np.square(block).sum(axis=0)
    mean = total / len(split["train"])
    sd = np.sqrt(np.maximum(squares / len(split["train"]) - mean**2, 0))
    sd[sd == 0] = 1
    mean, sd = mean.astype(np.float32), sd.astype(np.float32)
    features = {}
    for name, index in split.items():
        features[name] = np.empty((len(index), flat.shape[1]), dtype=np.float32)
        for part, block in chunks(index, np.float32):
            features[name][part] = (block - mean) / sd
    return features
