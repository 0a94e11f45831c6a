"""Config checks that no data reaches where it must not: an out-of-domain set that is the in-domain data or was seen
in continued pre-training, an attacker's masked LM trained on a victim's text or being a victim's start model.
Sources compare by what their text is (advlm.plan.identity), not by their keys. Each check yields (key, problem)."""

from .attacks import attacker_pretrained
from .identity import VADER_SETS, describe_source, source_identity
from .params import pretrain_seed
from .paths import pretrain_run


def check_ood_is_other_data(config):
    """An out-of-domain set is other data than the dataset it evaluates, under whatever key."""
    sources = config["data"]["sources"]
    for dataset, evalsets in config["ood"].items():
        for evalset in evalsets:
            comparable = dataset in sources and evalset in {*sources, *VADER_SETS} - {dataset}  # else check_references
            if comparable and source_identity(config, evalset) == source_identity(config, dataset):
                yield (
                    f"ood.{dataset}",
                    (
                        f"{evalset!r} is the same data as {dataset!r} ({describe_source(config, evalset)}): "
                        "not out of domain"
                    ),
                )


def check_ood_leakage(config):
    """A source whose text the pre-training corpus holds, under any key, is not out of domain for models
    continued-pre-trained on it."""
    if not {"clean", "augmented"} & set(config["pretrain"]["variants"]):
        return
    sources = config["data"]["sources"]
    corpus = {source_identity(config, key): key for key in config["pretrain"]["corpus_datasets"] if key in sources}
    for dataset, evalsets in config["ood"].items():
        for evalset in evalsets:
            if evalset not in {*sources, *VADER_SETS}:
                continue  # check_references names it
            seen = corpus.get(source_identity(config, evalset))
            if seen is not None:
                yield (
                    f"ood.{dataset}",
                    f"{evalset!r} ({describe_source(config, evalset)}) is the data of pretrain.corpus_datasets "
                    f"{seen!r}: its text was seen in continued pre-training, so it is not out of domain for the clean "
                    "and augmented variants",
                )


def check_attacker_corpus(config):
    """The attacker's corpus (attack.masked_lm_corpus) is none of a victim's training text (by identity, whatever
    the key): the datasets' and the pre-training corpus'. Checked where the workflow pre-trains the attacker."""
    if not attacker_pretrained(config):
        return
    sources, key = config["data"]["sources"], "attack.masked_lm_corpus"
    victims = {
        source_identity(config, name): name
        for name in {*config["datasets"], *config["pretrain"]["corpus_datasets"]}
        if name in sources
    }
    for name in config["attack"]["masked_lm_corpus"]:
        victim = victims.get(source_identity(config, name)) if name in sources else None
        if victim:
            yield (
                key,
                (
                    f"{name!r} ({describe_source(config, name)}) is the training text of {victim!r}, which victims "
                    "are trained on: the attacker's masked LM would share their corpus"
                ),
            )


def check_attacker_seed(config):
    """The attacker reads the clean corpus with the pretrain settings: with a clean run's seed it would be that
    run's model, which the clean variant's victims are fine-tuned from. Checked where the workflow pre-trains the
    attacker."""
    if not attacker_pretrained(config):
        return
    seed, pretrain = config["attack"]["masked_lm_seed"], config["pretrain"]
    for run in sorted({pretrain_run(config, "clean", s) for s in config["finetune"]["seeds"]}):
        if pretrain_seed(config, "clean", run) == seed:
            yield (
                "attack.masked_lm_seed",
                (
                    f"{seed} is the seed of the clean pre-training run {run!r} (pretrain.seed {pretrain['seed']}, "
                    f"pretrain.replicate {pretrain['replicate']}): the attacker's masked LM would be the clean "
                    "variant's model, which its victims are fine-tuned from"
                ),
            )
