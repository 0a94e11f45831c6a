"""Running Snakemake from the tests: the real command line, in a temporary working directory."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
TINY_CONFIG = ROOT / "tests" / "config" / "tiny.yaml"


# What a copy of the workflow needs to run (not the docs, tests or benchmarks)
WORKFLOW_FILES = (
    "Snakefile",
    "rules",
    "workflow_scripts",
    "schemas",
    "report",
    "profiles",
    "config.yaml",
    "resources",
    "envs",
)


def copy_workflow(dest: Path) -> None:
    """The workflow's files (:data:`WORKFLOW_FILES`) copied into ``dest``, for a test that edits or breaks them."""
    for name in WORKFLOW_FILES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, dest / name)


def rule_script(name: str):
    """A rule's script (workflow_scripts/<name>.py) as a module, to call its ``main`` as Snakemake would. The
    scripts are not a package: they are loaded from their files, and import the library as installed."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "workflow_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_with(**overrides) -> dict:
    """The default experiment's config (config.yaml) with ``section__key=value`` (or ``section=value``) overrides."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key, value in overrides.items():
        section, _, leaf = key.partition("__")
        if leaf:
            config[section][leaf] = value
        else:
            config[section] = value
    return config


def write_overlay(workdir: Path, **overrides) -> Path:
    """A config overlay (merged over tests/config/tiny.yaml by Snakemake) in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"overlay{len(list(workdir.glob('overlay*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({"downloads_dir": str(ROOT / "downloads"), **overrides}))
    return path


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def command(workdir: Path, *args, configfiles=()) -> list[str]:
    return [
        *SNAKEMAKE,
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(ROOT / "profiles" / "default"),
        "--cores",
        "2",
        "--max-threads",
        "1",
        *args,
        "--configfile",
        str(TINY_CONFIG),
        *map(str, configfiles),
    ]


def run(workdir: Path, *args, configfiles=(), check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command(workdir, *args, configfiles=configfiles), cwd=workdir, env=ENV, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The job-stats table of a (dry) run as {rule: count}."""
    table = output.split("Job stats:")[1] if "Job stats:" in output else ""
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if rule != "total"}
