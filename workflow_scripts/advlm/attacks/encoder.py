"""The local sentence encoder: all-MiniLM-L6-v2 with SBERT's mean pooling, the stand-in for the Universal
Sentence Encoder and SBERT in the attacks (``components.MeanPoolSentenceEncoder``) and the encoder the
calibration measures (``advlm.encoder_calibration``)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from .. import models, timing


@functools.cache
def _load_encoder(model_dir: str, device: str):
    model = models.load_encoder(model_dir).to(torch.device(device)).eval()
    timing.watch(model, part="sentence encoder")  # its share of the work: benchmarks/job_costs.py
    return model, models.load_tokenizer(model_dir)


class MeanPooler:
    """Sentence embeddings: mean of the last hidden states over real tokens, L2-normalised (SBERT's recipe
    for all-MiniLM-L6-v2). Embeddings are cached per string until :meth:`clear`."""

    def __init__(self, model_dir: str | Path, device, batch_size: int = 64, max_length: int = 256):
        self.model, self.tokenizer = _load_encoder(str(model_dir), str(device))
        self.device, self.batch_size, self.max_length = torch.device(device), batch_size, max_length
        self.cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> torch.Tensor:
        batch = models.encode(self.tokenizer, texts, self.max_length, self.device)
        hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu()

    def encode(self, sentences) -> torch.Tensor:
        missing = list(dict.fromkeys(s for s in sentences if s not in self.cache))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            for text, vector in zip(chunk, self._encode(chunk)):
                self.cache[text] = vector
        if not sentences:
            return torch.zeros(0, self.model.config.hidden_size)
        return torch.stack([self.cache[s] for s in sentences])

    def clear(self):
        self.cache.clear()
