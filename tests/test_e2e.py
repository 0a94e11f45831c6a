"""The whole DAG on a tiny random BERT and a few dozen examples: every output's content is checked."""

import json
import re
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
import yaml
from smk import ROOT, job_counts, run, write_overlay
from test_workflow import TINY_JOBS
from tiny_model import build_tiny_bert

from advlm import artifacts

# tests/config/tiny.yaml's methods, and the opt-in ones (the synonym-hull family and InfoBERT) added by the overlay
OPT_IN = ["infobert", "ascc", "dne"]
TRAINED = [("none", "base"), ("clean", "base"), ("augmented", "base"), ("none", "advaug"), ("none", "a2t")]
MODELS = [f"rotten_tomatoes/{p}/{m}/seed{s}" for p, m in TRAINED + [("none", m) for m in OPT_IN] for s in (1, 2)]
# every job of a new model: its fine-tuning, evaluation, 2 attack shards and their gathering, its neuron probes
JOBS = TINY_JOBS | {
    rule: TINY_JOBS[rule] + per_model * len(OPT_IN) * 2
    for rule, per_model in {
        "finetune": 1,
        "evaluate": 1,
        "attack": 2,
        "gather_attack": 1,
        "extract_activations": 1,
        "probe_neurons": 1,
    }.items()
}
REFERENCE = "rotten_tomatoes/none/pretrained/seed0"  # the start model without fine-tuning, probed as reference


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    tiny = build_tiny_bert(workdir / "tiny_bert")
    methods = yaml.safe_load((ROOT / "tests/config/tiny.yaml").read_text())["finetune"]["methods"] + OPT_IN
    overlay = write_overlay(workdir, model={"name": str(tiny), "max_length": 32}, finetune={"methods": methods})
    result = run(workdir, configfiles=[overlay])
    run(workdir, "--report", "results/report.html", configfiles=[overlay])
    return workdir, overlay, result


def test_every_job_ran(workflow):
    _, _, result = workflow
    assert job_counts(result.stdout + result.stderr) == JOBS


def test_data_splits(workflow):
    workdir, _, _ = workflow
    splits = {
        s: artifacts.read_examples(workdir / f"results/data/rotten_tomatoes/{s}.jsonl")
        for s in ("train", "validation", "test")
    }
    assert {s: len(f) for s, f in splits.items()} == {"train": 48, "validation": 16, "test": 16}
    assert all(set(f["label"]) == {0, 1} and f["text"].str.len().min() > 0 for f in splits.values())
    assert not set(splits["train"]["id"]) & set(splits["test"]["id"])
    tweets = artifacts.read_examples(workdir / "results/data/vader/tweets.jsonl")
    assert len(tweets) == 16 and ((tweets["rating"] > 0.5) == (tweets["label"] == 1)).all()


def test_augmented_corpus_and_pretraining(workflow):
    workdir, _, _ = workflow
    corpus = artifacts.read_examples(workdir / "results/corpus/augmented.jsonl")
    train = artifacts.read_examples(workdir / "results/data/rotten_tomatoes/train.jsonl")
    assert (corpus["copy"] == 0).sum() == len(train) == (corpus["copy"] == 1).sum()
    originals = corpus[corpus["copy"] == 0].set_index("id")["text"]
    copies = corpus[corpus["copy"] == 1].set_index("id")["text"]
    assert (originals != copies.reindex(originals.index)).mean() > 0.8  # almost every text got a swap
    runs = {}
    for variant, size in (("clean", len(train)), ("augmented", len(corpus))):
        for seed in (1, 2):  # one run per fine-tuning seed (pretrain.replicate per_seed)
            record = json.loads((workdir / f"results/pretrain/{variant}/seed{seed}/pretrain_log.json").read_text())
            # tests/config/tiny.yaml: 2 steps of the head alone, then 3 of the whole model
            assert record["corpus_size"] == size and len(record["loss_curve"]) == 2 + 3
            assert record["heldout_loss_after_head_warmup"] is not None
            assert (workdir / f"results/pretrain/{variant}/seed{seed}/model/model.safetensors").exists()
            runs[variant, seed] = record["provenance"]["seed"], record["loss_curve"]
    # a seed's clean and augmented runs share their seed; the seeds' runs differ
    assert runs["clean", 1][0] == runs["augmented", 1][0] != runs["clean", 2][0]
    assert runs["clean", 1][1] != runs["clean", 2][1]


