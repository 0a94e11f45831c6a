"""Running attacks: the wrapped model, one example at a time from a fixed state, one shard of a model's sample."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import models, runtime, timing
from .resources import AttackResources
from .sharding import attack_sample, correct_prefix, shard_indices

RESULT_COLUMNS = [
    "sample_index",
    "id",
    "original_text",
    "perturbed_text",
    "label",
    "original_prediction",
    "perturbed_prediction",
    "outcome",
    "num_queries",
    "words_perturbed",
    "num_words",
    "visible_words",
    "perturbed_word_share",
    "seconds",
]


def make_wrapper(model, tokenizer, max_length: int, batch_size: int, resources_dir: str | Path):
    """``model`` as TextAttack sees it (``wrapper.ModelWrapper``), after TextAttack's offline set-up."""
    runtime.offline_textattack(resources_dir)
    from .wrapper import ModelWrapper

    return ModelWrapper(model, tokenizer, max_length, batch_size)


def _row(result, sample_index: int, example, seconds: float, visible_words) -> dict:
    """One attacked example; its perturbed-word share counts the words the model sees (``visible_words``: a
    text -> count), of both the perturbed and the whole text."""
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    outcome = {SuccessfulAttackResult: "success", FailedAttackResult: "failure", SkippedAttackResult: "skipped"}[
        type(result)
    ]
    original = result.original_result.attacked_text
    perturbed = result.perturbed_result.attacked_text
    perturbed_indices = original.all_words_diff(perturbed)
    visible = visible_words(original.text)
    return {
        "sample_index": sample_index,
        "id": example.id,
        "original_text": original.text,
        "perturbed_text": perturbed.text,
        "label": int(example.label),
        "original_prediction": int(result.original_result.output),
        "perturbed_prediction": int(result.perturbed_result.output),
        "outcome": outcome,
        "num_queries": int(result.perturbed_result.num_queries),
        "words_perturbed": len(perturbed_indices),
        "num_words": len(original.words),
        "visible_words": visible,
        "perturbed_word_share": sum(index < visible for index in perturbed_indices) / visible if visible else 0.0,
        "seconds": seconds,
    }


def attack_examples(attack, sample: pd.DataFrame, indices, seed: int) -> pd.DataFrame:
    """Attack the examples at ``indices`` of ``sample``; one row per example (columns ``RESULT_COLUMNS``).

    Every example starts from the same seed and empty caches, so its result does not depend on which other
    examples were attacked before it (by this process, shard or wrapper).
    """
    rows = [_attack_one(attack, sample.iloc[index], int(index), seed) for index in indices]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def attack_until(attack, examples: pd.DataFrame, successes: int, seed: int) -> pd.DataFrame:
    """Attack ``examples`` in a seeded random order until ``successes`` attacks have succeeded or every example
    was tried (TextAttack's ``Trainer._generate_adversarial_examples``); one row per attacked example."""
    order = np.random.default_rng(seed).permutation(len(examples))
    rows, found = [], 0
    for index in order:
        if found >= successes:
            break
        rows.append(_attack_one(attack, examples.iloc[index], int(index), seed))
        found += rows[-1]["outcome"] == "success"
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _attack_one(attack, example, index: int, seed: int) -> dict:
    from .truncation import visible_word_counter  # imports textattack, set up by now

    runtime.seed_everything(seed)
    # TextAttack clears its caches after attacked examples only, not after skipped ones: start every
    # example from the same empty state, whatever was attacked before.
    attack.clear_cache()
    start = time.perf_counter()
    result = attack.attack(example.text, int(example.label))
    seconds = time.perf_counter() - start
    return _row(result, index, example, seconds, visible_word_counter(attack.goal_function.model))


def run_shard(
    model_dir: str | Path,
    test_frame: pd.DataFrame,
    attack_name: str,
    params: dict,
    shard: int,
    num_shards: int,
    resources: AttackResources | str | Path,
    device,
    until_correct: bool = False,
    successes: int | None = None,
) -> pd.DataFrame:
    """Attack the examples of one shard of the sample; one row per example (columns ``RESULT_COLUMNS``).

    The sample: ``params["sample_size"]`` seeded examples (``sharding.attack_sample``), or with ``until_correct``
    the seeded order cut after that many examples the model gets right (``sharding.correct_prefix``). With
    ``successes`` (advaug's training attack), every example of ``test_frame`` in a seeded order until that many
    attacks have succeeded (``attack_until``, as a2t does every epoch), in one shard.
    ``resources``: an :class:`AttackResources`, or the directory holding ``nltk_data/`` (and, for the
    attacks that need them, ``counterfitted/`` and ``minilm/``). ``frame.attrs["attack_repr"]`` records every
    parameter of the attack, ``frame.attrs["resources"]`` the checksums of the resources it used,
    ``frame.attrs["sample_size"]`` the size of the whole sample.
    """
    from transformers import AutoConfig

    resources = AttackResources.coerce(resources)
    device = torch.device(device)
    model_dir = str(model_dir)
    model = models.load_classifier(model_dir, AutoConfig.from_pretrained(model_dir).num_labels).to(device)
    timing.watch(model)  # the victim: its queries against everything else the attack does
    wrapper = make_wrapper(
        model, models.load_tokenizer(model_dir), params["max_length"], params["batch_size"], resources.root
    )
    from .recipes import build_attack  # imports textattack: after make_wrapper's offline set-up

    attack = build_attack(attack_name, wrapper, params, resources)
    if successes is not None:
        frame = attack_until(attack, test_frame, successes, params["seed"])
        sample = test_frame
    elif until_correct:
        sample = correct_prefix(
            test_frame, params["sample_size"], params["seed"], lambda texts: wrapper(texts).argmax(1).cpu().numpy()
        )
    else:
        sample = attack_sample(test_frame, params["sample_size"], params["seed"])
    if successes is None:
        frame = attack_examples(attack, sample, shard_indices(len(sample), shard, num_shards), params["seed"])
    frame.attrs["attack_repr"] = repr(attack)
    frame.attrs["resources"] = resources.describe(attack_name)
    frame.attrs["sample_size"] = len(sample)
    return frame
