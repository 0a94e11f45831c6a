"""Continued masked-LM pre-training on a (clean or augmented) corpus."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import artifacts, timing
from .checkpoint import Checkpoints, fingerprint, restore
from .models import adamw, autocast, load_masked_lm, load_tokenizer
from .runtime import provenance, seed_everything

log = logging.getLogger(__name__)


def mask_tokens(
    input_ids: torch.Tensor, special_mask: torch.Tensor, tokenizer, probability: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking (Devlin et al. 2019): choose ``probability`` of the tokens; of those 80 % → [MASK],
    10 % → a random token, 10 % unchanged. Returns (masked inputs, labels with -100 where not chosen)."""
    labels = input_ids.clone()
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & ~special_mask
    labels[~chosen] = -100
    inputs = input_ids.clone()
    draw = torch.rand(input_ids.shape, generator=generator)
    inputs[chosen & (draw < 0.8)] = tokenizer.mask_token_id
    randomised = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[randomised] = torch.randint(len(tokenizer), input_ids.shape, generator=generator)[randomised]
    return inputs, labels


def masked_lm_loss(model, input_ids, attention_mask, labels) -> torch.Tensor:
    """MLM loss computed only at masked positions: the vocabulary projection dominates the cost of a
    step, and projecting the ~15 % masked positions instead of all of them makes a step several times
    cheaper. Falls back to the model's own loss for heads other than BERT's ``cls``."""
    head = getattr(model, "cls", None)
    if head is None:
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    selected = labels != -100
    return F.cross_entropy(head(hidden[selected]).float(), labels[selected])


def with_pooler(model, model_source: str) -> dict:
    """The MLM's weights plus the start model's pooler, which MLM training neither uses nor keeps.

    Without it a classifier fine-tuned from the pre-trained MLM would start from a random pooler while one
    fine-tuned from the start model keeps the pretrained one: a confound between pre-training variants.
    """
    from transformers import AutoModel

    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    pooler = getattr(AutoModel.from_pretrained(model_source), "pooler", None)
    if pooler is not None:
        state.update({f"{model.base_model_prefix}.pooler.{key}": value for key, value in pooler.state_dict().items()})
    return state


def head_parameters(model) -> list[torch.nn.Parameter]:
    """The MLM head's own parameters: those outside the encoder (a decoder tied to the word embeddings is the
    encoder's, and stays frozen while the head warms up)."""
    encoder = {id(parameter) for parameter in model.base_model.parameters()}
    return [parameter for parameter in model.parameters() if id(parameter) not in encoder]


def _next_texts(run: dict, texts: list[str], batch_size: int, generator) -> list[str]:
    """The next batch of texts: the corpus in a fresh seeded order per pass, cycled until the step budget is
    spent. ``run`` holds the order and the position in it, so that a checkpoint can resume mid-pass."""
    if run["order"] is None or run["position"] >= len(run["order"]):
        run["order"], run["position"] = torch.randperm(len(texts), generator=generator).tolist(), 0
        run["passes"] += 1
    indices = run["order"][run["position"] : run["position"] + batch_size]
    run["position"] += batch_size
    return [texts[i] for i in indices]


