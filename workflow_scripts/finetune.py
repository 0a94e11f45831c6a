"""Rules finetune and warm_start: fine-tune one (dataset, pre-training variant, method, seed) model, or the clean
warm start (method base, no method wildcard) that every method of a (dataset, pre-training variant, seed)
continues from."""

from pathlib import Path

from advlm import artifacts, runtime, training


def method_name(smk) -> str:
    """The training method: the model's method id, or its first part for a sweep point (advlm.plan.points:
    point_id, e.g. pgd-epsilon=1); base for the warm start."""
    return smk.wildcards.get("method", "base").partition("-")[0]


def method_context(smk) -> dict:
    """The run objects a method needs besides the loop's own (advlm.plan.inputs: method_inputs): a2t's attack,
    advaug's examples, the counter-fitted vectors of the synonym-hull methods (ascc, dne)."""
    if method_name(smk) == "a2t":
        from advlm.attacks.resources import AttackResources

        resources = AttackResources(
            root=Path(smk.input.nltk_data).parent,
            counterfitted=smk.input.counterfitted,
            sentence_encoder=smk.input.sentence_encoder,
        )
        attack = smk.params.attack  # advlm.plan.attacks: attack_recipe_params(config, "a2t")
        return {
            "attack_context": training.A2TContext(resources, options=attack["options"], batch_size=attack["batch_size"])
        }
    if method_name(smk) == "advaug":
        return {"adversarial_examples": smk.input.adversarial_examples}
    if "counterfitted" in training.METHODS[method_name(smk)].needs:
        return {"counterfitted": smk.input.counterfitted}
    return {}


def main(smk):
    runtime.setup(smk.threads, smk.params.seed)
    training.finetune(
        model_source=smk.params.model_source,
        train=artifacts.read_examples(smk.input.train),
        validation=artifacts.read_examples(smk.input.validation),
        out_dir=Path(smk.output.record).parent,
        hp=smk.params.training,
        method_name=method_name(smk),
        method_params=smk.params.method_params,
        seed=smk.params.seed,
        num_labels=smk.params.num_labels,
        device=runtime.device(smk.params.device, smk.params.precision),
        method_context=method_context(smk),
        checkpoint_dir=smk.params.checkpoint_dir,
        # read from the config, not params: the interval does not change the result, so it must not rerun a job
        checkpoint_every=smk.config["checkpoint"]["every_steps"],
    )


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
