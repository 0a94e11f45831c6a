rule prepare_resources:
    input:
        unpack(lambda wc: resource_inputs(config, wc.resource)),
        library_stamp("prepare_resources"),
    output:
        resource=directory("results/resources/{resource}"),
    log:
        "results/logs/prepare_resources/{resource}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/prepare_resources.py"
