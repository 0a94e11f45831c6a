"""Embedding-space adversarial training methods (advlm.training): PGD-AT, FreeLB and LDS/VAT."""

import math
import types
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from advlm import models, training

ROOT = Path(__file__).resolve().parents[1]
EMBEDDING_METHODS = ("pgd", "freelb", "lds")
TEXTS = [
    "a great and moving film , with a cast that never lets you down",
    "dull",
    "the best thing this year",
    "a mess of a movie",
    "funny and warm , if a bit long",
    "painfully bad acting",
]
LABELS = [1, 0, 1, 0, 1, 0]


@pytest.fixture()
def setup(tiny_bert):
    """The tiny model in eval mode (no dropout: every pass is deterministic) and one padded batch."""
    model = models.load_classifier(str(tiny_bert), 2).eval()
    tokenizer = models.load_tokenizer(str(tiny_bert))
    inputs = models.encode(tokenizer, TEXTS, 24)
    assert (inputs["attention_mask"] == 0).any()  # the batch has padding
    return types.SimpleNamespace(
        model=model,
        inputs=inputs,
        labels=torch.tensor(LABELS),
        batch={"inputs": inputs, "labels": torch.tensor(LABELS)},
    )


def _record(monkeypatch, owner, attribute):
    """Record (a detached copy of) what ``owner.attribute`` returns on each call."""
    seen, original = [], getattr(owner, attribute)

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        seen.append(result.detach().clone())
        return result

    monkeypatch.setattr(owner, attribute, recording)
    return seen


def _grads(model):
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def _same(first, second, **tolerance):
    return first.keys() == second.keys() and all(torch.allclose(first[k], second[k], **tolerance) for k in first)


def _loss(model, inputs, labels, embeds):
    return F.cross_entropy(training._logits(model, inputs, embeds), labels)


def _norms(delta, norm):
    flat = delta.flatten(1)
    return flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)


# --- the perturbation set ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pgd", "freelb"])
@pytest.mark.parametrize("norm, epsilon", [("l2", 0.08), ("linf", 0.01)])
def test_every_ascent_step_stays_in_the_ball_and_off_padding(setup, monkeypatch, name, norm, epsilon):
    torch.manual_seed(0)
    starts = _record(monkeypatch, training.Perturbation, "init")
    steps = _record(monkeypatch, training.Perturbation, "step")
    method = training.build_method(
        name, {"steps": 6, "step_size": 0.03, "init_mag": 0.05, "epsilon": epsilon, "norm": norm}
    )
    method.backward(setup.model, setup.batch)
    assert len(starts) == 1 and len(steps) == (6 if name == "pgd" else 5)
    padding = setup.inputs["attention_mask"] == 0
    for delta in starts + steps:
        assert (_norms(delta, norm) <= epsilon * (1 + 1e-5)).all()
        assert torch.count_nonzero(delta[padding]) == 0
    assert _norms(steps[-1], norm).min() > 0.99 * epsilon  # the steps reach the boundary: the projection acts


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_epsilon_zero_is_unbounded_and_steps_are_normalized(setup, monkeypatch, norm):
    torch.manual_seed(0)
    steps = _record(monkeypatch, training.Perturbation, "step")
    training.build_method(
        "pgd", {"steps": 4, "step_size": 0.5, "init_mag": 0.0, "epsilon": 0.0, "norm": norm}
    ).backward(setup.model, setup.batch)
    # from delta = 0, each step moves delta by exactly step_size in the configured norm (grad / ||grad||), unprojected
    for before, after in zip([torch.zeros_like(steps[0])] + steps[:-1], steps):
        assert torch.allclose(_norms(after - before, norm), torch.full((len(TEXTS),), 0.5), rtol=1e-5)


def test_random_start_follows_textdefender():
    torch.manual_seed(0)
    embeds = torch.zeros(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.float).unsqueeze(-1)
    l2 = training.Perturbation("l2", 0.03, 0.05, 0.0).init(embeds, mask)
    tokens = mask.sum(dim=(1, 2))
    # U(-1,1) * 0.05/sqrt(n*d): every entry within 0.05/sqrt(n*d), the norm about 0.05/sqrt(3)
    assert (l2.abs().amax(dim=(1, 2)) <= 0.05 / torch.sqrt(tokens * 8)).all()
    assert torch.count_nonzero(l2[mask.squeeze(-1) == 0]) == 0
    linf = training.Perturbation("linf", 0.03, 0.05, 0.02).init(embeds, mask)
    assert linf.abs().max() <= 0.02 and torch.count_nonzero(linf[mask.squeeze(-1) == 0]) == 0


