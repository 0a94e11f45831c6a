"""The whole probe analysis of one model for one tag sequence: the probe refits, the ranking and every
specialization metric, in one record (``probe.json``) and one ranking table (``ranking.csv``)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from . import ablation, control, features, probe, probeless, ranking, specialization, stability, subset


def _fit_refit(activations, tags, sentence_ids, hp: dict, refit: int, regularization: dict | None) -> dict:
    """One refit's split, standardized features, probe (the grid's best where ``regularization`` is None) and
    neuron ordering."""
    split = stability.refit_split(sentence_ids, tags, hp, refit)
    X = features.standardized_splits(activations, split)  # this refit's own arrays
    y = {name: tags[index] for name, index in split.items()}
    fitted, grid = probe.select_probe(
        X, y, hp["C_grid"], hp["l1_ratio_grid"], regularization, max_iter=hp["max_iter"], tol=hp["tol"]
    )
    ordering, cutoffs = ranking.neuron_ordering(fitted.weights, hp["ordering_stride"])
    full = {name: probe.accuracy(fitted, X[name], y[name]) for name in X}
    return {"split": split, "X": X, "y": y, "probe": fitted, "grid": grid, "full": full, "ordering": ordering,
            "cutoffs": cutoffs}  # fmt: skip


def _curves(fit: dict, target: float, hp: dict, refit: int) -> tuple[dict, dict, dict]:
    """The minimal subset along the refit's ranking and along a random ordering (the null: a ranking that knows
    nothing), and the ranked features (for the control task's minimal-subset probes). Frees the refit's features."""
    solver = {"max_iter": hp["max_iter"], "tol": hp["tol"]}
    full = {name: scores["accuracy"] for name, scores in fit["full"].items()}
    X = fit.pop("X")
    null_order = np.random.default_rng([hp["seed"], refit, 2]).permutation(X["train"].shape[1])
    null = subset.minimal_subset(
        fit["probe"], {name: X[name][:, null_order] for name in X}, fit["y"], full, target, hp["grid_ratio"], **solver
    )
    # The top-n neurons are the view [:, :n] of the ranked copy; the unranked arrays are freed split by split.
    ranked = {name: X.pop(name)[:, fit["ordering"]] for name in list(X)}
    minimal = subset.minimal_subset(fit["probe"], ranked, fit["y"], full, target, hp["grid_ratio"], **solver)
    return minimal, null, ranked


def analyze(
    activations: np.ndarray,
    words,
    tags,
    sentence_ids,
    hp: dict,
    regularization: dict | None,
    model: str,
    reference_accuracy: float | None = None,
) -> tuple[dict, pd.DataFrame]:
    """The whole analysis of one model for one tag sequence; returns (report, ranking table).

    ``hp`` is the config's ``neurons`` block, every key filled (the schema holds the defaults); ``words`` are
    the word forms, which the control task needs. ``regularization`` None: choose (C, l1_ratio) from the grid on
    refit 0's validation split (the reference model); else ``{"C", "l1_ratio", "chosen_on"}``, fitted as given.
    ``reference_accuracy``: the reference probe's mean validation accuracy, which a ``reference_share`` target
    scales; None for the reference itself, whose own refits give it. ``model`` names this model in the record.
    Nothing passed in is changed.

    The probe is refit ``hp["refits"]`` times (:func:`advlm.neurons.stability.refit_split`); the minimal share is
    the mean over refits, with its refit variance. Refit 0 also gives what is not refit: the per-layer probes, the
    tags' top neurons, the probe ablation, the control task and the probe-free ranking.
    """
    started = time.perf_counter()
    _, layers, hidden = activations.shape
    tags, sentence_ids = np.asarray(tags), np.asarray(sentence_ids)
    solver = {"max_iter": hp["max_iter"], "tol": hp["tol"]}

    fits = [_fit_refit(activations, tags, sentence_ids, hp, 0, regularization)]
    best = fits[0]["probe"]
    fixed = {"C": best.C, "l1_ratio": best.l1_ratio}  # every further refit uses refit 0's regularization
    fits += [_fit_refit(activations, tags, sentence_ids, hp, r, fixed) for r in range(1, hp["refits"])]
    first = fits[0]
    X, y, split = first["X"], first["y"], first["split"]
    classes = [str(c) for c in best.classes]

    by_layer = probe.layer_accuracies(best, X, y, hidden, **solver)
    top_report, top = specialization.tag_specialization(best.weights, classes, hidden, hp["top_mass"])
    probeless_score = probeless.probeless_scores(X["train"], y["train"])
    probeless_report = probeless.probeless_concentration(probeless_score, hp["top_mass"], hidden)
    ablation_report = ablation.ablation(
        best, X["test"], y["test"], first["ordering"], hp["ablation_n"], hp["ablation_draws"], hp["seed"]
    )
    control_seeds = [[hp["seed"], k] for k in range(hp["control_seeds"])]
    controls = control.control_tasks(words, tags, split, control_seeds)
    control_full = [probe.refit(best, X, task, slice(None), **solver) for task in controls]

    own_accuracy = float(np.mean([fit["full"]["validation"]["accuracy"] for fit in fits]))
    target = subset.shared_target(
        hp["minimal_target"], own_accuracy if reference_accuracy is None else reference_accuracy
    )
    minimal, null, ranked = [], [], None
    for r, fit in enumerate(fits):
        real, random_order, ranked_features = _curves(fit, target["accuracy"], hp, r)
        minimal.append(real)
        null.append(random_order)
        ranked = ranked_features if r == 0 else ranked  # refit 0's, for the control task below
    control_minimal = [probe.refit(best, ranked, task, slice(0, minimal[0]["n"]), **solver) for task in controls]
    del ranked

    full_accuracy = {name: scores["accuracy"] for name, scores in first["full"].items()}
    control_accuracy = {
        "all_layers": float(np.mean([run["test"] for run in control_full])),
        "minimal_subset": float(np.mean([run["test"] for run in control_minimal])),
    }
    # Hewitt & Liang: linguistic minus control accuracy, both on test, same probe family and settings.
    selectivity = {
        "all_layers": full_accuracy["test"] - control_accuracy["all_layers"],
        "minimal_subset": minimal[0]["test"] - control_accuracy["minimal_subset"],
    }
    orderings = [fit["ordering"] for fit in fits]
    consensus = stability.consensus_ordering(orderings)
    share = stability.spread([m["share"] for m in minimal])
    validation_words = len(split["validation"])
    report = {
        "model": model,
        "tagset": hp["tagset"],
        "num_words": {name: int(len(index)) for name, index in split.items()},
        "num_words_total": int(len(tags)),
        "num_sentences": int(len(np.unique(sentence_ids))),
        "num_layers": layers,
        "hidden_size": hidden,
        "num_neurons": layers * hidden,
        "classes": classes,
        "train_class_counts": {tag: int(np.sum(y["train"] == tag)) for tag in classes},
        "hyperparameters": {
            **fixed,
            "chosen_on": regularization["chosen_on"] if regularization else model,
            "selected": regularization is None,
        },
        "grid": first["grid"],
        "accuracy": {
            "all_layers": {**full_accuracy, "test_per_tag": first["full"]["test"]["per_tag"]},
            **by_layer,
            "validation_refits": stability.spread([fit["full"]["validation"]["accuracy"] for fit in fits]),
        },
        "top_neurons": top_report,
        "ordering_cutoffs": first["cutoffs"],
        "ablation": ablation_report,
        "minimal_subset": {
            "target": {
                **target,
                # the binomial standard error of a validation accuracy at the target: what the split resolves
                "validation_se": float(np.sqrt(target["accuracy"] * (1 - target["accuracy"]) / validation_words)),
            },
            "grid_ratio": hp["grid_ratio"],
            "share": share,
            "n": float(np.mean([m["n"] for m in minimal])),
            "reached": [m["reached"] for m in minimal],
            "test": float(np.mean([m["test"] for m in minimal])),
            "layer_distribution": np.bincount(
                first["ordering"][: minimal[0]["n"]] // hidden, minlength=layers
            ).tolist(),
            "refits": minimal,
        },
        "null": {
            "ordering": "random (seed [seed, refit, 2])",
            "share": stability.spread([m["share"] for m in null]),
            "reached": [m["reached"] for m in null],
            "refits": null,
        },
        "stability": {
            "refits": hp["refits"],
            "train_words_per_tag": hp["max_train_words_per_tag"],
            "top_k_overlap": stability.top_k_overlap(orderings, hp["stability_top_k"]),
            "top_k_layer_distribution": np.bincount(
                consensus[: hp["stability_top_k"]] // hidden, minlength=layers
            ).tolist(),
        },
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
                "minimal_share": share["mean"],
                "selectivity": selectivity["all_layers"],
                "mean_jaccard": top_report["jaccard"]["mean_off_diagonal"],
                "probeless_share": probeless_report["share"],
            },
            {"minimal_share": share["variance_of_mean"]},
        ),
        "seconds": round(time.perf_counter() - started, 2),
    }
    table = ranking.ranking_table(best.weights, classes, first["ordering"], top, hidden, probeless_score, consensus)
    return report, table
