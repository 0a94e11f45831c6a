import json
from importlib.metadata import version

import pandas as pd
import pytest
import torch

from advlm import mlm, models, training

TEXTS = [
    "a great and moving film",
    "dull , boring and far too long",
    "the best thing this year",
    "a mess of a movie",
    "funny and warm",
    "painfully bad acting",
] * 4
FRAME = pd.DataFrame({"id": [str(i) for i in range(len(TEXTS))], "text": TEXTS, "label": [1, 0, 1, 0, 1, 0] * 4})
HP = {
    "lr": 1e-3,
    "weight_decay": 0.0,
    "batch_size": 4,
    "epochs": 2,
    "warmup_ratio": 0.0,
    "max_length": 16,
    "max_grad_norm": 1.0,
    "eval_batch_size": 8,
}


def _finetune(tiny_bert, out_dir, seed):
    return training.finetune(str(tiny_bert), FRAME, FRAME, out_dir, HP, "base", {}, seed, 2, torch.device("cpu"))


def test_finetune_is_reproducible_and_keeps_the_last_epoch(tiny_bert, tmp_path):
    first = _finetune(tiny_bert, tmp_path / "a", seed=5)
    again = _finetune(tiny_bert, tmp_path / "b", seed=5)
    other = _finetune(tiny_bert, tmp_path / "c", seed=6)
    assert [h["train_loss"] for h in first["history"]] == [h["train_loss"] for h in again["history"]]
    assert [h["train_loss"] for h in first["history"]] != [h["train_loss"] for h in other["history"]]
    assert first["kept_epoch"] == first["epochs_run"] == HP["epochs"] and first["selection"] == "last"
    record = json.loads((tmp_path / "a" / "train_log.json").read_text())
    assert record["provenance"]["seed"] == 5 and record["provenance"]["torch_threads"] == 1
    assert record["provenance"]["versions"]["transformers"] == version("transformers")
    saved = models.load_classifier(str(tmp_path / "a" / "model"), 2)
    tokenizer = models.load_tokenizer(str(tmp_path / "a" / "model"))
    probabilities = models.predict_proba(saved, tokenizer, FRAME["text"].tolist(), 8, 16, torch.device("cpu"))
    assert (probabilities.argmax(1).numpy() == FRAME["label"].to_numpy()).mean() == pytest.approx(
        first["history"][first["kept_epoch"] - 1]["validation"]["accuracy"]
    )


def test_unknown_method_and_stray_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="unknown training method 'fgsm'"):
        training.build_method("fgsm", {})
    with pytest.raises(ValueError, match="takes no hyperparameters"):
        training.build_method("base", {"epsilon": 0.1})


def test_predictions_do_not_depend_on_batching(tiny_bert):
    model = models.load_classifier(str(tiny_bert), 2)
    tokenizer = models.load_tokenizer(str(tiny_bert))
    one = models.predict_proba(model, tokenizer, TEXTS[:6], 1, 16, torch.device("cpu"))
    many = models.predict_proba(model, tokenizer, TEXTS[:6], 6, 16, torch.device("cpu"))
    assert torch.allclose(one, many, atol=1e-5)


def test_masking_follows_bert_recipe(tiny_bert):
    tokenizer = models.load_tokenizer(str(tiny_bert))
    batch = tokenizer(TEXTS * 20, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    special = batch["special_tokens_mask"].bool()
    inputs, labels = mlm.mask_tokens(batch["input_ids"], special, tokenizer, 0.15, torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert not (chosen & special).any()
    assert chosen.sum() / (~special).sum() == pytest.approx(0.15, abs=0.02)
    masked = (inputs == tokenizer.mask_token_id) & chosen
    assert masked.sum() / chosen.sum() == pytest.approx(0.8, abs=0.05)
    assert (labels[chosen] == batch["input_ids"][chosen]).all()


def test_masked_position_loss_equals_the_full_loss(tiny_bert):
    model = models.load_masked_lm(str(tiny_bert)).eval()
    tokenizer = models.load_tokenizer(str(tiny_bert))
    batch = tokenizer(TEXTS[:4], padding=True, return_tensors="pt", return_special_tokens_mask=True)
    inputs, labels = mlm.mask_tokens(
        batch["input_ids"], batch["special_tokens_mask"].bool(), tokenizer, 0.3, torch.Generator().manual_seed(1)
    )
    full = model(input_ids=inputs, attention_mask=batch["attention_mask"], labels=labels).loss
    fast = mlm.masked_lm_loss(model, inputs, batch["attention_mask"], labels)
    assert fast.item() == pytest.approx(full.item(), rel=1e-5)


MLM_HP = {
    "lr": 3e-3,
    "weight_decay": 0.0,
    "batch_size": 8,
    "steps": 25,
    "max_length": 16,
    "mlm_probability": 0.15,
    "heldout_fraction": 0.25,
    "head_warmup_steps": 5,  # the resume test kills a run after its warm-up: the warm-up's record must survive
    "head_lr": 1e-2,
}


def test_pretraining_lowers_heldout_loss_and_keeps_the_head(tiny_bert, tmp_path):
    hp = MLM_HP
    record = mlm.pretrain(str(tiny_bert), TEXTS * 4, tmp_path, hp, 0, torch.device("cpu"))
    assert record["heldout_loss_after"] < record["heldout_loss_before"] - 0.5
    from transformers import AutoModelForMaskedLM

    _, info = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "model"), output_loading_info=True)
    assert info["missing_keys"] == []  # the trained MLM head is saved (BAE/BERT-Attack need it)


