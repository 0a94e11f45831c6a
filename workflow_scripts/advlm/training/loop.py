"""The training loop: ``finetune`` trains a model with one method for a fixed number of epochs, in length-grouped
batches, counting its passes, with the budget ramp, the kept epoch's selection and in-job checkpoints."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import get_constant_schedule_with_warmup

from .. import artifacts, convergence, timing
from ..checkpoint import Checkpoints, fingerprint, restore
from ..evaluation import classification_metrics
from ..models import adamw, autocast, encode, load_classifier, load_tokenizer, predict_proba, token_lengths
from ..runtime import provenance, seed_everything
from .base import BaseMethod
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


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The finetune section's keys the loop reads (``hp``; schemas/config.schema.yaml, finetune)."""

    epochs: int
    batch_size: int
    eval_batch_size: int
    lr: float
    weight_decay: float
    warmup_ratio: float
    max_grad_norm: float
    max_length: int
    budget_ramp_epochs: float = 0
    selection: str = "last"
    extra_epochs: int = 0  # at most this many past ``epochs`` while the convergence check fails

    @classmethod
    def of(cls, hp: dict) -> Schedule:
        schedule = cls(**{field.name: hp[field.name] for field in dataclasses.fields(cls) if field.name in hp})
        if schedule.selection not in SELECTIONS:
            raise ValueError(f"finetune.selection: {schedule.selection!r} is not one of {sorted(SELECTIONS)}")
        return schedule

    def steps(self, examples: int) -> int:
        return -(-examples // self.batch_size)


# Which epoch a run keeps: the last one (every model trains exactly as long), or the best validation accuracy among
# the epochs whose every step ran at full strength (never an epoch of the budget ramp).
SELECTIONS = {"last", "best"}


def has_budget(method) -> bool:
    """Whether the method (a class or an instance) has a continuous perturbation budget that the ramp scales
    (embedding-space, synonym-hull)."""
    cls = method if isinstance(method, type) else type(method)
    return cls.set_budget_scale is not BaseMethod.set_budget_scale


@dataclasses.dataclass
class Training:
    """The objects of one run besides its progress (``run``): what every part of the loop needs."""

    model: torch.nn.Module
    tokenizer: object
    method: BaseMethod
    own: list  # the method's own trainable parameters (InfoBERT's critic)
    optimizer: torch.optim.Optimizer
    scheduler: object
    generator: torch.Generator
    schedule: Schedule
    validation: pd.DataFrame
    device: object
    ramp_steps: int
    checkpoints: Checkpoints | None = None

    def budget_scale(self, step: int) -> float:
        """The perturbation budget's share at optimizer step ``step`` (0-based): the ramp, then 1."""
        return min(1.0, (step + 1) / self.ramp_steps) if self.ramp_steps else 1.0


def _new_run() -> dict:
    """A run's progress, everything it depends on besides model, optimizer, scheduler and random states: the epoch,
    its examples (a2t: with this epoch's adversarial ones), their order and how far through it we are."""
    return {
        "epoch": 0,
        "step": 0,
        "examples": None,
        "order": None,
        "position": 0,
        "losses": [],
        "full_strength_steps": 0,
        "history": [],
        "kept": None,
        "kept_state": None,
        "seconds": 0.0,
        "correct": [],  # validation correctness per epoch, epoch 0 (the start model) first: the convergence check
        "passes": PassCounter.empty(),
    }


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
    """Fine-tune ``model_source`` with one method for ``hp['epochs']`` epochs and keep one of them (``selection``).

    ``hp``: the finetune section's training keys (``Schedule``). Every epoch runs: there is no early stopping, so
    that every method trains at least the same steps over the clean set, and the learning rate is constant after its
    warm-up, so that a plateau at the end is the model's and not a schedule's (docs/protocol.md). A run whose
    convergence check fails after ``epochs`` trains on, one epoch at a time, until it passes or ``extra_epochs``
    more have run (``continues``): a run still improving gets the epochs to show its plateau, and after the last
    the check can still fail. With ``budget_ramp_epochs`` > 0 the method's perturbation budget rises linearly from 0
    to its value over that many epochs' steps (``set_budget_scale``); the kept epoch always ran at full strength. The
    start model is evaluated on the validation split first (epoch 0), for the convergence check (advlm.convergence).

    ``method_context``: the run objects a method needs beyond the loop's own (``attack_context`` of a2t,
    ``adversarial_examples`` of advaug, ``counterfitted`` of ascc and dne; see their ``needs``).

    ``checkpoint_dir``: where the run saves its state at the end of every epoch, after an a2t epoch's attack
    and every ``checkpoint_every`` steps (advlm.checkpoint), and resumes from when it finds one.

    Writes ``out_dir/model`` (``save_pretrained`` with the tokenizer) and ``out_dir/train_log.json``.
    """
    seed_everything(seed)
    schedule = Schedule.of(hp)
    tokenizer = load_tokenizer(model_source)
    model = load_classifier(model_source, num_labels).to(device)
    timing.watch(model)
    method = build_method(
        method_name,
        method_params,
        tokenizer=tokenizer,
        max_length=schedule.max_length,
        device=device,
        seed=seed,
        **(method_context or {}),
    )
    method_params = method_hyperparameters(method)  # recorded with the defaults filled in
    ramp_steps = round(schedule.budget_ramp_epochs * schedule.steps(len(train))) if has_budget(method) else 0
    _require_full_strength_epoch(schedule, method, len(train), ramp_steps)
    own = method.own_parameters(model)  # trained with the model's (InfoBERT's critic), not saved with it
    optimizer = adamw([*model.parameters(), *own], schedule.lr, schedule.weight_decay)
    total_steps = sum(schedule.steps(method.epoch_size(epoch, len(train))) for epoch in range(schedule.epochs))
    scheduler = get_constant_schedule_with_warmup(optimizer, int(schedule.warmup_ratio * total_steps))
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
    run_objects = Training(
        model, tokenizer, method, own, optimizer, scheduler, torch.Generator().manual_seed(seed), schedule,
        validation, device, ramp_steps, checkpoints or None,
    )  # fmt: skip
    run = _resume(run_objects) or _new_run()
    started = time.perf_counter() - run["seconds"]
    if not run["correct"]:
        run["start_validation"] = _validate(run_objects, run)
    passes = PassCounter(model, run["passes"])
    more = _trains_on(run_objects, run)
    while more:
        _train_epoch(run_objects, run, passes, run["epoch"], train, started)
        _end_epoch(run_objects, run, run["epoch"], started)
        more = _trains_on(run_objects, run)
        if checkpoints and more:
            _save(run_objects, run, "epoch end", started)
    passes.remove()
    record = _record(run_objects, run, method_name, method_params, model_source, seed, hp, started)
    model.load_state_dict(run["kept_state"])
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir / "model")
    tokenizer.save_pretrained(out_dir / "model")
    artifacts.write_json(record, out_dir / "train_log.json")
    if checkpoints:
        checkpoints.remove()
    return record


