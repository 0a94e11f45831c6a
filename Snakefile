# Adversarial training of transformer language models: robustness, generalization and neurons.
# Stages (one file each under rules/), in DAG order; `snakemake` builds everything `rule all` lists.
from snakemake.utils import min_version, validate

min_version("9.19")


include: "rules/common.smk"
include: "rules/scheduler.smk"


check_yaml("config.yaml")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


# The HTML report's landing page: the workflow description with the claims' verdicts, once aggregate has written it.
LANDING_PAGE = "results/report/landing.rst"


report: str(Path(LANDING_PAGE).resolve()) if Path(LANDING_PAGE).exists() else "report/workflow.rst"


check_config(config)


onstart:
    check_device(config, local=workflow.local_exec)
    # each claim's power at its delta, planned before the first job: results/power.json (advlm/power.py)
    from advlm import power

    print(
        power.plan_run(
            config,
            claims_experiment(config),
            Path(workflow.basedir) / "resources" / "variance_components.yaml",
            "results/power.json",
        )
    )


wildcard_constraints:
    **wildcard_patterns(config),


include: "rules/resources.smk"
include: "rules/data.smk"
include: "rules/pretrain.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"
include: "rules/attack.smk"
include: "rules/neurons.smk"
include: "rules/aggregate.smk"


rule all:
    default_target: True
    input:
        final_targets(config),
