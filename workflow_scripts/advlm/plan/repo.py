"""Where the workflow's own files are: this package lives in workflow_scripts/advlm/plan of the repository, and the
Snakefile puts workflow_scripts first on the path, so these are the files of the workflow being run."""

from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2]  # workflow_scripts: one script per rule, and the advlm library
ROOT = SCRIPTS.parent  # the repository: Snakefile, schemas/, resources/
