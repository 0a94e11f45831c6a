"""Loading models and tokenizers from a local directory or the Hub, and batching text for them."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from . import runtime, timing
from .resources import MissingResourceError


def _load(loader, source: str, **kwargs):
    with timing.loading():
        return _load_from(loader, source, **kwargs)


def _load_from(loader, source: str, **kwargs):
    """``source`` read as a directory where one exists, else as a Hub id (logged, and named in any error)."""
    local = Path(source).expanduser()
    if local.exists():
        return loader.from_pretrained(str(local), **kwargs)
    if source.startswith((".", "/", "~")) or "results/" in source:
        raise MissingResourceError(
            f"model directory {local.resolve()} does not exist; run the stage that writes it first"
        )
    logging.getLogger(__name__).info("%r read as a Hub id: there is no directory %s", source, local.resolve())
    try:  # a Hub name: works for users with network access or a filled Hub cache
        return loader.from_pretrained(source, **kwargs)
    except OSError as error:
        raise MissingResourceError(
            f"could not load {source!r}, read as a Hub id since there is no directory {local.resolve()} ({error}). "
            "Offline, set model.name to 'minilm' (built by prepare_resources) or to a local save_pretrained directory"
        ) from error


def _transformers():
    """The transformers package, told that scikit-learn is not installed before it imports its models: its assisted
    generation (a draft model's confidence threshold, ``roc_curve``) is all it would import scikit-learn for, and
    this workflow never generates text. A job that loads a model and uses no scikit-learn itself (the attacks,
    extract_activations) thus does not import it: about a second of its start-up (docs/measurements.md)."""
    from transformers.utils import import_utils

    import_utils._sklearn_available = False
    import transformers

    return transformers


def load_tokenizer(source: str):
    return _load(_transformers().AutoTokenizer, source)


def load_classifier(source: str, num_labels: int):
    return _load(_transformers().AutoModelForSequenceClassification, source, num_labels=num_labels)


def load_masked_lm(source: str):
    return _load(_transformers().AutoModelForMaskedLM, source)


def load_encoder(source: str):
    """The model without a task head (``AutoModel``), e.g. to read hidden states of every layer."""
    return _load(_transformers().AutoModel, source)


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


class Bf16Weights:
    """Calls ``model`` under :func:`autocast` with its matrix-product weights cast to bf16 once, not at every call.

    Outside one long autocast context, bf16 autocast casts every ``Linear`` weight and bias at every forward pass:
    for an attack's thousands of small query batches, a quarter of the victim's time (benchmarks/attack_engine.py
    ``--cast-check``). Handing autocast those casts (``torch.func.functional_call``) leaves it nothing to cast and
    the arithmetic unchanged: the same logits, bit for bit. A weight that an optimizer step changed in place (A2T's
    attacks on the model being trained) is cast again; shared (tied) weights are left to autocast. Where the
    precision is fp32 the model is called as it is.
    """

    def __init__(self, model):
        self.model = model
        owners = {}
        for name, parameter in model.named_parameters(remove_duplicate=False):
            owners.setdefault(id(parameter), []).append(name)
        self.names = [
            f"{module_name}.{kind}"
            for module_name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)
            for kind, parameter in (("weight", module.weight), ("bias", module.bias))
            if parameter is not None and len(owners[id(parameter)]) == 1
        ]
        self._parameters = dict(model.named_parameters())
        self._versions: list[int] | None = None
        self._casts: dict[str, torch.Tensor] = {}

    def __call__(self, **inputs):
        device = next(self.model.parameters()).device
        with autocast(device):
            if runtime.precision(device) != "bf16":
                return self.model(**inputs)
            return torch.func.functional_call(self.model, self._current_casts(), args=(), kwargs=inputs)

    def _current_casts(self) -> dict[str, torch.Tensor]:
        versions = [self._parameters[name]._version for name in self.names]
        if versions != self._versions:
            with torch.no_grad():
                self._casts = {name: self._parameters[name].to(torch.bfloat16) for name in self.names}
            self._versions = versions
        return self._casts


def adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with its fused kernel (CPU and CUDA): one pass over the parameters instead of a loop of small ops.
    On MiniLM's 22 M parameters a CPU step takes 0.04 s against 0.20-0.25 s for the default (foreach) one
    (benchmarks/train_step.py prints both), a third of a ``base`` step's time saved."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)


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