@torch.no_grad()
def heldout_loss(model, tokenizer, texts, hp, device, seed) -> float:
    """Mean MLM loss on held-out texts with a fixed masking, so before/after values are comparable."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for start in range(0, len(texts), hp["batch_size"]):
        batch = tokenizer(
            texts[start : start + hp["batch_size"]],
            truncation=True,
            max_length=hp["max_length"],
            padding=True,
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        inputs, labels = mask_tokens(
            batch["input_ids"], batch["special_tokens_mask"].bool(), tokenizer, hp["mlm_probability"], generator
        )
        if (labels != -100).any():
            with autocast(device):
                losses.append(
                    float(
                        masked_lm_loss(model, inputs.to(device), batch["attention_mask"].to(device), labels.to(device))
                    )
                )
    return sum(losses) / max(len(losses), 1)


def pretrain(
    model_source: str,
    corpus: list[str],
    out_dir: str | Path,
    hp: dict,
    seed: int,
    device,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    corpus_files: list[str] = (),
) -> dict:
    """Continue MLM pre-training; write ``out_dir/model`` and ``pretrain_log.json``.

    First ``hp['head_warmup_steps']`` steps train the MLM head alone at ``hp['head_lr']`` with the encoder frozen,
    then ``hp['steps']`` steps train the whole model at ``hp['lr']``. A checkpoint without an MLM head (MiniLM)
    gets a random one; trained jointly from the first step, its noise gradients would reshape the encoder before
    the head predicts anything, and the fine-tuned models would carry that damage, not the corpus's effect (the
    linear-probe-then-fine-tune order of Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features").

    ``checkpoint_dir``: where the run saves its state after every pass over the corpus and every
    ``checkpoint_every`` steps (advlm.checkpoint), and resumes from when it finds one. ``corpus_files``: where the
    corpus came from, recorded with its sha256 so that a masked LM's record says which text it read.
    """
    seed_everything(seed)
    out_dir = Path(out_dir)
    tokenizer = load_tokenizer(model_source)
    model = load_masked_lm(model_source).to(device)
    timing.watch(model.base_model)  # masked_lm_loss runs the encoder and the head apart
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(corpus), generator=generator).tolist()
    n_heldout = max(1, int(hp["heldout_fraction"] * len(corpus)))
    heldout = [corpus[i] for i in order[:n_heldout]]
    train_texts = [corpus[i] for i in order[n_heldout:]]
    groups = [{"params": list(model.base_model.parameters())}, {"params": head_parameters(model)}]
    optimizer = adamw(groups, hp["lr"], hp["weight_decay"])
    checkpoints = checkpoint_dir and Checkpoints(
        checkpoint_dir, checkpoint_every, fingerprint(str(model_source), corpus, hp, seed, model.state_dict())
    )

    # what the rest of the run depends on besides model, optimizer and random states (saved in a checkpoint)
    run = {"step": 0, "order": None, "position": 0, "passes": 0, "curve": [], "seconds": 0.0}
    run |= {"loss_before": None, "loss_after_head_warmup": None}
    resumed = checkpoints and checkpoints.load()
    if resumed:
        restore(resumed, model, optimizer, generator=generator)
        run = resumed["run"]
    else:
        run["loss_before"] = heldout_loss(model, tokenizer, heldout, hp, device, seed)
    started = time.perf_counter() - run["seconds"]
    warmup = hp["head_warmup_steps"]
    while run["step"] < warmup + hp["steps"]:
        warming = run["step"] < warmup
        batch = tokenizer(
            _next_texts(run, train_texts, hp["batch_size"], generator),
            truncation=True,
            max_length=hp["max_length"],
            padding=True,
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        run["step"] += 1
        inputs, labels = mask_tokens(
            batch["input_ids"], batch["special_tokens_mask"].bool(), tokenizer, hp["mlm_probability"], generator
        )
        if (labels != -100).any():
            optimizer.param_groups[1]["lr"] = hp["head_lr"] if warming else hp["lr"]
            model.train()
            optimizer.zero_grad(set_to_none=True)
            with autocast(device), _frozen(model.base_model, warming):
                loss = masked_lm_loss(model, inputs.to(device), batch["attention_mask"].to(device), labels.to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            run["curve"].append(float(loss.detach()))
            if run["step"] % 10 == 0:
                phase = " (head warm-up)" if warming else ""
                log.info("step %d%s: MLM loss %.4f", run["step"], phase, run["curve"][-1])
        if warmup and run["step"] == warmup:
            run["loss_after_head_warmup"] = heldout_loss(model, tokenizer, heldout, hp, device, seed)
        pass_end = run["position"] >= len(run["order"])  # one "epoch"
        if checkpoints and (checkpoints.due(run["step"]) or pass_end) and run["step"] < warmup + hp["steps"]:
            _save(checkpoints, run, model, optimizer, generator, started, "pass end" if pass_end else "step")

    loss_after = heldout_loss(model, tokenizer, heldout, hp, device, seed)
    model.save_pretrained(out_dir / "model", state_dict=with_pooler(model, model_source))
    tokenizer.save_pretrained(out_dir / "model")
    record = {
        "model_source": str(model_source),
        "corpus_size": len(corpus),
        "corpus_files": [str(path) for path in corpus_files],
        "corpus_sha256": hashlib.sha256("\n".join(corpus).encode()).hexdigest(),
        "heldout_size": n_heldout,
        "heldout_loss_before": run["loss_before"],
        "heldout_loss_after_head_warmup": run["loss_after_head_warmup"],
        "heldout_loss_after": loss_after,
        "loss_curve": run["curve"],
        "seconds": time.perf_counter() - started,
        "provenance": provenance(seed, {"pretrain": hp}),
    }
    if checkpoints:
        record["checkpoint_seconds"] = checkpoints.seconds
    artifacts.write_json(record, out_dir / "pretrain_log.json")
    if checkpoints:
        checkpoints.remove()
    return record


@contextlib.contextmanager
def _frozen(module: torch.nn.Module, frozen: bool):
    """``module``'s parameters without gradients while ``frozen`` (the head warm-up): the optimizer then leaves
    them, and the word embeddings a tied decoder shares, untouched."""
    if not frozen:
        yield
        return
    previous = [(parameter, parameter.requires_grad) for parameter in module.parameters()]
    for parameter, _ in previous:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, requires_grad in previous:
            parameter.requires_grad_(requires_grad)


def _save(checkpoints, run, model, optimizer, generator, started, where) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "run": run | {"seconds": time.perf_counter() - started},
    }
    checkpoints.save(state, {"where": where, "step": run["step"], "pass": run["passes"]})
