"""The convergence check of every training record, and what the claims and the training loop do with it."""

import numpy as np
import pandas as pd
import pytest
import torch
from test_claims import SETTINGS, experiment, simulate
from test_training import FRAME, HP

from advlm import artifacts, claims, claims_summary, convergence, training

LABELS = np.array([0, 1] * 150)  # 300 validation examples, majority rate 0.5


def correct(accuracy: float, seed: int = 0) -> np.ndarray:
    """Per-example correctness with exactly ``accuracy`` of 300 right, in a seeded order."""
    right = np.zeros(len(LABELS), bool)
    right[np.random.default_rng(seed).permutation(len(LABELS))[: round(accuracy * len(LABELS))]] = True
    return right


FLAT = [0.50, 0.40, 0.38]  # training losses levelling off: a fall of 0.10, then of 0.02


def changed(before: np.ndarray, gained: int, lost: int) -> np.ndarray:
    """``before`` with ``gained`` wrong examples now right and ``lost`` right ones now wrong."""
    after = before.copy()
    after[np.flatnonzero(~before)[:gained]] = True
    after[np.flatnonzero(before)[:lost]] = False
    return after


def curve(accuracies, start: float = 0.663, flips: int = 6) -> list[np.ndarray]:
    """Per-epoch correctness (epoch 0: the start model) with the given accuracies of 300, each epoch ``flips``
    examples changing each way on top of its net change."""
    epochs = [correct(start, 0)]
    for accuracy in accuracies:
        net = round(accuracy * len(LABELS)) - int(epochs[-1].sum())
        epochs.append(changed(epochs[-1], gained=max(net, 0) + flips, lost=max(-net, 0) + flips))
    return epochs


def test_a_model_at_the_majority_rate_has_not_converged():
    stuck = np.array([label == 0 for label in LABELS])  # a constant prediction: right on exactly one class
    record = convergence.check([stuck] * 4, 3, LABELS, FLAT)
    assert not record["converged"] and "not above the majority rate 0.500" in record["reason"]
    assert record["p_above_majority"] > 0.4


def test_a_plateau_or_a_later_worse_epoch_has_converged():
    plateau = curve([0.78, 0.79, 0.79])
    record = convergence.check(plateau, 3, LABELS, FLAT)
    assert record["converged"], record["reason"]
    assert record["gain_window"] == 2 and record["gain_per_epoch"] == pytest.approx(0.005)
    assert record["gain_upper"] < convergence.GAIN_MARGIN and record["loss_levelling"]
    worse = convergence.check(curve([0.78, 0.79, 0.77]), 2, LABELS, FLAT)  # kept the second, the last one fell
    assert worse["converged"] and worse["gain_per_epoch"] == pytest.approx(-0.005)


def test_the_gain_bound_is_the_paired_t_interval_per_epoch():
    from scipy.stats import ttest_rel

    before = correct(0.70, 1)
    after = changed(before, gained=15, lost=6)
    gain, upper = convergence.gain_per_epoch(before, after, epochs=2)
    assert gain == pytest.approx(9 / 300 / 2)
    expected = ttest_rel(after.astype(float), before.astype(float)).confidence_interval(0.90).high / 2
    assert upper == pytest.approx(expected) and upper > gain
    assert convergence.gain_per_epoch(before, before, 2) == (0.0, 0.0)  # nothing changed: no interval to draw


def test_a_run_cut_while_its_curve_still_rises_is_flagged(tmp_path):
    """The validation curve of pgd, seed 1, in the default run at dd7b2b3 (0.580 -> 0.673 -> 0.740 -> 0.753, kept as
    converged then), with a fifth epoch at its plateau, and the training losses of pgd, seed 1, under the protocol
    (docs/protocol.md): cut after its third or fourth epoch, it is still rising."""
    rising = curve([0.580, 0.673, 0.740, 0.753, 0.750])
    losses = [1.283, 1.283, 0.974, 0.597, 0.237]
    third = convergence.check(rising[:4], 3, LABELS, losses[:3])
    assert not third["converged"] and "epochs 1-3 gained +0.080 per epoch" in third["reason"]
    assert "training loss still falling at an undiminished rate (-0.309 in the last epoch" in third["reason"]
    fourth = convergence.check(rising[:5], 4, LABELS, losses[:4])
    assert not fourth["converged"] and "not shown to have stopped improving: epochs 2-4" in fourth["reason"]
    assert "(-0.377 in the last epoch, -0.309 before)" in fourth["reason"]
    full = convergence.check(rising, 5, LABELS, losses)
    assert full["converged"], full["reason"]  # the loss fell 0.360 after 0.377: levelling off
    # the claims read the record: the cut model's rows say "not converged:" (test below)
    for name, record in (("pgd", fourth), ("base", full)):
        artifacts.write_json({"convergence": record}, tmp_path / f"models/rt/none/{name}/seed1/train_log.json")
    paths = [str(path) for path in tmp_path.rglob("train_log.json")]
    assert claims.unconverged_models(paths) == {("rt", "none", "pgd", 1)}


