rule tag_probe_corpus:
    input:
        library_stamp("tag_probe_corpus"),
        texts=lambda wc: [split_path(wc.dataset, split) for split in config["neurons"]["corpus_splits"]],
    output:
        corpus="results/neurons/{dataset}/corpus.jsonl",
        meta="results/neurons/{dataset}/corpus.meta.json",
    log:
        "results/logs/tag_probe_corpus/{dataset}.log",
    priority: job_priority("tag_probe_corpus")
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # Each rule gets only the neurons keys it reads, so that changing a probe setting reruns only the probes.
        neurons={key: config["neurons"][key] for key in ("corpus_splits", "num_sentences", "seed")},
    script:
        "../workflow_scripts/tag_probe_corpus.py"


rule extract_activations:
    input:
        library_stamp("extract_activations"),
        model=lambda wc: neuron_model_inputs(config, wc),
        corpus="results/neurons/{dataset}/corpus.jsonl",
    output:
        activations=f"results/neurons/{MODEL}/activations.npy",
        labels=f"results/neurons/{MODEL}/labels.json",
    log:
        f"results/logs/extract_activations/{MODEL}.log",
    benchmark:
        f"results/benchmarks/extract_activations/{MODEL}.tsv"
    priority: job_priority("extract_activations")
    conda:
        "../envs/workflow.yaml"
    threads: threads_up_to(2)
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,
    params:
        model_source=lambda wc, input: neuron_model_source(config, input),
        neurons=(
            {key: config["neurons"][key] for key in ("aggregation", "batch_size", "seed")}
            | {"max_length": config["model"]["max_length"]}
        ),
        device=config["device"],
    script:
        "../workflow_scripts/extract_activations.py"


rule probe_neurons:
    """The reference model (method pretrained) chooses (C, l1_ratio) on validation and sets the minimal subset's
    target; every other probe of the dataset reads both from the reference's probe.json (input reference), so that
    all share one regularization and one target. A fine-tuned model's probe also runs the causal test in its
    classifier (input classifier) on its evaluation sets."""
    input:
        unpack(lambda wc: reference_probe_inputs(config, wc)),
        library_stamp("probe_neurons"),
        activations=f"results/neurons/{MODEL}/activations.npy",
        labels=f"results/neurons/{MODEL}/labels.json",
    output:
        probe=f"results/neurons/{MODEL}/probe.json",
        ranking=f"results/neurons/{MODEL}/ranking.csv",
    log:
        f"results/logs/probe_neurons/{MODEL}.log",
    benchmark:
        f"results/benchmarks/probe_neurons/{MODEL}.tsv"
    priority: job_priority("probe_neurons")
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        neurons=lambda wc: probe_params(config, wc.seed),
        model=lambda wc: MODEL.format(**dict(wc.items())),
        evalsets=lambda wc: [] if is_reference(wc) else evalsets(config, wc.dataset),
        num_labels=len(config["data"]["labels"]),
        max_length=config["model"]["max_length"],
        batch_size=config["evaluate"]["batch_size"],
        device=config["device"],
    script:
        "../workflow_scripts/probe_neurons.py"