def test_head_warmup_trains_the_head_alone(tiny_bert, tmp_path):
    hp = MLM_HP | {"head_warmup_steps": 10, "steps": 1}
    record = mlm.pretrain(str(tiny_bert), TEXTS * 4, tmp_path, hp, 0, torch.device("cpu"))
    assert len(record["loss_curve"]) == 11
    assert record["heldout_loss_after_head_warmup"] < record["heldout_loss_before"] - 0.1

    warmed = mlm.pretrain(str(tiny_bert), TEXTS * 4, tmp_path / "warm", hp | {"steps": 0}, 0, torch.device("cpu"))
    assert warmed["heldout_loss_after"] == record["heldout_loss_after_head_warmup"]  # the same warm-up, then stop
    start = models.load_masked_lm(str(tiny_bert)).state_dict()
    after = models.load_masked_lm(str(tmp_path / "warm" / "model")).state_dict()
    changed = {key for key in start if not torch.equal(start[key], after[key])}
    # only the head moved: not the encoder, nor the word embeddings its decoder is tied to
    assert changed and all(key.startswith("cls.") and "decoder.weight" not in key for key in changed), changed


def test_pretraining_keeps_the_start_models_pooler(tiny_bert, tmp_path):
    from transformers import AutoModel

    start_dir = tmp_path / "start"  # a start model with a pooler, as MiniLM and bert-base have
    AutoModel.from_pretrained(str(tiny_bert)).save_pretrained(start_dir)
    models.load_tokenizer(str(tiny_bert)).save_pretrained(start_dir)
    hp = MLM_HP | {"lr": 1e-2, "steps": 2, "head_warmup_steps": 0}
    mlm.pretrain(str(start_dir), TEXTS, tmp_path / "out", hp, 0, torch.device("cpu"))
    start, pretrained = (models.load_classifier(str(path), 2) for path in (start_dir, tmp_path / "out" / "model"))
    # MLM training drops the pooler; without restoring it, pre-trained variants would start from a random one
    assert torch.equal(pretrained.bert.pooler.dense.weight, start.bert.pooler.dense.weight)
    assert not torch.equal(
        pretrained.bert.encoder.layer[0].output.dense.weight, start.bert.encoder.layer[0].output.dense.weight
    )


class Killed(Exception):
    """Stands in for a kill: the run stops between two steps, its checkpoint left behind."""


def _kill_on_call(monkeypatch, module, name, call):
    """Make ``module.name`` raise Killed on its ``call``-th call (training.loop._batch: once per step)."""
    original, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def _same_weights(a, b):
    return (a / "model" / "model.safetensors").read_bytes() == (b / "model" / "model.safetensors").read_bytes()


