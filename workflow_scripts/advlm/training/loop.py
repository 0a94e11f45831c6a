"""The training loop: ``finetune`` trains a model with one method, in length-grouped batches, counting its passes,
with early stopping and in-job checkpoints."""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import get_linear_schedule_with_warmup

from .. import artifacts, convergence, timing
from ..checkpoint import Checkpoints, fingerprint, restore
from ..evaluation import classification_metrics
from ..models import adamw, autocast, encode, load_classifier, load_tokenizer, predict_proba, token_lengths
from ..runtime import provenance, seed_everything
from .geometry import realised_size
from .registry import build_method, method_hyperparameters

log = logging.getLogger(__name__)


# Batches are drawn from groups of this many batches sorted by length (as transformers' group_by_length).
LENGTH_GROUP_BATCHES = 16


def length_grouped(order: list[int], lengths, batch_size: int, generator: torch.Generator) -> list[int]:
    """``order`` rearranged so that each batch of ``batch_size`` holds texts of similar length: padding to the
    longest text of a batch then wastes little (on Rotten Tomatoes at length 64, a third less time per step).
    Consecutive groups of ``LENGTH_GROUP_BATCHES`` batches of the random order are sorted by length and cut into
    batches, and the full batches are shuffled, so each epoch still sees a fresh random set of batches, in random
    order; a short last batch stays last, so that the batches are the consecutive slices of the result."""
    group = batch_size * LENGTH_GROUP_BATCHES
    batches = []
    for start in range(0, len(order), group):
        members = sorted(order[start : start + group], key=lambda index: lengths[index])
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    short = [batches.pop()] if batches and len(batches[-1]) < batch_size else []
    shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()] + short
    return [index for batch in shuffled for index in batch]


def _batch(examples: pd.DataFrame, indices: list[int], tokenizer, max_length: int, device) -> dict:
    batch = {
        "inputs": encode(tokenizer, examples["text"].iloc[indices].tolist(), max_length, device),
        "labels": torch.as_tensor(examples["label"].to_numpy()[indices], device=device),
    }
    if "weight" in examples:
        batch["weights"] = torch.as_tensor(examples["weight"].to_numpy(np.float32)[indices], device=device)
    return batch


def _stops_early(run: dict, hp: dict) -> bool:
    """Early stopping: ``patience`` epochs have passed since the best validation accuracy."""
    patience = hp.get("patience", 0)
    return patience > 0 and len(run["history"]) - run["best"]["epoch"] >= patience


class PassCounter:
    """Counts the model's forward passes and the backward passes through it (a forward whose output is in an
    autograd graph: every method here backpropagates each such pass once), per named context: ``step`` (a
    method's training step) and ``examples`` (an input-space method's attack on the training set). Passes outside
    a context (validation) are not counted. The counts are a training record's equal-footing figures."""

    def __init__(self, model, counts: dict):
        self.counts, self.context = counts, None
        self.handle = model.register_forward_hook(self._count)

    @staticmethod
    def empty() -> dict:
        return {context: {"forward": 0, "backward": 0} for context in ("step", "examples")}

    @staticmethod
    def per_step(counts: dict, steps: int) -> dict:
        return {kind: counts["step"][kind] / steps if steps else 0.0 for kind in ("forward", "backward")}

    def _count(self, module, args, output) -> None:
        if self.context is not None:
            self.counts[self.context]["forward"] += 1
            self.counts[self.context]["backward"] += int(output[0].requires_grad)

    @contextlib.contextmanager
    def counting(self, context: str):
        self.context = context
        try:
            yield
        finally:
            self.context = None

    def remove(self) -> None:
        self.handle.remove()


