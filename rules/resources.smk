rule prepare_resources:
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
    params:
        downloads_dir=config["downloads_dir"],
    input:
        lib_files("resources"),
    script:
        "../workflow_scripts/prepare_resources.py"
