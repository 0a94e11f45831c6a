"""The causal test in the classifier itself: its accuracy in and out of domain with its top specialized neurons
ablated, against as many random neurons drawn layer by layer in the same numbers.

A neuron is a unit of one layer's hidden state (layer 0: the embedding output), as in the probe. Ablating it sets
that unit, at every token position, to its mean activation on the probe corpus (mean ablation): a zero would be a
value the unit never takes where LayerNorm gives it a large offset, and would measure the shock, not the loss of
what the unit says. If the paper's "improved generalization is due to more specialized neurons" holds, ablating a
model's top neurons costs it more out-of-domain accuracy than ablating random ones (``specific_drop`` > 0).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .. import models


def neuron_means(activations: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Mean activation of every neuron over the words ``[words, layers, hidden]`` (read in chunks: a memory map)."""
    total = np.zeros(activations.shape[1:])
    for start in range(0, len(activations), chunk):
        total += activations[start : start + chunk].astype(np.float64).sum(axis=0)
    return (total / len(activations)).astype(np.float32)


def layer_matched_random(neurons: np.ndarray, hidden: int, layers: int, rng) -> np.ndarray:
    """As many random neurons per layer as ``neurons`` has in it, none of ``neurons``: a control that removes as
    much from each layer, so that a difference is the ranking's, not the layers'."""
    counts = np.bincount(neurons // hidden, minlength=layers)
    if np.any(2 * counts > hidden):
        raise ValueError(
            f"neurons.causal.n: {len(neurons)} top neurons leave some layer fewer other units than it needs for the"
            f" random arm (per layer {counts.tolist()} of {hidden}); choose n at most {hidden // 2}"
        )
    drawn = [
        rng.choice(np.setdiff1d(np.arange(layer * hidden, (layer + 1) * hidden), neurons), count, replace=False)
        for layer, count in enumerate(counts)
        if count
    ]
    return np.sort(np.concatenate(drawn)) if drawn else np.zeros(0, dtype=int)


@contextlib.contextmanager
def ablated(model, neurons: np.ndarray, means: np.ndarray):
    """Within the block, ``model``'s hidden state units ``neurons`` (flat ``layer * hidden + unit``) are set to
    ``means[layer, unit]`` at every position: forward hooks on the embeddings (layer 0) and each encoder layer."""
    hidden = means.shape[1]
    encoder = model.base_model
    modules = [encoder.embeddings, *encoder.encoder.layer]
    handles = []
    for layer, module in enumerate(modules):
        units = neurons[neurons // hidden == layer] % hidden
        if not len(units):
            continue
        values = torch.as_tensor(means[layer, units])
        index = torch.as_tensor(units)

        def hook(_module, _inputs, output, index=index, values=values):
            states = output[0] if isinstance(output, tuple) else output
            states[..., index] = values.to(states.dtype).to(states.device)  # in place: the output object stays

        handles.append(module.register_forward_hook(hook))
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def _accuracy(model, tokenizer, examples, neurons, means, batch_size, max_length, device) -> float:
    with ablated(model, neurons, means):
        probabilities = models.predict_proba(
            model, tokenizer, examples["text"].tolist(), batch_size, max_length, device
        ).numpy()
    return float(np.mean(probabilities.argmax(1) == examples["label"].to_numpy()))


def classifier_ablation(
    model, tokenizer, evalsets: dict, top: np.ndarray, means: np.ndarray, settings: dict, seed: int, batch_size: int,
    max_length: int, device,
) -> dict:  # fmt: skip
    """Accuracy on each evaluation set (``{name: examples}``; "test" in domain, the rest out of domain) with no
    neuron, the ``top`` neurons and ``settings["draws"]`` layer-matched random sets ablated, on the first
    ``settings["examples"]`` examples of a seeded order of each set; the drops and ``specific_drop`` (top minus
    random drop, = random minus top accuracy) per set and their out-of-domain mean."""
    layers, hidden = means.shape
    rng = np.random.default_rng([seed, 3])
    randoms = [layer_matched_random(top, hidden, layers, rng) for _ in range(settings["draws"])]
    per_set = {}
    for name, examples in evalsets.items():
        order = np.random.default_rng([seed, 4]).permutation(len(examples))[: settings["examples"]]
        sample = examples.iloc[np.sort(order)]
        args = (sample, means, batch_size, max_length, device)
        none = _accuracy(model, tokenizer, sample, np.zeros(0, dtype=int), *args[1:])
        top_accuracy = _accuracy(model, tokenizer, sample, top, *args[1:])
        random_accuracy = float(np.mean([_accuracy(model, tokenizer, sample, r, *args[1:]) for r in randoms]))
        per_set[name] = {
            "examples": len(sample),
            "none": none,
            "top": top_accuracy,
            "random": random_accuracy,
            "specific_drop": random_accuracy - top_accuracy,
        }
    ood = [name for name in per_set if name != "test"]
    summary = {
        key: float(np.mean([per_set[name][key] for name in ood])) if ood else float("nan")
        for key in ("none", "top", "random", "specific_drop")
    }
    return {
        "n": int(len(top)),
        "ablation": "mean activation on the probe corpus",
        "random_draws": settings["draws"],
        "layer_distribution": np.bincount(top // hidden, minlength=layers).tolist(),
        "per_set": per_set,
        "ood_mean": summary,
    }