def test_training_records_and_predictions_agree(workflow):
    workdir, _, _ = workflow
    for model in MODELS:
        record = json.loads((workdir / f"results/models/{model}/train_log.json").read_text())
        assert record["provenance"]["seed"] == int(model[-1]) and record["provenance"]["torch_threads"] == 1
        pretrain, seed = model.split("/")[1], model[-1]
        assert record["model_source"].endswith(f"results/warm_start/rotten_tomatoes/{pretrain}/seed{seed}/model")
        warm = json.loads(
            (workdir / f"results/warm_start/rotten_tomatoes/{pretrain}/seed{seed}/train_log.json").read_text()
        )
        assert warm["model_source"].endswith(
            "tiny_bert" if pretrain == "none" else f"results/pretrain/{pretrain}/seed{seed}/model"
        )
        assert warm["method"] == "base" and warm["epochs_run"] == 1 and "convergence" in record
        for evalset in ("test", "imdb", "tweets"):
            metrics = json.loads((workdir / f"results/eval/{model}/{evalset}.json").read_text())
            predictions = pd.read_csv(workdir / f"results/eval/{model}/{evalset}.predictions.csv")
            assert metrics["n"] == len(predictions) == 16
            assert metrics["accuracy"] == pytest.approx((predictions["prediction"] == predictions["label"]).mean())
            assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["macro_f1"] <= 1


