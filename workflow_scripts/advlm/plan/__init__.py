"""The workflow's planning: what the config asks for, checked, and turned into jobs, paths and parameters.

The Snakefile imports these modules (through rules/common.smk, whose getters the rules call); they import nothing
heavy (no torch), so that planning stays fast, and they are unit-tested without Snakemake (tests/test_plan_*.py).
One module per idea:

* ``repo``: where the workflow's own files are (the schema, the scripts, the pinned downloads);
* ``schema``: the config schema as data (known methods and variants, a method's parameters and defaults);
* ``points``: method points, each of finetune.methods and each point of its sweep, and advaug's example sets;
* ``paths``: the results' layout (a model's directory, a split, an evaluation set, a pre-training run);
* ``model_sources``: the model each job starts from or loads;
* ``attacks``: the attacks run, their sample sizes, parameters and resource inputs;
* ``inputs``: the other file inputs of a job (a method's, a resource's, a data source's, a probe's reference);
* ``params``: what each stage's jobs depend on (their ``params:``), the pre-training seeds;
* ``targets``: every model, evaluation, attack and probe of the experiment, and what the claims stage is told;
* ``wildcards``: the patterns each wildcard may match;
* ``imports``: the library modules each rule's script imports, summarised in one stamp file per script;
* ``identity``: what a data source's text is, whatever its key;
* ``checks`` and ``leakage``: the config checks beyond the schema, run before any job.
"""
