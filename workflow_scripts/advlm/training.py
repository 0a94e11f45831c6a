"""Fine-tuning: one training loop; each method is a small class holding its own math.

A method implements ``backward(model, batch)``: it computes its loss for one batch and calls
``backward()`` itself (so that methods that accumulate gradients over several passes, such as FreeLB,
fit the same loop) and returns the loss value for logging. ``epoch_examples`` lets a method change
the training data of an epoch (input-space methods regenerate adversarial examples there).
"""
from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import get_linear_schedule_with_warmup

from . import io as aio
from .evaluation import classification_metrics
from .models import autocast, encode, load_classifier, load_tokenizer, predict_proba
from .runtime import provenance, seed_everything

log = logging.getLogger(__name__)


class BaseMethod:
    """Plain fine-tuning: cross-entropy on the clean batch."""

    name = "base"

    def __init__(self, **hyperparameters):
        if hyperparameters:
            raise ValueError(f"method {self.name!r} takes no hyperparameters, got {sorted(hyperparameters)}")

    def epoch_examples(self, epoch: int, model, examples: pd.DataFrame) -> pd.DataFrame:
        return examples

    def backward(self, model, batch: dict) -> float:
        loss = F.cross_entropy(model(**batch["inputs"]).logits.float(), batch["labels"])
        loss.backward()
        return float(loss.detach())


METHODS = {method.name: method for method in (BaseMethod,)}


def build_method(name: str, hyperparameters: dict):
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name](**hyperparameters)


def _batches(examples: pd.DataFrame, tokenizer, batch_size: int, max_length: int, device, generator):
    order = torch.randperm(len(examples), generator=generator).tolist()
    texts, labels = examples["text"].tolist(), examples["label"].to_numpy()
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        yield {
            "inputs": encode(tokenizer, [texts[i] for i in indices], max_length, device),
            "labels": torch.as_tensor(labels[indices], device=device),
        }


def finetune(model_source: str, train: pd.DataFrame, validation: pd.DataFrame, out_dir: str | Path,
             hp: dict, method_name: str, method_params: dict, seed: int, num_labels: int, device) -> dict:
    """Fine-tune ``model_source`` with one method; keep the checkpoint with the best validation accuracy.

    Writes ``out_dir/model`` (``save_pretrained`` with the tokenizer) and ``out_dir/train_log.json``.
    """
    seed_everything(seed)
    out_dir = Path(out_dir)
    tokenizer = load_tokenizer(model_source)
    model = load_classifier(model_source, num_labels).to(device)
    method = build_method(method_name, method_params)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    steps_per_epoch = -(-len(train) // hp["batch_size"])
    total_steps = steps_per_epoch * hp["epochs"]
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp["warmup_ratio"] * total_steps), total_steps)
    generator = torch.Generator().manual_seed(seed)

    history, best, best_state = [], None, None
    started = time.perf_counter()
    for epoch in range(hp["epochs"]):
        examples = method.epoch_examples(epoch, model, train)
        losses = []
        for batch in _batches(examples, tokenizer, hp["batch_size"], hp["max_length"], device, generator):
            model.train()
            optimizer.zero_grad(set_to_none=True)
            with autocast(device):
                losses.append(method.backward(model, batch))
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["max_grad_norm"])
            optimizer.step()
            scheduler.step()
        probabilities = predict_proba(model, tokenizer, validation["text"].tolist(), hp["eval_batch_size"],
                                      hp["max_length"], device).numpy()
        metrics = classification_metrics(probabilities, validation["label"].to_numpy())
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "train_examples": len(examples),
                        "validation": metrics, "seconds": time.perf_counter() - started})
        log.info("epoch %d: loss %.4f, validation accuracy %.4f", epoch + 1, history[-1]["train_loss"],
                 metrics["accuracy"])
        if best is None or metrics["accuracy"] > best["validation"]["accuracy"]:
            best, best_state = history[-1], copy.deepcopy(model.state_dict())

    model.load_state_dict(best_state)
    model.save_pretrained(out_dir / "model")
    tokenizer.save_pretrained(out_dir / "model")
    record = {"method": method_name, "method_params": method_params, "model_source": str(model_source),
              "history": history, "best_epoch": best["epoch"], "train_seconds": time.perf_counter() - started,
              "steps": total_steps, "provenance": provenance(seed, {"training": hp, "method": method_params})}
    aio.write_json(record, out_dir / "train_log.json")
    return record