def continues(epochs_run: int, epochs: int, extra_epochs: int, converged) -> bool:
    """Whether a run trains another epoch: every one of ``epochs``; then, up to ``extra_epochs`` more, while its
    convergence check fails (``converged``: a callable, asked only after ``epochs``)."""
    if epochs_run < epochs:
        return True
    return epochs_run < epochs + extra_epochs and not converged()


def _trains_on(objects: Training, run: dict) -> bool:
    schedule = objects.schedule
    return continues(
        run["epoch"], schedule.epochs, schedule.extra_epochs, lambda: _convergence(objects, run)["converged"]
    )


def _convergence(objects: Training, run: dict) -> dict:
    """The run's convergence check as it stands (advlm.convergence)."""
    return convergence.check(
        [np.array(c) for c in run["correct"]],
        run["kept"]["epoch"],
        objects.validation["label"].to_numpy(),
        [epoch["train_loss"] for epoch in run["history"]],
    )


def _require_full_strength_epoch(schedule: Schedule, method, examples: int, ramp_steps: int) -> None:
    """The kept epoch must run at full strength: the budget ramp must end before the last epoch starts."""
    last_epoch_start = sum(schedule.steps(method.epoch_size(e, examples)) for e in range(schedule.epochs - 1))
    if ramp_steps > last_epoch_start + 1:
        raise ValueError(
            f"finetune.budget_ramp_epochs {schedule.budget_ramp_epochs} leaves no epoch at full strength in "
            f"finetune.epochs {schedule.epochs}: the ramp must end before the last epoch"
        )


