"""Adversarial attacks on a fine-tuned classifier, composed from TextAttack components.

textattack is imported inside functions only, after :func:`advlm.runtime.offline_textattack`: its import
downloads NLTK data and crashes without stopwords unless that set-up ran first.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import models, runtime

OUTCOMES = ("success", "failure", "skipped")
RESULT_COLUMNS = [
    "sample_index", "id", "original_text", "perturbed_text", "label", "original_prediction",
    "perturbed_prediction", "outcome", "num_queries", "words_perturbed", "num_words", "perturbed_word_share",
    "seconds",
]


@functools.cache
def _wrapper_class():
    """The wrapper subclasses TextAttack's ``ModelWrapper``, which can only be imported after the offline set-up."""
    from textattack.models.wrappers import ModelWrapper as TextAttackModelWrapper

    class ModelWrapper(TextAttackModelWrapper):
        """A Hugging Face sequence classifier as TextAttack sees it.

        Unlike TextAttack's ``HuggingFaceModelWrapper`` it pads each batch to its longest sequence (not to
        512 tokens: ~10x faster on short texts), truncates to ``max_length`` like training did, and computes
        gradients without switching the model to ``train()`` (which would turn dropout on).
        """

        def __init__(self, model, tokenizer, max_length: int, batch_size: int):
            self.model = model.eval()  # dropout off; callers that train the model must eval() it again
            self.tokenizer = tokenizer
            self.max_length = max_length
            self.batch_size = batch_size

        @property
        def device(self) -> torch.device:
            return next(self.model.parameters()).device

        def _check_eval(self):
            if self.model.training:
                raise RuntimeError("the attacked model is in train() mode (dropout on): call model.eval() first")

        @torch.no_grad()
        def __call__(self, text_input_list) -> torch.Tensor:
            """Class probabilities, one row per text."""
            self._check_eval()
            probabilities = []
            for start in range(0, len(text_input_list), self.batch_size):
                batch = models.encode(self.tokenizer, text_input_list[start:start + self.batch_size],
                                      self.max_length, self.device)
                with models.autocast(self.device):
                    logits = self.model(**batch).logits
                # float64: TextAttack re-applies softmax to rows that do not sum to 1 within 1e-6.
                probabilities.append(torch.softmax(logits.double(), dim=-1).cpu())
            return torch.cat(probabilities)

        def get_grad(self, text_input) -> dict:
            """Gradient of the loss (against the predicted label) w.r.t. the word embeddings of one text.

            ``gradient`` has one row per token of :meth:`_tokenize` (special tokens included), which is
            how ``GreedyWordSwapWIR(wir_method="gradient")`` maps words to rows.
            """
            self._check_eval()
            batch = models.encode(self.tokenizer, [text_input], self.max_length, self.device)
            captured = []

            def keep_output(module, inputs, output):
                if not output.requires_grad:  # frozen embedding weights: make the output a leaf that takes a gradient
                    output.requires_grad_()
                captured.append(output)

            hook = self.model.get_input_embeddings().register_forward_hook(keep_output)
            try:
                with torch.enable_grad(), models.autocast(self.device):
                    logits = self.model(**batch).logits
                    loss = torch.nn.functional.cross_entropy(logits.float(), logits.argmax(dim=-1))
                # autograd.grad leaves the parameters' .grad untouched (no zero_grad needed before or after).
                (gradient,) = torch.autograd.grad(loss, captured[0])
            finally:
                hook.remove()
            return {"ids": batch["input_ids"][0].tolist(), "gradient": gradient[0].float().cpu().numpy()}

        def _tokenize(self, inputs):
            """Tokens as strings, tokenized exactly as :meth:`get_grad` does (for the word alignment)."""
            return [
                self.tokenizer.convert_ids_to_tokens(
                    self.tokenizer([text], truncation=True, max_length=self.max_length)["input_ids"][0])
                for text in inputs
            ]

    return ModelWrapper


def make_wrapper(model, tokenizer, max_length: int, batch_size: int, resources_dir: str | Path):
    """A TextAttack ``ModelWrapper`` subclass instance for ``model`` (see ``_wrapper_class``)."""
    runtime.offline_textattack(resources_dir)
    return _wrapper_class()(model, tokenizer, max_length, batch_size)


def _pwws():
    """PWWS (Ren et al. 2019) as in TextAttack's ``PWWSRen2019``."""
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapWordNet

    return WordSwapWordNet(), [], GreedyWordSwapWIR("weighted-saliency")


def _deepwordbug():
    """DeepWordBug (Gao et al. 2018) as in TextAttack's ``DeepWordBugGao2018`` (all four character edits)."""
    from textattack.constraints.overlap import LevenshteinEditDistance
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import (
        CompositeTransformation, WordSwapNeighboringCharacterSwap, WordSwapRandomCharacterDeletion,
        WordSwapRandomCharacterInsertion, WordSwapRandomCharacterSubstitution,
    )

    transformation = CompositeTransformation([
        WordSwapNeighboringCharacterSwap(), WordSwapRandomCharacterSubstitution(),
        WordSwapRandomCharacterDeletion(), WordSwapRandomCharacterInsertion(),
    ])
    return transformation, [LevenshteinEditDistance(30)], GreedyWordSwapWIR("unk")


# name -> () -> (transformation, constraints beyond the shared ones, search method)
ATTACKS = {"pwws": _pwws, "deepwordbug": _deepwordbug}


