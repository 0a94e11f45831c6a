import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow_scripts"))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")

import torch  # noqa: E402

torch.set_num_threads(1)  # one thread per test process: faster on 2 cores and deterministic


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    from tiny_model import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def resources_dir(tmp_path_factory):
    """The offline resources the tests need (NLTK data, VADER), built once per session."""
    from advlm import resources

    out = tmp_path_factory.mktemp("resources")
    for name in ("nltk_data", "vader"):
        resources.build(name, out / name, ROOT / "downloads")
    return out