# --- ascent raises the loss --------------------------------------------------------------------------


def test_pgd_with_bounded_epsilon_raises_the_loss(setup):
    torch.manual_seed(0)
    method = training.build_method("pgd", {"steps": 5, "step_size": 0.05, "epsilon": 0.1})
    embeds = training._word_embeddings(setup.model, setup.inputs).detach()
    delta = method.attack(setup.model, setup.inputs, setup.labels, embeds)
    assert (_norms(delta, "l2") <= 0.1 * (1 + 1e-5)).all()
    clean = _loss(setup.model, setup.inputs, setup.labels, embeds)
    adversarial = _loss(setup.model, setup.inputs, setup.labels, embeds + delta)
    noise = torch.randn_like(delta) * setup.inputs["attention_mask"].unsqueeze(-1)
    random = _loss(setup.model, setup.inputs, setup.labels, embeds + 0.1 * noise / _norms(noise, "l2")[:, None, None])
    assert adversarial > clean and adversarial > random


def test_freelb_passes_climb_the_loss(setup, monkeypatch):
    torch.manual_seed(0)
    starts = _record(monkeypatch, training.Perturbation, "init")
    steps = _record(monkeypatch, training.Perturbation, "step")
    training.build_method("freelb", {"steps": 4, "step_size": 0.05, "epsilon": 0.1}).backward(setup.model, setup.batch)
    embeds = training._word_embeddings(setup.model, setup.inputs).detach()
    with torch.no_grad():
        losses = [float(_loss(setup.model, setup.inputs, setup.labels, embeds + delta)) for delta in starts + steps]
        clean = float(_loss(setup.model, setup.inputs, setup.labels, embeds))
    assert losses[-1] >= clean and losses[-1] > losses[0]


# --- which passes reach the parameter gradients ------------------------------------------------------


def test_pgd_keeps_only_the_final_loss_gradients(setup, monkeypatch):
    torch.manual_seed(0)
    steps = _record(monkeypatch, training.Perturbation, "step")
    method = training.build_method("pgd", {"steps": 3, "clean_weight": 0.7})
    loss = method.backward(setup.model, setup.batch)
    got = _grads(setup.model)
    assert len(steps) == 3
    setup.model.zero_grad(set_to_none=True)
    embeds = training._word_embeddings(setup.model, setup.inputs)
    expected = _loss(setup.model, setup.inputs, setup.labels, embeds + steps[-1]) + 0.7 * _loss(
        setup.model, setup.inputs, setup.labels, embeds
    )
    expected.backward()
    assert loss == pytest.approx(float(expected.detach()), rel=1e-6)
    assert _same(got, _grads(setup.model), rtol=1e-5, atol=1e-7)


def test_freelb_accumulates_gradients_over_all_passes(setup, monkeypatch):
    torch.manual_seed(0)
    starts = _record(monkeypatch, training.Perturbation, "init")
    steps = _record(monkeypatch, training.Perturbation, "step")
    loss = training.build_method("freelb", {"steps": 3}).backward(setup.model, setup.batch)
    got = _grads(setup.model)
    deltas = starts + steps
    assert len(deltas) == 3
    setup.model.zero_grad(set_to_none=True)
    total = 0.0
    for delta in deltas:  # manual accumulation: (1/K) CE at delta_0, delta_1, delta_2
        embeds = training._word_embeddings(setup.model, setup.inputs)
        pass_loss = _loss(setup.model, setup.inputs, setup.labels, embeds + delta) / 3
        pass_loss.backward()
        total += float(pass_loss.detach())
    assert loss == pytest.approx(total, rel=1e-6)
    assert _same(got, _grads(setup.model), rtol=1e-5, atol=1e-7)
    setup.model.zero_grad(set_to_none=True)  # and this differs from the last pass alone
    _loss(
        setup.model, setup.inputs, setup.labels, training._word_embeddings(setup.model, setup.inputs) + deltas[-1]
    ).backward()
    assert not _same(got, _grads(setup.model), rtol=1e-3)


# --- LDS ---------------------------------------------------------------------------------------------


