rule augment_corpus:
    input:
        library_stamp("augment_corpus"),
        unpack(lambda wc: augmenter_inputs(config)),
        corpus=[split_path(name, "train") for name in config["pretrain"]["corpus_datasets"]],
        nltk_data="results/resources/nltk_data",
    output:
        corpus="results/corpus/augmented.jsonl",
        meta="results/corpus/augmented.meta.json",
    log:
        "results/logs/augment_corpus/augment_corpus.log",
    benchmark:
        "results/benchmarks/augment_corpus/augment_corpus.tsv"
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        augment=augment_params(config),
    script:
        "../workflow_scripts/augment_corpus.py"


rule pretrain_mlm:
    input:
        library_stamp("pretrain_mlm"),
        start=base_model_inputs(config),
        corpus=lambda wc: corpus_paths(config, wc.pretrain),
    output:
        model=directory("results/pretrain/{pretrain}/{run}/model"),
        record="results/pretrain/{pretrain}/{run}/pretrain_log.json",
    log:
        "results/logs/pretrain_mlm/{pretrain}/{run}.log",
    benchmark:
        "results/benchmarks/pretrain_mlm/{pretrain}/{run}.tsv"
    wildcard_constraints:
        pretrain="clean|augmented|attacker",  # attacker: bae's and bert-attack's masked LM (attack.masked_lm)
        run=r"shared|seed\d+",  # a fine-tuning seed's own run, or one all share (pretrain.replicate, pretrain_dir)
    priority: 1
    conda:
        "../envs/workflow.yaml"
    threads: threads_up_to(4)
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    params:
        model_source=lambda wc, input: model_source(config, input),
        pretrain=lambda wc: pretrain_params(config, wc.pretrain, wc.run),
        device=config["device"],
        precision=config["precision"],
        checkpoint_dir="results/checkpoints/pretrain_mlm/{pretrain}/{run}",  # not an output: it must survive a failed job
    script:
        "../workflow_scripts/pretrain_mlm.py"
