"""The results' layout: where a model, a split, an evaluation set, a pre-training run and advaug's examples are.
Paths are relative to the working directory, as Snakemake's are."""

from .points import advaug_examples_name

MODEL = "{dataset}/{pretrain}/{method}/seed{seed}"
WARM_START = "{dataset}/{pretrain}/seed{seed}"  # the clean epochs a seed's methods share (finetune.warm_start_epochs)
# attack_train's output; {examples}: "adversarial", or e.g. "adversarial-share=0.2" for a swept advaug (advaug_examples)
ADVAUG_EXAMPLES = "results/advaug/{dataset}/{pretrain}/seed{seed}/{examples}.csv"
# The neuron probes' reference: the start model without fine-tuning (no fine-tuning seed: 0), one per dataset.
REFERENCE = {"pretrain": "none", "method": "pretrained", "seed": 0}


def split_path(dataset, split):
    return f"results/data/{dataset}/{split}.jsonl"


def evalsets(config, dataset):
    """The evaluation sets of a dataset's models: its test split, then its out-of-domain sets (ood)."""
    return ["test", *config["ood"].get(dataset, [])]


def evalset_path(config, dataset, evalset):
    """In-domain test split, another source's test split, or a binarised VADER set."""
    if evalset == "test":
        return split_path(dataset, "test")
    if evalset in config["data"]["sources"]:
        return split_path(evalset, "test")
    return f"results/data/vader/{evalset}.jsonl"


def corpus_paths(config, pretrain):
    """The corpus of a continued pre-training: the augmented one, the clean one (the variant clean), or the
    attacks' own masked LM's (attacker: attack.masked_lm_corpus, no victim's text)."""
    if pretrain == "augmented":
        return ["results/corpus/augmented.jsonl"]
    sources = config["attack"]["masked_lm_corpus"] if pretrain == "attacker" else config["pretrain"]["corpus_datasets"]
    return [split_path(name, "train") for name in sources]


def pretrain_dir(config, pretrain, seed=None):
    """The directory of the continued pre-training a fine-tuning seed's models start from."""
    return f"results/pretrain/{pretrain}/{pretrain_run(config, pretrain, seed)}"


def pretrain_run(config, pretrain, seed=None):
    """The continued pre-training run a fine-tuning seed's models start from: the seed's own, ``seed<s>``
    (pretrain.replicate per_seed), or ``shared``, the run every seed shares (once; the attacks' masked LM,
    attacker, always)."""
    shared = pretrain == "attacker" or config["pretrain"]["replicate"] == "once"
    return "shared" if shared else f"seed{seed}"


def model_dir(wildcards):
    """A fine-tuned model's directory; ``wildcards`` is a job's (anything with dataset, pretrain, method, seed)."""
    return f"results/models/{MODEL}/model".format(**dict(wildcards.items()))


def probe_path(model):
    return f"results/neurons/{MODEL}/probe.json".format(**model)


def advaug_examples_path(config, wildcards):
    """The examples an advaug point's job trains on (attack_train's output)."""
    wildcards = dict(wildcards.items())
    return ADVAUG_EXAMPLES.format(**wildcards, examples=advaug_examples_name(config, wildcards["method"]))
