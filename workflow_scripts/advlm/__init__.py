"""advlm: the library behind the adversarial-training workflow.

Each Snakemake rule runs a small script in ``workflow_scripts/`` that calls one function of this package.
Modules, in DAG order: ``resources`` (offline resources), ``data`` (datasets and splits), ``augment``
(corpus augmentation), ``mlm`` (continued masked-LM pre-training), ``training`` (fine-tuning methods),
``evaluation`` (accuracy, F1, calibration), ``embeddings`` (counter-fitted word vectors) and
``encoder_calibration`` (the attacks' sentence-encoder thresholds), ``attacks`` (a package of TextAttack attacks:
``catalog``, ``recipes``, ``components``, ``wrapper``, ``resources``, ``sharding``, ``running``, ``metrics``),
``neurons`` (linguistic correlation analysis, a package: ``neurons.tagging``, ``neurons.activations`` and
``neurons.analysis`` for its three rules, one module per part of the analysis, ``neurons.report`` for its tables and
plots), ``report`` (tables and plots). ``plan`` is the workflow's planning, read when the Snakefile is (config
checks, method points, paths, parameters, targets, the scripts' library imports, one module per idea), and
``priorities`` the jobs' priorities from measured costs. ``runtime`` and ``artifacts`` (the files passed between
stages) are shared helpers.
"""

from . import runtime

runtime.capture_job_log()  # a Snakemake job's traceback goes to its log file (see there)