def build_attack(name: str, wrapper, params: dict):
    """The ``textattack.Attack`` called ``name`` against ``wrapper`` (made by :func:`make_wrapper`).

    Both recipes forbid modifying a word twice or a stopword; the stopwords are passed explicitly (NLTK's
    English list from the offline ``nltk_data``), never looked up by TextAttack.
    """
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: {sorted(ATTACKS)}")
    from nltk.corpus import stopwords
    from textattack import Attack
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification

    transformation, constraints, search_method = ATTACKS[name]()
    budget = params.get("query_budget")  # None: unlimited; TextAttack slices lists with it, so it must be an int
    goal_function = UntargetedClassification(wrapper, query_budget=float("inf") if budget is None else int(budget),
                                             model_batch_size=params["batch_size"])
    shared = [RepeatModification(), StopwordModification(stopwords=set(stopwords.words("english")))]
    return Attack(goal_function, shared + constraints, transformation, search_method)


def attack_sample(test: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``size`` test examples (all of them if fewer), sorted by id.

    It depends only on the test file, ``size`` and ``seed``, so every model is attacked on the same examples.
    """
    sample = test.sample(n=min(size, len(test)), random_state=seed)
    return sample.sort_values("id", kind="stable").reset_index(drop=True)


def shard_indices(n: int, shard: int, num_shards: int) -> np.ndarray:
    """Positions in the sample of shard ``shard``: contiguous ranges, so shards concatenate in sample order."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is outside 0..{num_shards - 1}")
    return np.array_split(np.arange(n), num_shards)[shard]


def shard_record_path(csv_path: str | Path) -> Path:
    """Where the attack rule records, beside a shard's CSV, the attack it ran (read back by gather_attack)."""
    return Path(csv_path).with_suffix(".json")


def _row(result, sample_index: int, example, seconds: float) -> dict:
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    outcome = {SuccessfulAttackResult: "success", FailedAttackResult: "failure",
               SkippedAttackResult: "skipped"}[type(result)]
    original = result.original_result.attacked_text
    perturbed = result.perturbed_result.attacked_text
    words_perturbed = len(original.all_words_diff(perturbed))
    num_words = len(original.words)
    return {
        "sample_index": sample_index, "id": example.id, "original_text": original.text,
        "perturbed_text": perturbed.text, "label": int(example.label),
        "original_prediction": int(result.original_result.output),
        "perturbed_prediction": int(result.perturbed_result.output), "outcome": outcome,
        "num_queries": int(result.perturbed_result.num_queries), "words_perturbed": words_perturbed,
        "num_words": num_words, "perturbed_word_share": words_perturbed / num_words if num_words else 0.0,
        "seconds": seconds,
    }


def run_shard(model_dir: str | Path, test_frame: pd.DataFrame, attack_name: str, params: dict, shard: int,
              num_shards: int, resources_dir: str | Path, device) -> pd.DataFrame:
    """Attack the examples of one shard of the sample; one row per example (columns ``RESULT_COLUMNS``).

    Every example starts from the same seed and empty caches, so its result does not depend on which other
    examples share its shard. ``frame.attrs["attack_repr"]`` records every parameter of the attack.
    """
    from transformers import AutoConfig

    device = torch.device(device)
    model_dir = str(model_dir)
    model = models.load_classifier(model_dir, AutoConfig.from_pretrained(model_dir).num_labels).to(device)
    wrapper = make_wrapper(model, models.load_tokenizer(model_dir), params["max_length"], params["batch_size"],
                           resources_dir)
    attack = build_attack(attack_name, wrapper, params)
    sample = attack_sample(test_frame, params["sample_size"], params["seed"])
    rows = []
    for index in shard_indices(len(sample), shard, num_shards):
        example = sample.iloc[index]
        runtime.seed_everything(params["seed"])
        # TextAttack clears its caches after attacked examples only, not after skipped ones: start every
        # example from the same empty state, whatever the shard ran before.
        attack.clear_cache()
        start = time.perf_counter()
        result = attack.attack(example.text, int(example.label))
        rows.append(_row(result, int(index), example, time.perf_counter() - start))
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    frame.attrs["attack_repr"] = repr(attack)
    return frame


def gather(shard_frames: list[pd.DataFrame], sample_size: int) -> pd.DataFrame:
    """All shards in sample order; fails if an example is missing or attacked twice."""
    frame = pd.concat(shard_frames, ignore_index=True).sort_values("sample_index", kind="stable")
    if frame["sample_index"].tolist() != list(range(sample_size)) or frame["id"].duplicated().any():
        missing = sorted(set(range(sample_size)) - set(frame["sample_index"]))
        duplicated = sorted(frame.loc[frame["sample_index"].duplicated(), "sample_index"])
        raise ValueError(f"shards do not cover the sample of {sample_size} exactly once: "
                         f"missing positions {missing[:10]}, duplicated {duplicated[:10]}")
    return frame.reset_index(drop=True)


def _mean(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values) else None  # None, not NaN: the summary is strict JSON


def summarize(per_example: pd.DataFrame, params: dict) -> dict:
    """Attack metrics as TextAttack's attack summary defines them, over the attacked sample."""
    unknown = set(per_example["outcome"]) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}")
    counts = per_example["outcome"].value_counts()
    n = len(per_example)
    successes, failures, skipped = (int(counts.get(outcome, 0)) for outcome in OUTCOMES)
    attacked = per_example[per_example["outcome"] != "skipped"]
    return {
        "n": n, "successes": successes, "failures": failures, "skipped": skipped,
        "clean_accuracy": 1 - skipped / n if n else None,
        "accuracy_under_attack": failures / n if n else None,
        "attack_success_rate": successes / (successes + failures) if successes + failures else None,
        "mean_perturbed_word_share": _mean(per_example.loc[per_example["outcome"] == "success",
                                                           "perturbed_word_share"]),
        "mean_num_queries": _mean(attacked["num_queries"]),
        "mean_seconds": _mean(per_example["seconds"]),
        "query_budget": params.get("query_budget"),
    }
