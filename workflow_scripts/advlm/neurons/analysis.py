"""The whole probe analysis of one model for one tag sequence: the probe, the ranking and every specialization
metric, in one record (``probe.json``) and one ranking table (``ranking.csv``)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from . import ablation, control, features, probe, probeless, ranking, specialization, subset


def analyze(
    activations: np.ndarray, words, tags, sentence_ids, hp: dict, regularization: dict | None, model: str
) -> tuple[dict, pd.DataFrame]:
    """The whole analysis of one model for one tag sequence; returns (report, ranking table).

    ``hp`` is the config's ``neurons`` block, every key filled (the schema holds the defaults); ``words`` are
    the word forms, which the control task needs. ``regularization`` None: choose (C, l1_ratio) from the grid on
    validation (the reference model); else ``{"C", "l1_ratio", "chosen_on"}``, fitted as given. ``model``
    names this model in the record. Nothing passed in is changed.
    """
    started = time.perf_counter()
    _, layers, hidden = activations.shape
    tags, sentence_ids = np.asarray(tags), np.asarray(sentence_ids)
    split = features.split_by_sentence(sentence_ids, hp["seed"], hp["test_share"], hp["validation_share"])
    X = features.standardized_splits(activations, split)  # this function's own arrays
    y = {name: tags[index] for name, index in split.items()}

    solver = {"max_iter": hp["max_iter"], "tol": hp["tol"]}  # the probe solver's stopping rule, for every fit
    best, grid = probe.select_probe(X, y, hp["C_grid"], hp["l1_ratio_grid"], regularization, **solver)
    by_layer = probe.layer_accuracies(best, X, y, hidden, **solver)
    classes = [str(c) for c in best.classes]
    top_report, top = specialization.tag_specialization(best.weights, classes, hidden, hp["top_mass"])
    probeless_score = probeless.probeless_scores(X["train"], y["train"])
    probeless_report = probeless.probeless_concentration(probeless_score, hp["top_mass"], hidden)
    ordering, cutoffs = ranking.neuron_ordering(best.weights, hp["ordering_stride"])
    full = {name: probe.accuracy(best, X[name], y[name]) for name in X}
    full_accuracy = {name: scores["accuracy"] for name, scores in full.items()}
    ablation_report = ablation.ablation(
        best, X["test"], y["test"], ordering, hp["ablation_n"], hp["ablation_draws"], hp["seed"]
    )
    control_seeds = [[hp["seed"], k] for k in range(hp["control_seeds"])]
    controls = control.control_tasks(words, tags, split, control_seeds)
    control_full = [probe.refit(best, X, task, slice(None), **solver) for task in controls]
    # From here on the features are needed in ranking order only, so that the top-n neurons are the view [:, :n].
    # Split by split, the ranked copy is made and the unranked array leaves X and is freed: memory peaks at the
    # features plus one split, not twice the features. X is empty afterwards.
    ranked = {name: X.pop(name)[:, ordering] for name in list(X)}
    minimal = subset.minimal_subset(best, ranked, y, full_accuracy, hp["minimal_accuracy_share"], **solver)
    minimal_neurons = ordering[: minimal["n"]]
    minimal = {**minimal, "layer_distribution": np.bincount(minimal_neurons // hidden, minlength=layers).tolist()}
    control_minimal = [probe.refit(best, ranked, task, slice(0, minimal["n"]), **solver) for task in controls]
    control_accuracy = {
        "all_layers": float(np.mean([run["test"] for run in control_full])),
        "minimal_subset": float(np.mean([run["test"] for run in control_minimal])),
    }
    # Hewitt & Liang: linguistic minus control accuracy, both on test, same probe family and settings.
    selectivity = {
        "all_layers": full_accuracy["test"] - control_accuracy["all_layers"],
        "minimal_subset": minimal["test"] - control_accuracy["minimal_subset"],
    }
    report = {
        "model": model,
        "tagset": hp["tagset"],
        "num_words": {name: int(len(index)) for name, index in split.items()},
        "num_sentences": int(len(np.unique(sentence_ids))),
        "num_layers": layers,
        "hidden_size": hidden,
        "num_neurons": layers * hidden,
        "classes": classes,
        "train_class_counts": {tag: int(np.sum(y["train"] == tag)) for tag in classes},
        "hyperparameters": {
            "C": best.C,
            "l1_ratio": best.l1_ratio,
            "chosen_on": regularization["chosen_on"] if regularization else model,
            "selected": regularization is None,
        },
        "grid": grid,
        "accuracy": {"all_layers": {**full_accuracy, "test_per_tag": full["test"]["per_tag"]}, **by_layer},
        "top_neurons": top_report,
        "ordering_cutoffs": cutoffs,
        "ablation": ablation_report,
        "minimal_subset": minimal,
        "probeless": probeless_report,
        "control_task": {
            "word_types": "lowercased",
            "labels_drawn_from": "train tag distribution",
            "rng_seeds": control_seeds,
            "accuracy": control_accuracy,
            "runs": {"all_layers": control_full, "minimal_subset": control_minimal},
        },
        "selectivity": selectivity,
        "specialization": specialization.specialization_summary(
            {
                "minimal_share": minimal["share"],
                "selectivity": selectivity["all_layers"],
                "mean_jaccard": top_report["jaccard"]["mean_off_diagonal"],
                "probeless_share": probeless_report["share"],
            }
        ),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return report, ranking.ranking_table(best.weights, classes, ordering, top, hidden, probeless_score)