def _resume(objects: Training) -> dict | None:
    """The run's progress from its checkpoint, with model, optimizer, scheduler and random states restored."""
    resumed = objects.checkpoints and objects.checkpoints.load()
    if not resumed:
        return None
    restore(resumed, objects.model, objects.optimizer, objects.scheduler, objects.generator)
    with torch.no_grad():
        for parameter, saved in zip(objects.own, resumed["method"], strict=True):
            parameter.copy_(saved)
    run = resumed["run"]
    if run["kept_state"] is None and run["kept"] is not None:  # saved when the model was the kept one
        run["kept_state"] = copy.deepcopy(objects.model.state_dict())
    return run


def _save(objects: Training, run: dict, where: str, started: float) -> None:
    """Checkpoint the run; the kept weights are stored only where they are not the model's own."""
    kept_is_model = run["kept"] is not None and run["kept"] is run["history"][-1] and run["position"] == 0
    state = {
        "model": objects.model.state_dict(),
        "optimizer": objects.optimizer.state_dict(),
        "scheduler": objects.scheduler.state_dict(),
        "generator": objects.generator.get_state(),
        "method": [parameter.detach().clone() for parameter in objects.own],
        "run": run
        | {"seconds": time.perf_counter() - started, "kept_state": None if kept_is_model else run["kept_state"]},
    }
    progress = {"where": where, "epoch": run["epoch"] + 1, "step": run["step"], "position": run["position"]}
    objects.checkpoints.save(state, progress)


def _validate(objects: Training, run: dict) -> dict:
    """Validation metrics of the model as it is; its per-example correctness is appended to the run's."""
    schedule, validation = objects.schedule, objects.validation
    probabilities = predict_proba(
        objects.model, objects.tokenizer, validation["text"].tolist(), schedule.eval_batch_size,
        schedule.max_length, objects.device,
    ).numpy()  # fmt: skip
    labels = validation["label"].to_numpy()
    run["correct"].append((probabilities.argmax(axis=1) == labels).tolist())
    return classification_metrics(probabilities, labels)


def _train_epoch(objects: Training, run: dict, passes: PassCounter, epoch: int, train, started: float) -> None:
    """One epoch's steps, from where the run is (a resumed epoch keeps its examples and order)."""
    schedule, method, model = objects.schedule, objects.method, objects.model
    if run["examples"] is None:  # a new epoch
        with passes.counting("examples"):
            examples = method.epoch_examples(epoch, model, train)
        order = torch.randperm(len(examples), generator=objects.generator).tolist()
        lengths = token_lengths(objects.tokenizer, examples["text"].tolist(), schedule.max_length)
        order = length_grouped(order, lengths, schedule.batch_size, objects.generator)
        run.update(examples=examples, order=order, position=0, losses=[], full_strength_steps=0)
        if objects.checkpoints and method.regenerates_examples:  # an attack's examples are worth keeping
            _save(objects, run, "examples", started)
    examples, order = run["examples"], run["order"]
    for start in range(run["position"], len(order), schedule.batch_size):
        batch = _batch(examples, order[start : start + schedule.batch_size], objects.tokenizer, schedule.max_length,
                       objects.device)  # fmt: skip
        model.train()
        objects.optimizer.zero_grad(set_to_none=True)
        scale = objects.budget_scale(run["step"])
        if objects.ramp_steps:
            method.set_budget_scale(scale)
        with autocast(objects.device), passes.counting("step"):
            run["losses"].append(method.backward(model, batch))
        torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.max_grad_norm)
        objects.optimizer.step()
        objects.scheduler.step()
        run["full_strength_steps"] += scale >= 1.0
        run["position"], run["step"] = start + schedule.batch_size, run["step"] + 1
        if objects.checkpoints and objects.checkpoints.due(run["step"]) and run["position"] < len(order):
            _save(objects, run, "step", started)