def test_kl_has_the_clean_distribution_first_and_constant():
    torch.manual_seed(0)
    clean, perturbed = torch.randn(5, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    kl = training.kl_divergence(clean, perturbed)
    p, q = clean.detach().softmax(-1), perturbed.detach().softmax(-1)
    assert kl.item() == pytest.approx(float((p * (p.log() - q.log())).sum(-1).mean()), rel=1e-5)
    assert kl.item() != pytest.approx(float((q * (q.log() - p.log())).sum(-1).mean()), rel=1e-3)
    grad_clean, grad_perturbed = torch.autograd.grad(kl, [clean, perturbed], allow_unused=True)
    assert grad_clean is None and grad_perturbed.abs().sum() > 0


def test_lds_loss_and_gradients_match_a_manual_computation(setup, monkeypatch):
    torch.manual_seed(0)
    directions = _record(monkeypatch, training.LDS, "direction")
    loss = training.build_method("lds", {"epsilon": 0.3, "weight": 2.0}).backward(setup.model, setup.batch)
    got = _grads(setup.model)
    (r,) = directions
    assert torch.allclose(_norms(r, "l2"), torch.full((len(TEXTS),), 0.3), rtol=1e-5)
    assert torch.count_nonzero(r[setup.inputs["attention_mask"] == 0]) == 0

    def manual(detached):
        setup.model.zero_grad(set_to_none=True)
        embeds = training._word_embeddings(setup.model, setup.inputs)
        clean = training._logits(setup.model, setup.inputs, embeds)
        target = clean.detach() if detached else clean
        kl = F.kl_div(
            F.log_softmax(training._logits(setup.model, setup.inputs, embeds + r), -1),
            F.log_softmax(target, -1),
            log_target=True,
            reduction="batchmean",
        )
        total = F.cross_entropy(clean, setup.labels) + 2.0 * kl
        total.backward()
        return float(total.detach()), _grads(setup.model)

    expected_loss, expected = manual(detached=True)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert _same(got, expected, rtol=1e-5, atol=1e-7)
    assert not _same(got, manual(detached=False)[1], rtol=1e-4, atol=1e-7)  # a gradient through p_clean differs


def test_lds_direction_is_the_power_iteration_of_the_kl(setup):
    """With one power iteration from d, r points along the gradient of KL(p || p(E + xi d/|d|)) w.r.t. d."""
    method = training.build_method("lds", {"epsilon": 0.5, "xi": 0.01})
    embeds = training._word_embeddings(setup.model, setup.inputs).detach()
    clean = training._logits(setup.model, setup.inputs, embeds).detach()
    mask = setup.inputs["attention_mask"].unsqueeze(-1).float()
    torch.manual_seed(3)
    r = method.direction(setup.model, setup.inputs, embeds)
    torch.manual_seed(3)
    d = torch.randn_like(embeds) * mask
    d = (0.01 * d / _norms(d, "l2")[:, None, None]).requires_grad_()
    kl = training.kl_divergence(clean, training._logits(setup.model, setup.inputs, embeds + d))
    (g,) = torch.autograd.grad(kl, d)
    assert torch.allclose(r, 0.5 * g / _norms(g, "l2")[:, None, None], atol=1e-6)
    # and it is a worse direction for the model than a random one of the same norm
    adversarial = training.kl_divergence(clean, training._logits(setup.model, setup.inputs, embeds + r))
    noise = torch.randn_like(embeds) * mask
    random = training.kl_divergence(
        clean, training._logits(setup.model, setup.inputs, embeds + 0.5 * noise / _norms(noise, "l2")[:, None, None])
    )
    assert adversarial > random


def test_lds_direction_is_the_dominant_curvature_of_the_kl_even_with_dropout_on(setup):
    """On one unpadded text, the Hessian of d -> KL(p(E) || p(E + d)) at 0 (central differences of autograd
    gradients, in float64) has a known top eigenvector; many power iterations must find it with the model in
    train mode (dropout on), as in training."""
    model = setup.model.double()
    inputs = {key: value[1:2, :3] for key, value in setup.inputs.items()}  # "dull": [CLS] dull [SEP]
    assert inputs["attention_mask"].all()
    embeds = training._word_embeddings(model, inputs).detach()
    clean = training._logits(model, inputs, embeds).detach()

    def gradient(flat):
        d = flat.view_as(embeds).clone().requires_grad_()
        (g,) = torch.autograd.grad(training.kl_divergence(clean, training._logits(model, inputs, embeds + d)), d)
        return g.flatten()

    h, basis = 1e-4, torch.eye(embeds.numel(), dtype=torch.float64)
    hessian = torch.stack([(gradient(h * e) - gradient(-h * e)) / (2 * h) for e in basis], dim=1)
    values, vectors = torch.linalg.eigh((hessian + hessian.T) / 2)
    assert values[-1] > 3 * values[-2].abs()  # a dominant direction exists
    method = training.build_method("lds", {"epsilon": 1.0, "xi": 1e-4, "power_iterations": 30})
    model.train()
    torch.manual_seed(0)
    r = method.direction(model, inputs, embeds).flatten()
    assert model.training  # the mode is restored
    assert abs(float(r @ vectors[:, -1])) > 0.99  # r has unit norm (epsilon 1)


# --- construction, defaults, config ------------------------------------------------------------------


def test_defaults_agree_with_the_schema_and_config():
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())["properties"]["finetune"]
    assert set(EMBEDDING_METHODS) <= set(schema["properties"]["methods"]["items"]["enum"])
    # the registry, read from the family modules' classes, holds every method the schema offers and no other
    assert set(training.METHODS) == set(schema["properties"]["methods"]["items"]["enum"])
    params = schema["properties"]["method_params"]["properties"]
    config = yaml.safe_load((ROOT / "config.yaml").read_text())["finetune"]["method_params"]
    assert set(yaml.safe_load((ROOT / "config.yaml").read_text())["finetune"]["methods"]) <= set(config)
    for name in set(training.METHODS) - {"base"}:
        entry = params[name]
        assert entry["additionalProperties"] is False and entry["default"] == {}
        assert all(prop["description"] for prop in entry["properties"].values())
        schema_defaults = {key: prop["default"] for key, prop in entry["properties"].items()}
        assert schema_defaults == training.method_defaults(name), name
        if name in config:  # opt-in methods (not in the default experiment) may be absent from config.yaml
            assert set(config[name]) == set(schema_defaults), name  # config.yaml lists every hyperparameter


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match=r"method 'pgd' has no hyperparameter \['eps'\]"):
        training.build_method("pgd", {"eps": 0.1})
    with pytest.raises(ValueError, match="invalid norm='l1'"):
        training.build_method("freelb", {"norm": "l1"})
    with pytest.raises(ValueError, match="invalid epsilon=0"):
        training.build_method("lds", {"epsilon": 0})
    assert training.method_hyperparameters(training.build_method("pgd", {"steps": 5}))["steps"] == 5


