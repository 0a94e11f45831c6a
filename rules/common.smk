# The getters the rules call. The planning itself (the config checks, method points, paths, parameters, targets and
# the scripts' library imports) is the package advlm.plan (workflow_scripts/advlm/plan, one module per idea),
# unit-tested without Snakemake (tests/test_plan_*.py); this file only brings it in and binds what needs Snakemake's
# own objects (the workflow's cores and executor).
import sys
from pathlib import Path

# this workflow's own library first on the path, so that the Snakefile plans with the code its jobs run
if str(Path(workflow.basedir) / "workflow_scripts") not in sys.path:
    sys.path.insert(0, str(Path(workflow.basedir) / "workflow_scripts"))

from advlm.plan.attacks import attack_inputs, attack_params, attack_recipe_params, attack_shards
from advlm.plan.checks import check_config, check_device, check_yaml
from advlm.plan.imports import library_stamp
from advlm.plan.inputs import (
    augmenter_inputs,
    evalset_inputs,
    method_inputs,
    reference_probe_inputs,
    resource_inputs,
    source_inputs,
)
from advlm.plan.model_sources import (
    base_model_inputs,
    is_reference,
    finetune_start_inputs,
    model_source,
    neuron_model_inputs,
    neuron_model_source,
    start_model_inputs,
)
from advlm.plan.params import (
    augment_params,
    data_settings,
    finetune_params,
    pretrain_params,
    probe_params,
    warm_start_params,
)
from advlm.plan.paths import ADVAUG_EXAMPLES, MODEL, WARM_START, corpus_paths, evalsets, model_dir, split_path
from advlm.plan.points import advaug_examples, finetune_method_params, point_method
from advlm.plan.targets import (
    attack_targets,
    claims_experiment,
    eval_targets,
    final_targets,
    probe_targets,
    train_logs,
    warm_start_logs,
)
from advlm.plan.wildcards import wildcard_patterns
from advlm import priorities

# Each job's priority: the seconds of the longest chain of jobs from it to the end of the DAG, from measured job
# costs (advlm.priorities; resources/priorities.csv), so that the critical path starts first
PRIORITIES = priorities.read_priorities(Path(workflow.basedir) / "resources" / "priorities.csv")


def job_priority(rule):
    return lambda wildcards: priorities.job_priority(PRIORITIES, rule, wildcards)


# not called by a rule: tests of other stages (test_claims, test_methods, test_infobert, test_synonym_hull) look these
# up here; once they import advlm.plan themselves, these lines go
from advlm.plan.checks import CLAIM_METRICS
from advlm.plan.points import method_params, method_points
from advlm.plan.targets import models


def threads_up_to(n):
    """n threads, but at most half the local cores (at least 1): on a small machine a multi-threaded job then runs
    beside a single-threaded one instead of waiting for every core to be free (two 1-thread jobs also make more
    progress on 2 cores than one 2-thread job). Cluster runs get n: the head, where --cores does not apply, asks
    SLURM for n CPUs, and inside the cluster job (remote mode, where Snakemake reads this file again with the
    node's or the allocation's core count) the job uses the n CPUs it was given."""
    if workflow.remote_exec:
        return n
    try:
        cores = workflow.cores
    except Exception:  # no --cores: a cluster executor gives each job its own cores
        return n
    return max(1, min(n, cores // 2))
