"""The convergence check of every training record, and what the claims and the training loop do with it."""

import numpy as np
import pandas as pd
import pytest
import torch
from test_claims import SETTINGS, experiment, simulate
from test_training import FRAME, HP

from advlm import claims, claims_summary, convergence, training

LABELS = np.array([0, 1] * 150)  # 300 validation examples, majority rate 0.5


def correct(accuracy: float, seed: int = 0) -> np.ndarray:
    """Per-example correctness with exactly ``accuracy`` of 300 right, in a seeded order."""
    right = np.zeros(len(LABELS), bool)
    right[np.random.default_rng(seed).permutation(len(LABELS))[: round(accuracy * len(LABELS))]] = True
    return right


def test_a_model_at_the_majority_rate_has_not_converged():
    stuck = np.array([label == 0 for label in LABELS])  # a constant prediction: right on exactly one class
    record = convergence.check([stuck, stuck, stuck], best_epoch=1, labels=LABELS)
    assert not record["converged"] and "not above the majority rate 0.500" in record["reason"]
    assert record["p_above_majority"] > 0.4


def test_a_plateau_or_a_later_worse_epoch_has_converged():
    start, first = correct(0.5, 1), correct(0.78, 2)
    plateau = first.copy()
    plateau[np.flatnonzero(~first)[:3]] = True  # 3 examples more right, none lost: within the noise
    assert convergence.check([start, first, plateau], best_epoch=2, labels=LABELS)["converged"]
    later_worse = convergence.check([start, plateau, first], best_epoch=1, labels=LABELS)
    assert later_worse["converged"] and later_worse["p_still_improving"] is None


def test_a_model_still_improving_at_its_last_epoch_has_not_converged():
    first = correct(0.70, 1)
    better = first.copy()
    better[np.flatnonzero(~first)[:20]] = True  # 20 newly right, none newly wrong: McNemar p = 2**-20
    record = convergence.check([correct(0.5, 0), first, better], best_epoch=2, labels=LABELS)
    assert not record["converged"] and "still improving at its last epoch 2" in record["reason"]
    assert record["p_still_improving"] == pytest.approx(0.5**20)


def test_training_at_zero_learning_rate_is_flagged_and_early_stopping_stops(tiny_bert, tmp_path):
    stuck = training.finetune(
        str(tiny_bert), FRAME, FRAME, tmp_path / "stuck", HP | {"lr": 0.0, "patience": 1, "epochs": 4},
        "base", {}, 5, 2, torch.device("cpu"),
    )  # fmt: skip
    # nothing changes after epoch 1: patience 1 stops after epoch 2, and the model is at chance
    assert stuck["epochs_run"] == 2 and stuck["stopped_early"] and stuck["best_epoch"] == 1
    assert not stuck["convergence"]["converged"]
    assert stuck["steps"] == 2 * len(FRAME) // HP["batch_size"] and stuck["examples_seen"] == 2 * len(FRAME)
    assert stuck["passes_per_step"] == {"forward": 1.0, "backward": 1.0}


def test_passes_per_step_are_counted_for_each_method(tiny_bert, tmp_path):
    pgd = training.finetune(
        str(tiny_bert), FRAME, FRAME, tmp_path / "pgd", HP | {"epochs": 1}, "pgd", {"steps": 2}, 5, 2,
        torch.device("cpu"),
    )  # fmt: skip
    # 2 ascent passes (each backpropagated to delta), then the adversarial and the clean pass of the update
    assert pgd["passes_per_step"] == {"forward": 4.0, "backward": 4.0}


def test_the_budget_ramp_scales_every_size_of_the_ball():
    method = training.build_method("pgd", {"epsilon": 0.4, "step_size": 0.2, "init_mag": 0.1})
    method.set_budget_scale(0.25)
    assert (method.perturbation.epsilon, method.perturbation.step_size) == pytest.approx((0.1, 0.05))
    assert method.perturbation.init_mag == pytest.approx(0.025)
    method.set_budget_scale(1.0)
    assert method.perturbation == method.full_perturbation
    lds = training.build_method("lds", {"epsilon": 0.4})
    lds.set_budget_scale(0.5)
    embeds = torch.randn(2, 5, 8)
    inputs = {"attention_mask": torch.ones(2, 5, dtype=torch.long)}

    class Linear(torch.nn.Module):  # enough of a model for LDS's direction: logits from inputs_embeds
        def forward(self, inputs_embeds, attention_mask):
            return type("Out", (), {"logits": inputs_embeds.sum(1)[:, :2]})()

    r = lds.direction(Linear(), inputs, embeds)
    assert r.flatten(1).norm(dim=1) == pytest.approx(torch.full((2,), 0.2), abs=1e-5)


def test_claims_rows_with_an_unconverged_cell_say_so_instead_of_a_verdict():
    outcomes = simulate(0.15)  # a planted effect that would be 'supported'
    settings = {**SETTINGS, "statements": {"claim": {
        "family": "robustness", "direction": "better",
        "contrasts": [{"treatment": ["none/a2t"], "control": ["none/base"]}],
    }}}  # fmt: skip
    table = claims.claims_table(outcomes, settings, experiment(), unconverged={("rt", "none", "a2t", 2)})
    assert set(table["verdict"]) == {"not converged"}
    assert set(table["note"]) == {"not converged: none/a2t seed 2"}
    assert table["p_holm"].isna().all()
    converged = claims.claims_table(outcomes, settings, experiment())
    assert converged.set_index("metric").loc["accuracy_under_attack", "verdict"] == "supported"
    # the headline, the primary endpoint (accuracy under the first attack), says why there is no verdict
    (line,) = claims_summary.headline(table).to_dict("records")
    assert line["primary endpoint"].startswith("accuracy_under_attack (pwws)")
    assert line["verdict"] == "not converged: none/a2t seed 2"
    (line,) = claims_summary.headline(converged).itertuples()
    assert line.verdict == "supported" and line._4.startswith("+0.1") and line.n == "3 seeds × 400 ex."


def test_unconverged_models_are_read_from_the_training_records(tmp_path):
    from advlm import artifacts

    for method, ok in (("base", True), ("pgd", False)):
        path = tmp_path / f"results/models/rt/none/{method}/seed1/train_log.json"
        artifacts.write_json({"convergence": {"converged": ok}}, path)
    paths = sorted(str(p) for p in tmp_path.rglob("train_log.json"))
    assert claims.unconverged_models(paths) == {("rt", "none", "pgd", 1)}
    assert pd.Series(paths).str.contains("pgd").sum() == 1