def test_methods_get_the_run_objects_they_declare(monkeypatch):
    class NeedsTokenizer(training.BaseMethod):
        name, needs = "needs_tokenizer", ("tokenizer",)

        def __init__(self, tokenizer):
            self.tokenizer = tokenizer

    monkeypatch.setitem(training.METHODS, NeedsTokenizer.name, NeedsTokenizer)
    assert training.build_method("needs_tokenizer", {}, tokenizer="tok", device="cpu").tokenizer == "tok"
    with pytest.raises(ValueError, match=r"needs \['tokenizer'\]"):
        training.build_method("needs_tokenizer", {})


def _common():
    namespace = {"workflow": types.SimpleNamespace(basedir=str(ROOT))}
    exec(compile((ROOT / "rules" / "common.smk").read_text(), "common.smk", "exec"), namespace)
    return types.SimpleNamespace(**namespace)


def test_method_params_may_name_any_known_method():
    common = _common()
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["finetune"]["methods"] = ["base"]
    config["finetune"]["method_params"] = {"base": {}, "pgd": {"steps": 2}, "lds": {}}
    common.check_config(config)  # parameters of methods not run are fine
    config["finetune"]["method_params"]["fgsm"] = {}
    with pytest.raises(ValueError, match="finetune.method_params.fgsm"):
        common.check_config(config)


# --- end to end --------------------------------------------------------------------------------------


# pgd and freelb with the same perturbation set and ascent: what tells their runs apart is the algorithm alone
SHARED_ASCENT = {"steps": 2, "step_size": 0.15, "init_mag": 0.05, "epsilon": 0.35, "norm": "l2"}
END_TO_END_PARAMS = {"base": {}, "pgd": SHARED_ASCENT, "freelb": SHARED_ASCENT, "lds": {}}
# one epoch of a few steps on 12 texts: enough to tell the methods' weights apart
END_TO_END_HP = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 4, "epochs": 1, "warmup_ratio": 0.0}
END_TO_END_HP |= {"max_length": 16, "max_grad_norm": 1.0, "eval_batch_size": 8}


@pytest.fixture(scope="module")
def finetuned(tiny_bert, tmp_path_factory):
    """Each embedding-space method and base fine-tuned end to end from the same seed and data, and pgd twice."""
    frame = pd.DataFrame({"id": [str(i) for i in range(12)], "text": TEXTS * 2, "label": LABELS * 2})
    hp = END_TO_END_HP
    runs = {}
    for name in [*END_TO_END_PARAMS, "pgd again"]:
        method = name.split()[0]
        out = tmp_path_factory.mktemp(method)
        record = training.finetune(
            str(tiny_bert), frame, frame, out, hp, method, END_TO_END_PARAMS[method], 3, 2, torch.device("cpu")
        )
        weights = models.load_classifier(str(out / "model"), 2).state_dict()
        runs[name] = types.SimpleNamespace(record=record, weights=weights, out=out)
    return runs