@pytest.mark.parametrize(
    "method, every, kill_on_step, resumed_from",
    [
        ("base", 0, 9, "epoch end"),  # 6 steps per epoch: killed in epoch 2, resumed from the end of epoch 1
        ("pgd", 2, 9, "step"),  # resumed mid-epoch from step 8 (pgd draws random starts)
        ("lds", 4, 3, None),  # killed before the first checkpoint: starts afresh
    ],
)
def test_interrupted_finetune_resumes_to_the_same_weights(
    tiny_bert, tmp_path, monkeypatch, method, every, kill_on_step, resumed_from
):
    def finetune(out, checkpoints):
        return training.finetune(
            str(tiny_bert),
            FRAME,
            FRAME,
            tmp_path / out,
            HP,
            method,
            {},
            5,
            2,
            torch.device("cpu"),
            checkpoint_dir=checkpoints,
            checkpoint_every=every,
        )

    straight = finetune("straight", None)
    with monkeypatch.context() as patch:
        _kill_on_call(patch, training.loop, "_batch", kill_on_step)
        with pytest.raises(Killed):
            finetune("killed", tmp_path / "checkpoint")
    progress = tmp_path / "checkpoint" / "progress.json"
    assert (json.loads(progress.read_text())["where"] if progress.exists() else None) == resumed_from
    resumed = finetune("killed", tmp_path / "checkpoint")
    assert _same_weights(tmp_path / "straight", tmp_path / "killed")
    assert [(h["train_loss"], h["validation"]) for h in resumed["history"]] == [
        (h["train_loss"], h["validation"]) for h in straight["history"]
    ]
    assert resumed["kept_epoch"] == straight["kept_epoch"]
    assert not (tmp_path / "checkpoint").exists()  # removed once the job's outputs are written


def test_a_checkpoint_of_other_settings_is_not_resumed(tiny_bert, tmp_path, monkeypatch):
    def finetune(out, lr):
        return training.finetune(
            str(tiny_bert),
            FRAME,
            FRAME,
            tmp_path / out,
            HP | {"lr": lr},
            "base",
            {},
            5,
            2,
            torch.device("cpu"),
            checkpoint_dir=tmp_path / "checkpoint",
            checkpoint_every=2,
        )

    with monkeypatch.context() as patch:
        _kill_on_call(patch, training.loop, "_batch", 9)
        with pytest.raises(Killed):
            finetune("killed", 1e-3)
    finetune("changed", 1e-2)  # the user changed the learning rate: the old checkpoint must not be resumed
    finetune("fresh", 1e-2)
    assert _same_weights(tmp_path / "changed", tmp_path / "fresh")


@pytest.mark.parametrize("every, kill_on_step", [(0, 14), (5, 14)])  # 9 steps per pass: resumed from 9 / 10
def test_interrupted_pretraining_resumes_to_the_same_weights(tiny_bert, tmp_path, monkeypatch, every, kill_on_step):
    hp = MLM_HP

    def pretrain(out, checkpoints):
        return mlm.pretrain(
            str(tiny_bert),
            TEXTS * 4,
            tmp_path / out,
            hp,
            0,
            torch.device("cpu"),
            checkpoint_dir=checkpoints,
            checkpoint_every=every,
        )

    straight = pretrain("straight", None)
    with monkeypatch.context() as patch:
        _kill_on_call(patch, mlm, "_next_texts", kill_on_step)
        with pytest.raises(Killed):
            pretrain("killed", tmp_path / "checkpoint")
    assert json.loads((tmp_path / "checkpoint" / "progress.json").read_text())["step"] == (9 if every == 0 else 10)
    resumed = pretrain("killed", tmp_path / "checkpoint")
    assert _same_weights(tmp_path / "straight", tmp_path / "killed")
    assert resumed["loss_curve"] == straight["loss_curve"]
    assert resumed["heldout_loss_before"] == straight["heldout_loss_before"]
    assert not (tmp_path / "checkpoint").exists()


def test_length_grouped_batches_hold_similar_lengths_in_a_seeded_random_order():
    lengths = torch.randint(5, 60, (203,), generator=torch.Generator().manual_seed(0)).tolist()
    order = torch.randperm(203, generator=torch.Generator().manual_seed(1)).tolist()

    def grouped(seed):
        return training.length_grouped(order, lengths, 8, torch.Generator().manual_seed(seed))

    def padded(indices):  # tokens computed when each batch is padded to its longest text
        return sum(8 * max(lengths[i] for i in indices[s : s + 8]) for s in range(0, len(indices), 8))

    first = grouped(2)
    assert sorted(first) == list(range(203)) and first == grouped(2) and first != grouped(3)
    assert padded(first) < 0.8 * padded(order)
    # 203 = 25 batches of 8 + 3: the short batch is the last, the longest texts of the last group (order[128:])
    last_group = sorted(order[128:], key=lambda i: lengths[i])
    assert sorted(lengths[i] for i in first[-3:]) == [lengths[i] for i in last_group[-3:]]