def test_the_training_table_gives_every_model_its_equal_footing_figures(workflow):
    workdir, _, _ = workflow
    training = pd.read_csv(workdir / "results/report/training.csv")
    assert len(training) == len(MODELS) and training["converged"].isin([True, False]).all()
    assert (training["steps"] == training["examples_seen"].floordiv(8) + (training["examples_seen"] % 8 > 0)).all()
    one_pass = ~training["method"].isin(OPT_IN)  # base and the input-space methods; the opt-in ones ascend
    assert (training.loc[one_pass, ["forward_per_step", "backward_per_step"]] == 1).all().all()
    assert (training.loc[~one_pass, ["forward_per_step", "backward_per_step"]] > 1).all().all()
    assert (training.loc[training["method"] == "a2t", "attack_forward"] > 0).all()
    assert (training["warm_start_steps"] == 48 // 8).all() and training["warm_start_seconds"].gt(0).all()


def test_input_space_methods_trained_on_adversarial_examples(workflow):
    workdir, _, _ = workflow
    for seed in (1, 2):
        attacked = pd.read_csv(
            workdir / f"results/advaug/rotten_tomatoes/none/seed{seed}/adversarial.csv", keep_default_na=False
        )
        assert set(attacked["outcome"]) <= {"success", "failure", "skipped"}
        advaug = json.loads(
            (workdir / f"results/models/rotten_tomatoes/none/advaug/seed{seed}/train_log.json").read_text()
        )
        successes = int((attacked["outcome"] == "success").sum())
        # attacked in a seeded order until half the 48 training examples have an adversarial one, or all were tried
        assert (successes == 24 and attacked["outcome"].iloc[-1] == "success") or len(attacked) == 48
        assert advaug["history"][0]["adversarial"] == {"attacked": len(attacked), "added": successes}
        assert advaug["history"][0]["train_examples"] == 48 + successes
        a2t = json.loads((workdir / f"results/models/rotten_tomatoes/none/a2t/seed{seed}/train_log.json").read_text())
        (epoch,) = a2t["history"]
        assert epoch["train_examples"] == 48 + epoch["adversarial"]["added"] and epoch["adversarial"]["attacked"] > 0
        assert a2t["method_params"]["query_budget"] == 50
        training = pd.read_csv(workdir / "results/report/training.csv").set_index(["method", "seed"])
        assert training.loc[("advaug", seed), "adversarial_examples"] == successes
        assert training.loc[("advaug", seed), "adversarial_seen"] == successes  # one epoch
        assert training.loc[("a2t", seed), "adversarial_examples"] == epoch["adversarial"]["added"]
        assert training.loc[("base", seed), "adversarial_examples"].tolist() == [0, 0, 0]  # three variants


def test_attacks_use_one_order_and_summaries_match_the_examples(workflow):
    workdir, _, _ = workflow
    test = artifacts.read_examples(workdir / "results/data/rotten_tomatoes/test.jsonl")
    order = test.sample(frac=1.0, random_state=765)["id"].astype(str).tolist()  # attack.seed: the same for every model
    for model in MODELS:
        examples = pd.read_csv(
            workdir / f"results/attacks/{model}/deepwordbug.csv", keep_default_na=False, dtype={"id": str}
        )
        summary = json.loads((workdir / f"results/attacks/{model}/deepwordbug.json").read_text())
        # each model's sample: the seeded order up to its 6th correct example (the whole split if it has fewer)
        assert set(examples["id"]) == set(order[: len(examples)]) and len(examples) == summary["n"]
        right = (examples["outcome"] != "skipped").sum()
        assert right == 6 or len(examples) == len(test)
        assert set(examples["outcome"]) <= {"success", "failure", "skipped"}
        assert summary["accuracy_under_attack"] == pytest.approx((examples["outcome"] == "failure").mean())
        assert summary["clean_accuracy"] == pytest.approx((examples["outcome"] != "skipped").mean())
        assert (examples["num_queries"] <= summary["query_budget"]).all() and summary["query_budget"] == 200
        successes = examples[examples["outcome"] == "success"]
        assert (successes["perturbed_prediction"] != successes["label"]).all()
        assert "LevenshteinEditDistance" in summary["attack_repr"] and summary["textattack_version"] == version(
            "textattack"
        )
        # gathering never imports torch (runtime.setup(uses_torch=False)); the attack shard ran it on 1 thread
        assert summary["provenance"]["torch_threads"] is None and summary["provenance"]["threads"] == 1
        assert {shard["torch_threads"] for shard in summary["shard_provenance"]} == {1}


def test_neuron_analysis(workflow):
    workdir, _, _ = workflow
    corpus = [
        json.loads(line) for line in (workdir / "results/neurons/rotten_tomatoes/corpus.jsonl").read_text().splitlines()
    ]
    words = sum(len(sentence["words"]) for sentence in corpus)
    assert all(len(s["words"]) == len(s["upos"]) == len(s["ptb"]) for s in corpus)
    for model in [REFERENCE, *MODELS]:
        activations = np.load(workdir / f"results/neurons/{model}/activations.npy")
        assert activations.dtype == np.float16 and activations.shape[1:] == (3, 32)  # embeddings + 2 layers
        assert 0 < activations.shape[0] <= words
        labels = json.loads((workdir / f"results/neurons/{model}/labels.json").read_text())
        assert len(labels["upos"]) == activations.shape[0] == words - labels["num_words_dropped"]
        probe = json.loads((workdir / f"results/neurons/{model}/probe.json").read_text())
        assert 0 < probe["accuracy"]["all_layers"]["test"] <= 1 and len(probe["accuracy"]["per_layer"]) == 3
        assert probe["num_neurons"] == 96 and probe["provenance"]["params"]["tagset"] == "upos"
        assert 1 <= probe["minimal_subset"]["n"] <= 96 and -1 <= probe["selectivity"]["all_layers"] <= 1
        ranking = pd.read_csv(workdir / f"results/neurons/{model}/ranking.csv")
        assert sorted(ranking["neuron"]) == list(range(96)) and ranking["rank"].is_monotonic_increasing
    assert json.loads((workdir / f"results/neurons/{REFERENCE}/labels.json").read_text())["model"].endswith("tiny_bert")


def test_every_probe_uses_the_reference_regularization(workflow):
    workdir, _, _ = workflow
    reference = json.loads((workdir / f"results/neurons/{REFERENCE}/probe.json").read_text())
    chosen = reference["hyperparameters"]
    assert chosen["selected"] and chosen["chosen_on"] == REFERENCE and len(reference["grid"]) == 2  # C_grid [0.5, 1]
    target = reference["minimal_subset"]["target"]
    assert "classifier_ablation" not in reference  # the start model has no classifier
    for model in MODELS:
        record = json.loads((workdir / f"results/neurons/{model}/probe.json").read_text())
        assert record["hyperparameters"] == {**chosen, "selected": False} and len(record["grid"]) == 1
        # one target for every model of the dataset; its standard error is the model's own validation split's (every
        # seed draws its own splits: advlm.plan.params.probe_params)
        own = {key: value for key, value in record["minimal_subset"]["target"].items() if key != "validation_se"}
        assert own == {key: value for key, value in target.items() if key != "validation_se"}
        assert len(record["minimal_subset"]["share"]["values"]) == 2  # tiny.yaml: 2 refits
        causal = record["classifier_ablation"]
        assert causal["n"] == 8 and set(causal["per_set"]) == {"test", "imdb", "tweets"}
        assert all(0 <= part["top"] <= 1 and part["examples"] <= 20 for part in causal["per_set"].values())
    table = pd.read_csv(workdir / "results/report/neurons.csv")
    assert len(table) == len(MODELS) + 1 and table[["C", "l1_ratio"]].drop_duplicates().shape[0] == 1
    row = table[table["method"] == "pretrained"].iloc[0]
    assert (row["pretrain"], row["seed"], row["C"]) == ("none", 0, chosen["C"])


def test_claims_table(workflow):
    """The claims the tiny run can test are tested on its files; those it did not train are 'not run'."""
    workdir, _, _ = workflow
    report = workdir / "results/report"
    claims = pd.read_csv(report / "claims.csv")
    ran = claims[claims["verdict"] != "not run"]
    assert set(ran["contrast"]) == {
        "augmented/base vs clean/base",
        "augmented/base vs none/base",
        "none/advaug + none/a2t vs none/base",
        "none/ascc + none/dne vs none/advaug + none/a2t",  # the synonym-hull claims' contrast with input space
    }
    hull = ran[ran["claim"] == "synonym_hull_generalization"]
    assert set(hull["key"]) == {"test", "imdb", "tweets", "ood_mean"} and set(hull["metric"]) == {"accuracy", "ece"}
    ran = ran[ran["claim"] != "synonym_hull_generalization"]  # the robustness claims, from here
    assert (ran["n_seeds"] == 2).all()
    # a row the t-test cannot test (the tiny models' differences can be equal in both seeds) says why
    untested = ran[ran["verdict"] == "not tested"]
    untestable = "no spread over seeds|the interval .* leaves the range of a difference"  # advlm.stats.estimate
    assert untested["p_holm"].isna().all() and untested["note"].str.contains(untestable).all()
    tested = ran[ran["verdict"] != "not tested"]
    assert tested["p_holm"].between(0, 1).all() and len(tested) + len(untested) == len(ran)
    assert set(tested["verdict"]) <= {"supported", "contradicted", "inconclusive"}
    robustness_metrics = {"capped_accuracy_under_attack", "accuracy_under_attack", "attack_success_rate"}
    robustness_metrics |= {"words_to_flip"}
    assert set(ran["key"]) == {"deepwordbug"} and set(ran["metric"]) == robustness_metrics
    attack = pd.read_csv(workdir / "results/attacks/rotten_tomatoes/augmented/base/seed1/deepwordbug.csv")
    control = pd.read_csv(workdir / "results/attacks/rotten_tomatoes/clean/base/seed1/deepwordbug.csv")
    both = len(set(attack["id"]) & set(control["id"]))
    accuracy = ran[(ran["contrast"] == "augmented/base vs clean/base") & (ran["metric"] == "accuracy_under_attack")]
    assert accuracy["n_examples"].iloc[0] <= both  # paired on the examples both seeds' models were attacked on
    # one primary endpoint per claim: the first contrast's capped accuracy under the first attack
    # (advlm.attacks.budget), or the schema's choice
    primaries = claims[claims["endpoint"] == "primary"].set_index("claim")
    assert sorted(primaries.index) == sorted(claims["claim"].unique())
    robustness = primaries.loc[["pretraining_augmentation_robustness", "input_space_robustness"]]
    assert set(robustness["metric"]) == {"capped_accuracy_under_attack"} and set(robustness["key"]) == {"deepwordbug"}
    assert primaries.loc["input_space_robustness", "contrast"] == "none/advaug + none/a2t vs none/base"
    not_run = claims[claims["verdict"] == "not run"]
    assert set(not_run["claim"]) >= {"embedding_space_generalization", "embedding_space_neurons"}
    assert not_run["note"].str.startswith("not trained: none/pgd").all()  # pgd, freelb, lds: not in this run
    summary = (report / "summary.md").read_text()
    assert summary.index("## Claims") < summary.index("## Generalization")
    assert "Attacks: neither saw it" in summary  # deepwordbug: no training saw character edits
    for plot in ("claims.png", "claims_headline.png"):
        assert (report / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report(workflow):
    workdir, _, _ = workflow
    report = workdir / "results/report"
    generalization = pd.read_csv(report / "generalization.csv")
    assert len(generalization) == len(MODELS) * 3
    summary = (report / "summary.md").read_text()
    for pretrain in ("none", "clean", "augmented"):  # one row per variant and evaluation set, over 2 seeds
        rows = re.findall(
            rf"^\| rotten_tomatoes \| {pretrain} +\| base +\| (\w+) .*\| +2 \|(?: +[\d–]+ \|)?$", summary, re.M
        )  # ... | seeds | n (examples per seed, where the table has them) |
        assert {"test", "imdb", "tweets", "deepwordbug", "probe"} <= set(rows)
    for plot in ("generalization.png", "robustness.png"):
        assert (report / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (workdir / "results/report.html").read_text(errors="replace")
    assert "generalization.png" in html and len(html) > 100_000
    # the training section: every model's learning curve and its row of the convergence table
    assert "learning_curves.png" in html and "convergence.csv" in html
    assert len(pd.read_csv(report / "convergence.csv")) == len(MODELS)
    # the landing page states each claim's verdict on its primary endpoint, or why there is none
    landing = (report / "landing.rst").read_text()
    assert landing.startswith((ROOT / "report/workflow.rst").read_text().splitlines()[0])
    for claim in pd.read_csv(report / "claims.csv")["claim"].unique():
        assert f"- **{claim}** (rotten_tomatoes): **" in landing
    assert "The answer" in html and "pretraining_augmentation_robustness" in html


def test_second_run_has_nothing_to_do(workflow):
    workdir, overlay, _ = workflow
    assert "Nothing to be done" in run(workdir, "-n", configfiles=[overlay]).stdout


# the jobs of one model over the 2 seeds, from its training on (each seed's attack in 2 shards), and the report's
MODEL_JOBS = {
    "finetune": 2,
    "evaluate": 2,
    "attack": 4,
    "gather_attack": 2,
    "extract_activations": 2,
    "probe_neurons": 2,
}
REPORT_JOBS = {"aggregate": 1, "all": 1}


@pytest.mark.parametrize(
    "change, rerun",
    [
        ({"evaluate": {"ece_bins": 10}}, {"evaluate": len(MODELS), **REPORT_JOBS}),
        ({"attack": {"query_budget": 150}}, {"attack": 2 * len(MODELS), "gather_attack": len(MODELS), **REPORT_JOBS}),
        (
            {"finetune": {"method_params": {"advaug": {"share": 0.25}}}},
            {"attack_train": 2, **MODEL_JOBS, **REPORT_JOBS},
        ),
        (  # the two models trained from the pre-trained variants, and their warm starts
            {"pretrain": {"lr": 0.0005}},
            {
                "pretrain_mlm": 4,  # clean and augmented, one run per seed
                "warm_start": 4,
                **{rule: 2 * jobs for rule, jobs in MODEL_JOBS.items()},
                **REPORT_JOBS,
            },
        ),
        (  # the methods' own epochs: every model, and no warm start
            {"finetune": {"selection": "best"}},
            {"attack_train": 2, **{rule: len(MODELS) // 2 * jobs for rule, jobs in MODEL_JOBS.items()}, **REPORT_JOBS},
        ),
    ],
)
def test_a_changed_parameter_reruns_only_its_stage_and_what_depends_on_it(workflow, change, rerun):
    workdir, overlay, _ = workflow
    changed = write_overlay(workdir, **change)
    assert job_counts(run(workdir, "-n", configfiles=[overlay, changed]).stdout) == rerun


def test_a_sweep_trains_its_points_as_models_and_a_new_point_plans_only_its_own_jobs(workflow):
    """Last in this module: it adds models to the shared workflow."""
    workdir, overlay, _ = workflow
    point = "rotten_tomatoes/none/advaug-weight=0.5"
    own_jobs = {**MODEL_JOBS, **REPORT_JOBS}  # a point's own jobs, and nothing else
    first = run(
        workdir, configfiles=[overlay, write_overlay(workdir, finetune={"sweep": {"advaug": {"weight": [0.5]}}})]
    )
    assert job_counts(first.stdout + first.stderr) == own_jobs
    for seed in (1, 2):
        record = json.loads((workdir / f"results/models/{point}/seed{seed}/train_log.json").read_text())
        assert record["method_params"]["weight"] == 0.5 and record["method_params"]["share"] == 0.5
    # weight alone does not change the attacked examples: the point trains on advaug's own
    assert sorted(p.name for p in (workdir / "results/advaug/rotten_tomatoes/none/seed1").glob("*.csv")) == [
        "adversarial.csv"
    ]
    tradeoff = pd.read_csv(workdir / "results/report/tradeoff.csv")
    advaug = tradeoff[tradeoff["family"] == "advaug"]
    assert list(advaug["method"]) == ["advaug-weight=0.5", "advaug"] and list(advaug["values"]) == [
        "weight=0.5",
        "weight=1.0",
    ]
    assert (advaug["seeds"] == 2).all()

    third = write_overlay(workdir, finetune={"sweep": {"advaug": {"weight": [0.5, 2.0]}}})
    planned = run(workdir, "-n", configfiles=[overlay, third]).stdout
    assert job_counts(planned) == own_jobs
    assert set(re.findall(r"wildcards: .*method=([^,\s]+)", planned)) == {"advaug-weight=2"}  # every planned job's