@pytest.mark.parametrize("name", EMBEDDING_METHODS)
def test_finetune_runs_with_each_method(finetuned, name):
    run = finetuned[name]
    assert run.record["method"] == name
    assert run.record["method_params"] == {**training.method_defaults(name), **END_TO_END_PARAMS[name]}
    assert math.isfinite(run.record["history"][0]["train_loss"]) and run.record["history"][0]["train_loss"] > 0
    assert (run.out / "model" / "config.json").exists()


def test_each_method_trains_its_own_way(finetuned):
    """From the same seed, data and (for pgd and freelb) perturbation set, every method ends at other weights
    than every other and than base, while a method run twice ends at the same: one method's step put in place
    of another's makes this fail."""

    def same(first, second):
        return all(
            torch.equal(finetuned[first].weights[k], finetuned[second].weights[k]) for k in finetuned[first].weights
        )

    assert same("pgd", "pgd again")
    methods = list(END_TO_END_PARAMS)
    assert not [(a, b) for i, a in enumerate(methods) for b in methods[i + 1 :] if same(a, b)]


@pytest.mark.parametrize(
    "name, params",
    [
        ("pgd", {"epsilon": 0.2, "step_size": 0.15}),
        ("freelb", {"epsilon": 0.2, "step_size": 0.15}),
        ("lds", {"epsilon": 0.2}),
    ],
)
def test_realised_perturbation_size_is_recorded_and_bounded_where_epsilon_binds(setup, name, params):
    torch.manual_seed(0)
    method = training.build_method(name, params)
    method.backward(setup.model, setup.batch)
    size = training.realised_size(method)
    embeds = training._word_embeddings(setup.model, setup.inputs).detach()
    text_norms = _norms(embeds * setup.inputs["attention_mask"].unsqueeze(-1), "l2")
    assert size["examples"] == len(TEXTS) and size["max"] <= 0.2 + 1e-5 and size["at_bound"] > 0.5
    assert size["relative_max"] == pytest.approx(float((size["max"] / text_norms).max()), rel=0.05)
    assert training.realised_size(method) is None  # forgotten once summarized: one summary per epoch
    assert training.realised_size(training.build_method("base", {})) is None
    assert (size["norm"], size["passes"]) == ("l2", 3 if name == "freelb" else 1)


@pytest.mark.parametrize("name", ["pgd", "freelb"])
def test_linf_budgets_are_recorded_in_linf(setup, name):
    """Issue 22: an L-infinity ball's realised size is its L-infinity norm (the L2 norm reads 14x the bound)."""
    torch.manual_seed(0)
    method = training.build_method(name, {"norm": "linf", "epsilon": 0.01, "step_size": 0.01})
    method.backward(setup.model, setup.batch)
    size = training.realised_size(method)
    assert size["norm"] == "linf" and size["max"] <= 0.01 + 1e-6 and size["at_bound"] > 0.5


def test_freelb_records_every_pass_its_update_averages(setup):
    """FreeLB's update averages the gradients of passes delta_0 .. delta_{K-1}: the record is their mean and
    largest per example, not the last pass's alone."""
    torch.manual_seed(0)
    method = training.build_method("freelb", {"epsilon": 0.2, "step_size": 0.15, "steps": 3})
    deltas = []
    original_add = method.realised.add

    def spy(passes, embeds, mask):
        deltas.extend(passes)
        original_add(passes, embeds, mask)

    method.realised.add = spy
    method.backward(setup.model, setup.batch)
    size = training.realised_size(method)
    mask = setup.inputs["attention_mask"].unsqueeze(-1)
    per_pass = torch.stack([_norms(delta * mask, "l2").flatten() for delta in deltas])
    assert len(deltas) == 3 and size["passes"] == 3
    assert size["mean"] == pytest.approx(float(per_pass.mean(0).mean()), rel=1e-5)
    assert size["max"] == pytest.approx(float(per_pass.max()), rel=1e-5)
    assert size["mean"] < float(per_pass[-1].mean())  # the last pass is the largest: alone it overstated the size


def test_the_planning_knows_which_methods_ramp():
    from advlm.plan.points import RAMPED_METHODS

    ramped = {name for name, method in training.METHODS.items() if training.loop.has_budget(method)}
    assert ramped == set(RAMPED_METHODS)
