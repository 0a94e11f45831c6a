"""Word activations of every layer (the embeddings and each transformer layer) of a model on the tagged corpus."""

from __future__ import annotations

import collections

import numpy as np
import torch

from .. import models, timing


def kept_words(tokenizer, sentences: list[list[str]], max_length: int) -> list[np.ndarray]:
    """Per sentence, which words keep all their pieces after truncation to ``max_length``.

    A word cut in half by truncation would get a different (partial) aggregate than its siblings, and a word
    the tokenizer maps to no piece at all (e.g. a lone control character) has no activation: both are dropped.
    """
    full = tokenizer(sentences, is_split_into_words=True, verbose=False)
    truncated = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length)
    kept = []
    for i, words in enumerate(sentences):
        full_count = collections.Counter(w for w in full.word_ids(i) if w is not None)
        cut_count = collections.Counter(w for w in truncated.word_ids(i) if w is not None)
        kept.append(np.array([full_count[w] > 0 and cut_count[w] == full_count[w] for w in range(len(words))]))
    return kept


def _aggregated_pieces(word_ids: list, aggregation: str) -> list[tuple[int, int]]:
    """(token position, word) pairs of the pieces that make up each word's vector."""
    pairs = [(t, w) for t, w in enumerate(word_ids) if w is not None]
    if aggregation == "mean":
        return pairs
    if aggregation == "first":
        return [(t, w) for t, w in pairs if t == 0 or word_ids[t - 1] != w]
    if aggregation == "last":
        return [(t, w) for t, w in pairs if t + 1 == len(word_ids) or word_ids[t + 1] != w]
    raise ValueError(f"aggregation must be first, last or mean, not {aggregation!r}")


def extract_activations(
    model_source: str,
    sentences: list[list[str]],
    aggregation: str,
    batch_size: int,
    max_length: int,
    device,
    out_path=None,
):
    """Word activations of every layer: ``(activations [kept words, layers + 1, hidden] float16, kept)``.

    ``kept`` is a boolean array over all words of ``sentences`` in order (see :func:`kept_words`); row ``j``
    of ``activations`` belongs to the ``j``-th kept word. With ``out_path`` the array is a memory-mapped
    ``.npy`` file written batch by batch, so the activations never need to fit in memory.
    """
    tokenizer = models.load_tokenizer(model_source)
    # AutoModel loads the encoder of a classifier or masked-LM checkpoint and drops its head.
    model = models.load_encoder(model_source).to(device).eval()
    timing.watch(model)
    kept = kept_words(tokenizer, sentences, max_length)
    first_row = np.concatenate([[0], np.cumsum([k.sum() for k in kept])])
    shape = (int(first_row[-1]), model.config.num_hidden_layers + 1, model.config.hidden_size)
    if out_path is None:
        activations = np.empty(shape, dtype=np.float16)
    else:
        activations = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float16, shape=shape)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # similar lengths, little padding
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        encoded = tokenizer(
            [sentences[i] for i in batch],
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        rows, batch_index, token_index = [], [], []
        for b, i in enumerate(batch):
            word_rows = first_row[i] + np.cumsum(kept[i]) - 1
            for t, w in _aggregated_pieces(encoded.word_ids(b), aggregation):
                if kept[i][w]:
                    rows.append(word_rows[w])
                    batch_index.append(b)
                    token_index.append(t)
        if not rows:  # every word of the batch was truncated away
            continue
        # No autocast: bf16 keeps fewer mantissa bits than the float16 the activations are stored in.
        with torch.no_grad():
            hidden_states = model(**encoded.to(device), output_hidden_states=True).hidden_states
        pieces = torch.stack(hidden_states, dim=2)[batch_index, token_index].float()  # [pieces, layers, hidden]
        unique_rows, local = np.unique(rows, return_inverse=True)
        local = torch.as_tensor(local, device=pieces.device)
        sums = torch.zeros(len(unique_rows), *shape[1:], device=pieces.device).index_add_(0, local, pieces)
        counts = torch.bincount(local, minlength=len(unique_rows)).view(-1, 1, 1)
        activations[unique_rows] = (sums / counts).cpu().numpy().astype(np.float16)
    return activations, np.concatenate(kept) if kept else np.zeros(0, dtype=bool)
