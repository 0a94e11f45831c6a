"""A job's start-up pays only for the imports it uses: a job that attacks does not import TextAttack's unused
dependencies (flair, lemminflect with spaCy, bert_score, datasets), and one that loads a model no scikit-learn for
transformers' sake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Not imported by an attack's start-up (scikit-learn is: NLTK's import pulls it, and the recipes need NLTK).
UNUSED = ("flair", "lemminflect", "bert_score", "spacy", "matplotlib", "datasets", "aiohttp")


def run(code: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split("\n")[-2]


def test_an_attack_imports_textattack_without_its_unused_dependencies(resources_dir, victim_dir):
    """An attack's start-up (as attack.py and running.py run it: the victim loaded, TextAttack set up, the recipes
    imported) leaves the unused packages unimported: where one is in sys.modules, it is a stand-in."""
    code = (
        "import sys, types\n"
        "from advlm import models, runtime\n"
        f"model = models.load_classifier({str(victim_dir)!r}, 2)\n"
        f"runtime.offline_textattack({str(resources_dir)!r})\n"
        "from advlm.attacks import components, recipes, wrapper\n"
        f"print(sorted(name for name in {UNUSED!r} if type(sys.modules.get(name)) is types.ModuleType))\n"
    )
    assert run(code) == "[]"


def test_a_job_that_attacks_still_logs_its_job_time(resources_dir):
    """TextAttack's import calls logging.config.dictConfig, which disables the loggers that exist: the job's
    "job time:" line (advlm.timing, created at set-up; benchmarks/job_costs.py reads it) went missing from every
    attack's log (the 359e1c5 run's job costs had no attack row). Set-up's loggers stay enabled."""
    code = (
        "import logging\n"
        "from advlm import runtime, timing\n"
        "runtime.setup(1, uses_torch=False)\n"
        f"runtime.offline_textattack({str(resources_dir)!r})\n"
        "print(timing.log.disabled, logging.getLogger('textattack').disabled)\n"
    )
    assert run(code) == "False False"


def test_a_deferred_module_is_imported_on_first_use_and_flair_fails_loudly(resources_dir):
    code = (
        "import sys\n"
        "from advlm import runtime\n"
        f"runtime.offline_textattack({str(resources_dir)!r})\n"
        "from textattack.transformations.word_swaps import word_swap_inflections\n"
        "from textattack.constraints.grammaticality import PartOfSpeech\n"
        "lemmas = word_swap_inflections.lemminflect.getAllLemmas('running')['VERB']\n"
        "try:\n"
        "    PartOfSpeech(tagger_type='flair')\n"
        "    refused = 'no'\n"
        "except RuntimeError as error:\n"
        "    refused = 'needs flair' in str(error)\n"
        "print(lemmas, 'lemminflect' in sys.modules, refused)\n"
    )
    assert run(code) == "('run',) True True"


def test_a_job_that_loads_a_model_does_not_import_scikit_learn_for_transformers(tiny_bert):
    """extract_activations' start-up: its script's imports and the model loaded as AutoModel."""
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('job', 'workflow_scripts/extract_activations.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "from advlm import models\n"
        f"models.load_encoder({str(tiny_bert)!r}), models.load_classifier({str(tiny_bert)!r}, 2)\n"
        "print('sklearn' in sys.modules)\n"
    )
    assert run(code) == "False"