def _end_epoch(objects: Training, run: dict, epoch: int, started: float) -> None:
    """Validate, add the epoch to the history and keep its weights if the selection rule takes it."""
    metrics = _validate(objects, run)
    examples, steps = run["examples"], len(run["losses"])
    entry = {
        "epoch": epoch + 1,
        "train_loss": float(np.mean(run["losses"])),
        "train_examples": len(examples),
        "adversarial": examples.attrs.get("adversarial"),
        "perturbation": realised_size(objects.method),
        "budget_scale": objects.budget_scale(run["step"] - 1),
        "full_strength_share": run["full_strength_steps"] / steps if steps else 0.0,
        "validation": metrics,
        "seconds": time.perf_counter() - started,
    }
    run["history"].append(entry)
    log.info("epoch %d: loss %.4f, validation accuracy %.4f", epoch + 1, entry["train_loss"], metrics["accuracy"])
    if _keeps(objects.schedule.selection, run["kept"], entry):
        run["kept"], run["kept_state"] = entry, copy.deepcopy(objects.model.state_dict())
    run.update(epoch=epoch + 1, examples=None, order=None, position=0, losses=[], full_strength_steps=0)


def _keeps(selection: str, kept: dict | None, entry: dict) -> bool:
    """Whether ``entry`` replaces the kept epoch: never a ramp epoch; then the last, or the better validation."""
    if entry["full_strength_share"] < 1.0:
        return False
    if selection == "last" or kept is None:
        return True
    return entry["validation"]["accuracy"] > kept["validation"]["accuracy"]


def _record(objects: Training, run: dict, method_name, method_params, model_source, seed, hp, started) -> dict:
    """The training record (train_log.json): the curve, the kept epoch and its strength, convergence, the
    equal-footing figures and provenance."""
    history, kept = run["history"], run["kept"]
    return {
        "method": method_name,
        "method_params": method_params,
        "model_source": str(model_source),
        "history": history,
        "kept_epoch": kept["epoch"],
        "selection": objects.schedule.selection,
        "kept_strength": {
            "budget_scale": kept["budget_scale"] if objects.ramp_steps or has_budget(objects.method) else None,
            "epsilon": method_params["epsilon"] * kept["budget_scale"] if "epsilon" in method_params else None,
            "full_strength_share": kept["full_strength_share"],
        },
        "start_validation": run["start_validation"],
        "epochs_run": len(history),
        # epochs past finetune.epochs because the check failed there; each one was one more look at the check
        "extension_epochs": len(history) - objects.schedule.epochs,
        "convergence": _convergence(objects, run),
        "validation_correct": ["".join("01"[c] for c in correct) for correct in run["correct"]],
        "train_seconds": time.perf_counter() - started,
        "steps": run["step"],
        "examples_seen": sum(epoch["train_examples"] for epoch in history),
        # the kept model's: the epochs after the kept one did not shape its weights
        "adversarial": adversarial_counts(objects.method, history[: kept["epoch"]]),
        "passes": run["passes"],
        "passes_per_step": PassCounter.per_step(run["passes"], run["step"]),
        "provenance": provenance(seed, {"training": hp, "method": method_params}),
    } | ({"checkpoint_seconds": objects.checkpoints.seconds} if objects.checkpoints else {})


def adversarial_counts(method, history: list[dict]) -> dict:
    """The adversarial examples behind the epochs of ``history``: ``examples``, the successful adversarial examples
    trained on (a2t's of every epoch, each epoch's new; advaug's one set, the same in every epoch), and ``seen``, the
    adversarial examples in the steps (per epoch, summed). 0 for methods without adversarial examples."""
    per_epoch = [(epoch.get("adversarial") or {}).get("added", 0) for epoch in history]
    distinct = sum(per_epoch) if method.regenerates_examples else max(per_epoch, default=0)
    return {"examples": distinct, "seen": sum(per_epoch)}