def test_a_loss_near_zero_has_levelled_off():
    """base, seed 1, under the protocol: memorising its last examples, its loss fell 0.063 after 0.042; a plateau."""
    assert convergence.loss_levelling([0.119, 0.077, 0.014]) is None
    assert convergence.loss_levelling([0.40, 0.25, 0.09]) is not None  # 0.16 after 0.15, above the flat fall


def test_a_training_loss_still_falling_fast_is_flagged():
    flat = curve([0.78, 0.78, 0.78])
    record = convergence.check(flat, 3, LABELS, [0.60, 0.40, 0.15])
    assert not record["converged"] and not record["loss_levelling"]
    assert (
        "training loss still falling at an undiminished rate (-0.250 in the last epoch, -0.200 before)"
        in (record["reason"])
    )
    assert convergence.check(flat, 3, LABELS, [0.60, 0.40, 0.35])["converged"]  # a fall of 0.05: nearly flat
    two = convergence.check(flat[:3], 2, LABELS, [0.60, 0.40])
    assert not two["converged"] and "too few to show the training loss levelling off" in two["reason"]


def test_training_at_zero_learning_rate_is_flagged_and_every_epoch_runs(tiny_bert, tmp_path):
    stuck = training.finetune(
        str(tiny_bert), FRAME, FRAME, tmp_path / "stuck", HP | {"lr": 0.0, "epochs": 3},
        "base", {}, 5, 2, torch.device("cpu"),
    )  # fmt: skip
    assert stuck["epochs_run"] == 3 and stuck["kept_epoch"] == 3  # no early stopping: the last epoch is kept
    assert not stuck["convergence"]["converged"]
    assert stuck["steps"] == 3 * len(FRAME) // HP["batch_size"] and stuck["examples_seen"] == 3 * len(FRAME)
    assert stuck["passes_per_step"] == {"forward": 1.0, "backward": 1.0}
    assert stuck["kept_strength"] == {"budget_scale": None, "epsilon": None, "full_strength_share": 1.0}


def test_a_run_trains_on_only_while_its_check_fails_and_never_past_the_cap():
    from advlm.training.loop import continues

    def never_asked():
        raise AssertionError("the check is asked only after finetune.epochs")

    assert continues(2, 3, 2, never_asked)
    assert not continues(3, 3, 2, lambda: True)  # converged at epochs: stops there
    assert continues(3, 3, 2, lambda: False) and continues(4, 3, 2, lambda: False)
    assert not continues(5, 3, 2, lambda: False)  # two past epochs: flagged, not trained on
    assert not continues(3, 3, 0, lambda: False)  # none extra: exactly epochs


def test_an_unconverged_run_trains_to_its_cap_and_is_still_flagged(tiny_bert, tmp_path):
    stuck = training.finetune(
        str(tiny_bert), FRAME, FRAME, tmp_path / "stuck", HP | {"lr": 0.0, "epochs": 2, "extra_epochs": 2},
        "base", {}, 5, 2, torch.device("cpu"),
    )  # fmt: skip
    assert stuck["epochs_run"] == 4 and stuck["kept_epoch"] == 4 and stuck["extension_epochs"] == 2
    assert not stuck["convergence"]["converged"] and len(stuck["validation_correct"]) == 5


@pytest.mark.parametrize("selection", ["last", "best"])
def test_a_ramp_epoch_is_never_kept(tiny_bert, tmp_path, selection):
    """The budget ramp covers the first epoch; with two epochs the kept one is the second whichever rule, even
    where the ramp epoch had the better validation accuracy."""
    hp = HP | {"epochs": 2, "budget_ramp_epochs": 1, "selection": selection}
    record = training.finetune(
        str(tiny_bert), FRAME, FRAME, tmp_path / selection, hp, "pgd", {"epsilon": 0.5}, 5, 2, torch.device("cpu")
    )
    ramp, full = record["history"]
    steps = len(FRAME) // HP["batch_size"]
    assert ramp["full_strength_share"] == pytest.approx(1 / steps) and ramp["budget_scale"] == 1.0
    assert full["full_strength_share"] == 1.0 and record["kept_epoch"] == 2
    assert record["kept_strength"] == {"budget_scale": 1.0, "epsilon": 0.5, "full_strength_share": 1.0}
    assert training.loop._keeps(selection, None, ramp | {"validation": {"accuracy": 1.0}}) is False


def test_a_ramp_that_leaves_no_full_strength_epoch_is_rejected(tiny_bert, tmp_path):
    with pytest.raises(ValueError, match="budget_ramp_epochs 2 leaves no epoch at full strength in finetune.epochs 2"):
        training.finetune(
            str(tiny_bert), FRAME, FRAME, tmp_path / "x", HP | {"epochs": 2, "budget_ramp_epochs": 2}, "pgd", {}, 5, 2,
            torch.device("cpu"),
        )  # fmt: skip


def test_best_selection_keeps_the_best_full_strength_epoch():
    keeps = training.loop._keeps
    epoch = {"full_strength_share": 1.0}
    first, better, worse = (epoch | {"validation": {"accuracy": a}} for a in (0.7, 0.8, 0.75))
    assert keeps("best", None, first) and keeps("best", first, better) and not keeps("best", better, worse)
    assert keeps("last", better, worse)


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