def finetune(
    model_source: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    out_dir: str | Path,
    hp: dict,
    method_name: str,
    method_params: dict,
    seed: int,
    num_labels: int,
    device,
    method_context: dict | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
) -> dict:
    """Fine-tune ``model_source`` with one method; keep the checkpoint with the best validation accuracy.

    ``hp``: the finetune section's training keys. ``epochs`` is the most epochs run; with ``patience`` > 0 the
    run stops after ``patience`` epochs without a better validation accuracy (early stopping). With
    ``budget_ramp_epochs`` > 0 the method's perturbation budget rises linearly from 0 to its value over that many
    epochs' steps (``set_budget_scale``). The start model is evaluated on the validation split first (epoch 0), so
    that the convergence check (advlm.convergence) can compare the last epoch with the one before.

    ``method_context``: the run objects a method needs beyond the loop's own (``attack_context`` of a2t,
    ``adversarial_examples`` of advaug, ``counterfitted`` of ascc and dne; see their ``needs``).

    ``checkpoint_dir``: where the run saves its state at the end of every epoch, after an a2t epoch's attack
    and every ``checkpoint_every`` steps (advlm.checkpoint), and resumes from when it finds one.

    Writes ``out_dir/model`` (``save_pretrained`` with the tokenizer) and ``out_dir/train_log.json``.
    """
    seed_everything(seed)
    out_dir = Path(out_dir)
    tokenizer = load_tokenizer(model_source)
    model = load_classifier(model_source, num_labels).to(device)
    timing.watch(model)
    method = build_method(
        method_name,
        method_params,
        tokenizer=tokenizer,
        max_length=hp["max_length"],
        device=device,
        seed=seed,
        **(method_context or {}),
    )
    method_params = method_hyperparameters(method)  # recorded with the defaults filled in
    own = method.own_parameters(model)  # trained with the model's (InfoBERT's critic), not saved with it
    optimizer = adamw([*model.parameters(), *own], hp["lr"], hp["weight_decay"])
    total_steps = sum(-(-method.epoch_size(epoch, len(train)) // hp["batch_size"]) for epoch in range(hp["epochs"]))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp["warmup_ratio"] * total_steps), total_steps)
    generator = torch.Generator().manual_seed(seed)
    checkpoints = checkpoint_dir and Checkpoints(
        checkpoint_dir,
        checkpoint_every,
        fingerprint(
            str(model_source),
            hp,
            method_name,
            method_params,
            seed,
            num_labels,
            getattr(method, "adversarial", None),
            {k: v for k, v in (method_context or {}).items() if k != "adversarial_examples"},
            train,
            validation,
            model.state_dict(),
        ),
    )

    # Everything the rest of the run depends on besides model, optimizer, scheduler and random states: the
    # epoch, its examples (a2t: with this epoch's adversarial ones), their order and how far through it we are.
    run = {
        "epoch": 0,
        "step": 0,
        "examples": None,
        "order": None,
        "position": 0,
        "losses": [],
        "history": [],
        "best": None,
        "best_state": None,
        "seconds": 0.0,
        "correct": [],  # validation correctness per epoch, epoch 0 (the start model) first: the convergence check
        "passes": PassCounter.empty(),
    }
    resumed = checkpoints and checkpoints.load()
    if resumed:
        restore(resumed, model, optimizer, scheduler, generator)
        with torch.no_grad():
            for parameter, saved in zip(own, resumed["method"], strict=True):
                parameter.copy_(saved)
        run = resumed["run"]
        if run["best_state"] is None and run["best"] is not None:  # saved when the model was the best one
            run["best_state"] = copy.deepcopy(model.state_dict())

    def save(where: str) -> None:
        best_is_model = run["best"] is not None and run["best"] is run["history"][-1] and run["position"] == 0
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "method": [parameter.detach().clone() for parameter in own],
            "run": run
            | {"seconds": time.perf_counter() - started, "best_state": None if best_is_model else run["best_state"]},
        }
        checkpoints.save(
            state, {"where": where, "epoch": run["epoch"] + 1, "step": run["step"], "position": run["position"]}
        )

    labels = validation["label"].to_numpy()

    def validate() -> dict:
        probabilities = predict_proba(
            model, tokenizer, validation["text"].tolist(), hp["eval_batch_size"], hp["max_length"], device
        ).numpy()
        run["correct"].append((probabilities.argmax(axis=1) == labels).tolist())
        return classification_metrics(probabilities, labels)

    started = time.perf_counter() - run["seconds"]
    if not run["correct"]:
        run["start_validation"] = validate()
    ramp_steps = hp.get("budget_ramp_epochs", 0) * -(-len(train) // hp["batch_size"])
    passes = PassCounter(model, run["passes"])
    for epoch in range(run["epoch"], hp["epochs"]):
        if run["examples"] is None:  # a new epoch; a resumed one has its examples and order
            with passes.counting("examples"):
                examples = method.epoch_examples(epoch, model, train)
            order = torch.randperm(len(examples), generator=generator).tolist()
            lengths = token_lengths(tokenizer, examples["text"].tolist(), hp["max_length"])
            order = length_grouped(order, lengths, hp["batch_size"], generator)
            run.update(examples=examples, order=order, position=0, losses=[])
            if checkpoints and method.regenerates_examples:  # an attack's examples are worth keeping
                save("examples")
        examples, order = run["examples"], run["order"]
        for start in range(run["position"], len(order), hp["batch_size"]):
            batch = _batch(examples, order[start : start + hp["batch_size"]], tokenizer, hp["max_length"], device)
            model.train()
            optimizer.zero_grad(set_to_none=True)
            if ramp_steps:
                method.set_budget_scale(min(1.0, (run["step"] + 1) / ramp_steps))
            with autocast(device), passes.counting("step"):
                run["losses"].append(method.backward(model, batch))
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            run["position"], run["step"] = start + hp["batch_size"], run["step"] + 1
            if checkpoints and checkpoints.due(run["step"]) and run["position"] < len(order):
                save("step")
        metrics = validate()
        run["history"].append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(run["losses"])),
                "train_examples": len(examples),
                "adversarial": examples.attrs.get("adversarial"),
                "perturbation": realised_size(method),
                "validation": metrics,
                "seconds": time.perf_counter() - started,
            }
        )
        log.info(
            "epoch %d: loss %.4f, validation accuracy %.4f",
            epoch + 1,
            run["history"][-1]["train_loss"],
            metrics["accuracy"],
        )
        if run["best"] is None or metrics["accuracy"] > run["best"]["validation"]["accuracy"]:
            run["best"], run["best_state"] = run["history"][-1], copy.deepcopy(model.state_dict())
        run.update(epoch=epoch + 1, examples=None, order=None, position=0, losses=[])
        if _stops_early(run, hp):
            log.info(
                "early stop after epoch %d: no better validation accuracy for %d epochs", epoch + 1, hp["patience"]
            )
            break
        if checkpoints and epoch + 1 < hp["epochs"]:
            save("epoch end")

    passes.remove()
    history, best = run["history"], run["best"]
    model.load_state_dict(run["best_state"])
    model.save_pretrained(out_dir / "model")
    tokenizer.save_pretrained(out_dir / "model")
    record = {
        "method": method_name,
        "method_params": method_params,
        "model_source": str(model_source),
        "history": history,
        "best_epoch": best["epoch"],
        "start_validation": run["start_validation"],
        "epochs_run": len(history),
        "stopped_early": len(history) < hp["epochs"],
        "convergence": convergence.check([np.array(c) for c in run["correct"]], best["epoch"], labels),
        "train_seconds": time.perf_counter() - started,
        "steps": run["step"],
        "examples_seen": sum(epoch["train_examples"] for epoch in history),
        "passes": run["passes"],
        "passes_per_step": PassCounter.per_step(run["passes"], run["step"]),
        "provenance": provenance(seed, {"training": hp, "method": method_params}),
    }
    if checkpoints:
        record["checkpoint_seconds"] = checkpoints.seconds  # this attempt's saves
    artifacts.write_json(record, out_dir / "train_log.json")
    if checkpoints:
        checkpoints.remove()
    return record
