"""Loading models and tokenizers from a local directory or the Hub, and batching text for them."""

from __future__ import annotations

from pathlib import Path

import torch

from . import runtime, timing
from .resources import MissingResourceError


def _load(loader, source: str, **kwargs):
    with timing.loading():
        return _load_from(loader, source, **kwargs)


def _load_from(loader, source: str, **kwargs):
    local = Path(source)
    if local.exists():
        return loader.from_pretrained(str(local), **kwargs)
    if source.startswith((".", "/")) or "results/" in source:
        raise MissingResourceError(f"model directory {source} does not exist; run the stage that writes it first")
    try:  # a Hub name: works for users with network access or a filled Hub cache
        return loader.from_pretrained(source, **kwargs)
    except OSError as error:
        raise MissingResourceError(
            f"could not load {source!r} from the Hub ({error}). Offline, set model.name to 'minilm' "
            "(built by prepare_resources) or to a local save_pretrained directory"
        ) from error


def load_tokenizer(source: str):
    from transformers import AutoTokenizer

    return _load(AutoTokenizer, source)


def load_classifier(source: str, num_labels: int):
    from transformers import AutoModelForSequenceClassification

    return _load(AutoModelForSequenceClassification, source, num_labels=num_labels)


def load_masked_lm(source: str):
    from transformers import AutoModelForMaskedLM

    return _load(AutoModelForMaskedLM, source)


def load_encoder(source: str):
    """The model without a task head (``AutoModel``), e.g. to read hidden states of every layer."""
    from transformers import AutoModel

    return _load(AutoModel, source)


def encode(tokenizer, texts: list[str], max_length: int, device=None) -> dict:
    """Tokenize one batch, padded to its longest sequence (never to the model's maximum)."""
    batch = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {key: value.to(device) for key, value in batch.items()} if device is not None else dict(batch)


def token_lengths(tokenizer, texts: list[str], max_length: int) -> list[int]:
    """Tokens per text as the model sees it (special tokens included, truncated to ``max_length``)."""
    return [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]


def length_sorted_batches(tokenizer, texts: list[str], batch_size: int, max_length: int):
    """Yield (indices, texts) batches of similar length, so that padding to the longest wastes little."""
    lengths = token_lengths(tokenizer, texts, max_length)
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        yield indices, [texts[i] for i in indices]


def autocast(device: torch.device):
    """bf16 autocast where the process's precision is bf16 (:func:`advlm.runtime.precision`: on a GPU, and on a
    CPU with bf16 units unless the config says fp32); otherwise a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=runtime.precision(device) == "bf16")


@torch.no_grad()
def predict_proba(model, tokenizer, texts: list[str], batch_size: int, max_length: int, device) -> torch.Tensor:
    """Class probabilities for ``texts`` (in their order), computed in length-sorted batches."""
    model.eval()
    probabilities = torch.empty(len(texts), model.config.num_labels)
    for indices, batch_texts in length_sorted_batches(tokenizer, texts, batch_size, max_length):
        with autocast(device):
            logits = model(**encode(tokenizer, batch_texts, max_length, device)).logits
        probabilities[indices] = torch.softmax(logits.float(), dim=-1).cpu()
    return probabilities
