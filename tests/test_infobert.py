"""InfoBERT (advlm.training.InfoBERT): FreeLB plus the information-bottleneck and anchored-feature regularizers of
the authors' code (AI-secure/InfoBERT), each checked against a computation by hand."""

import json
import math
import types

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from test_methods import LABELS, ROOT, TEXTS, _common, _grads, _record, _same
from test_training import FRAME, HP, Killed, _kill_on_call, _same_weights

from advlm import models, training


@pytest.fixture()
def setup(tiny_bert):
    """The tiny model in eval mode (no dropout: every pass is deterministic) and one padded batch."""
    model = models.load_classifier(str(tiny_bert), 2).eval()
    inputs = models.encode(models.load_tokenizer(str(tiny_bert)), TEXTS, 24)
    assert (inputs["attention_mask"] == 0).any()  # the batch has padding
    return types.SimpleNamespace(
        model=model,
        inputs=inputs,
        labels=torch.tensor(LABELS),
        batch={"inputs": inputs, "labels": torch.tensor(LABELS)},
    )


def _record_static(monkeypatch, name):
    """Record what the static method ``InfoBERT.name`` (a random draw) returns on each call."""
    seen, original = [], getattr(training.InfoBERT, name)

    def recording(n):
        result = original(n)
        seen.append(result.clone())
        return result

    monkeypatch.setattr(training.InfoBERT, name, staticmethod(recording))
    return seen


def _outputs(model, inputs, embeds):
    """Logits, embedding-layer features (hidden_states[0]) and last-layer features of ``embeds`` by hand."""
    rest = {key: value for key, value in inputs.items() if key != "input_ids"}
    out = model(inputs_embeds=embeds, output_hidden_states=True, **rest)
    return out.logits, out.hidden_states[0], out.hidden_states[-1]


def _lengths(inputs):
    return [int(n) for n in inputs["attention_mask"].sum(1)]  # right padding: tokens 0..n-1


def _bottleneck_by_hand(first, inputs, partners):
    """The reference's CLUBv2.mi_est_sample on the tokens' embedding-layer features: positive 0, negative
    -(y - y[random_index])^2 / 2, summed over the features and averaged over the tokens."""
    tokens = [first[i, j] for i, n in enumerate(_lengths(inputs)) for j in range(n)]
    terms = [((tokens[k] - tokens[int(partners[k])]) ** 2).sum() / 2 for k in range(len(tokens))]
    return sum(terms) / len(terms)


def _critic_by_hand(estimator, x, y):
    """F(x, y) = softplus(W2 relu(W1 [x; y] + b1) + b2), with the weights of ``estimator``'s critic."""
    first, second = estimator.critic[0], estimator.critic[2]
    hidden = torch.relu(first.weight @ torch.cat([x, y]) + first.bias)
    return F.softplus(second.weight @ hidden + second.bias)[0]


def _infonce_by_hand(estimator, xs, ys):
    """The reference's InfoNCE.forward: mean_i F(x_i, y_i) - (mean_i logsumexp_j F(x_j, y_i) - log n)."""
    n = len(xs)
    positive = sum(_critic_by_hand(estimator, xs[i], ys[i]) for i in range(n)) / n
    negative = sum(
        torch.logsumexp(torch.stack([_critic_by_hand(estimator, xs[j], ys[i]) for j in range(n)]), 0) for i in range(n)
    )
    return positive - (negative / n - math.log(n))


def _anchored_by_hand(estimator, first, last, inputs, grad, order, cl=0.5, ch=0.9):
    """The reference's local_robust_feature_selection (feature_ranking per text: tokens by ascending gradient norm,
    ranks ceil(n*cl) to ceil(n*ch)) and _get_local_robust_feature_regularizer (pairs with the text's last-layer
    [CLS] vector, shuffled, in chunks of the batch's size: minus the mean InfoNCE)."""
    pairs = []
    for i, n in enumerate(_lengths(inputs)):
        norms = [float(grad[i, j].norm()) for j in range(n)]
        ranked = sorted(range(n), key=lambda j: norms[j])
        pairs += [(first[i, j], last[i, 0]) for j in ranked[math.ceil(n * cl) : math.ceil(n * ch)]]
    pairs = [pairs[int(k)] for k in order]
    size = len(inputs["input_ids"])
    chunks = [pairs[start : start + size] for start in range(0, len(pairs), size)]
    bounds = [_infonce_by_hand(estimator, [x for x, _ in chunk], [y for _, y in chunk]) for chunk in chunks]
    return -sum(bounds) / len(bounds), len(pairs)


def test_the_regularizers_equal_a_direct_computation(setup, monkeypatch):
    torch.manual_seed(0)
    partners, orders = _record_static(monkeypatch, "partners"), _record_static(monkeypatch, "shuffle")
    method = training.build_method("infobert", {})
    method.own_parameters(setup.model)
    embeds = training._word_embeddings(setup.model, setup.inputs).detach()
    delta = 0.05 * torch.randn_like(embeds) * setup.inputs["attention_mask"].unsqueeze(-1)
    grad = torch.randn_like(embeds)  # any gradient: it only ranks the tokens
    with torch.no_grad():
        _, first, last = _outputs(setup.model, setup.inputs, embeds + delta)
        tokens = setup.inputs["attention_mask"].bool()
        bottleneck = method.information_bottleneck(first, tokens)
        anchored = method.anchored_features(first, last, tokens, grad, len(TEXTS))
        expected_bottleneck = _bottleneck_by_hand(first, setup.inputs, partners[0])
        expected_anchored, pairs = _anchored_by_hand(method.mi_estimator, first, last, setup.inputs, grad, orders[0])
    assert len(partners[0]) == sum(_lengths(setup.inputs)) and pairs > 2 * len(TEXTS)  # several chunks
    assert float(bottleneck) == pytest.approx(float(expected_bottleneck), rel=1e-5)
    assert float(anchored) == pytest.approx(float(expected_anchored), rel=1e-5, abs=1e-6)
    assert float(bottleneck) > 0 and float(anchored) != 0


def test_its_gradients_are_freelb_passes_with_both_regularizers(setup, monkeypatch):
    """One step against the reference's _adv_training_step by hand: each pass backpropagates (CE + beta IB) / K,
    takes delta's gradient from it alone (the ascent direction), then backpropagates alpha AF / K; the
    parameters' and the critic's gradients accumulate over the passes."""
    torch.manual_seed(0)
    starts = _record(monkeypatch, training.Perturbation, "init")
    steps = _record(monkeypatch, training.Perturbation, "step")
    partners, orders = _record_static(monkeypatch, "partners"), _record_static(monkeypatch, "shuffle")
    beta, alpha, passes = 0.3, 0.7, 3  # large weights: the regularizers move the gradients visibly
    method = training.build_method("infobert", {"steps": passes, "beta": beta, "alpha": alpha, "cl": 0.3, "ch": 0.8})
    loss = method.backward(setup.model, setup.batch)
    critic = method.mi_estimator
    got = _grads(setup.model) | {f"critic.{k}": p.grad.clone() for k, p in critic.named_parameters()}
    deltas = starts + steps
    assert len(deltas) == passes and len(partners) == len(orders) == passes

    setup.model.zero_grad(set_to_none=True)
    critic.zero_grad(set_to_none=True)
    total, mask, ascents = 0.0, setup.inputs["attention_mask"].unsqueeze(-1).float(), []
    for k, start in enumerate(deltas):
        delta = start.clone().requires_grad_()
        embeds = training._word_embeddings(setup.model, setup.inputs)
        logits, first, last = _outputs(setup.model, setup.inputs, embeds + delta)
        upper = (
            F.cross_entropy(logits, setup.labels) + beta * _bottleneck_by_hand(first, setup.inputs, partners[k])
        ) / 3
        upper.backward(retain_graph=True)
        ascents.append(delta.grad.clone())
        anchored, _ = _anchored_by_hand(critic, first, last, setup.inputs, ascents[-1], orders[k], 0.3, 0.8)
        (alpha * anchored / 3).backward()
        total += float(upper.detach()) + float(alpha * anchored.detach() / 3)
    expected = _grads(setup.model) | {f"critic.{k}": p.grad.clone() for k, p in critic.named_parameters()}
    assert loss == pytest.approx(total, rel=1e-5)
    assert _same(got, expected, rtol=1e-4, atol=1e-7)
    for k in range(passes - 1):  # each ascent step follows the gradient of CE + beta IB
        assert torch.allclose(deltas[k + 1], method.perturbation.step(deltas[k], ascents[k], mask), atol=1e-6)

    setup.model.zero_grad(set_to_none=True)  # and freelb's gradients from the same perturbations differ
    for start in deltas:
        embeds = training._word_embeddings(setup.model, setup.inputs)
        (F.cross_entropy(_outputs(setup.model, setup.inputs, embeds + start)[0], setup.labels) / 3).backward()
    freelb = _grads(setup.model)
    assert not _same({k: got[k] for k in freelb}, freelb, rtol=1e-3)


def test_without_its_regularizers_it_is_freelb(setup):
    """beta = alpha = 0: the same perturbations and the same gradients as freelb's from the same seed."""
    ascent = {"steps": 3, "step_size": 0.15, "init_mag": 0.05, "epsilon": 0.3, "norm": "l2"}
    grads = {}
    for name, params in (("freelb", ascent), ("infobert", ascent | {"beta": 0.0, "alpha": 0.0})):
        setup.model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        method = training.build_method(name, params)
        grads[name] = (method.backward(setup.model, setup.batch), _grads(setup.model), method.realised.summary())
    assert grads["freelb"][0] == pytest.approx(grads["infobert"][0], rel=1e-6)
    assert _same(grads["freelb"][1], grads["infobert"][1], rtol=1e-5, atol=1e-8)
    assert grads["freelb"][2] == grads["infobert"][2]  # realised sizes recorded alike, every pass


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="invalid cl=0.9, ch=0.5"):
        training.build_method("infobert", {"cl": 0.9, "ch": 0.5})
    with pytest.raises(ValueError, match="invalid beta=-1"):
        training.build_method("infobert", {"beta": -1})
    with pytest.raises(ValueError, match="invalid norm='l1'"):
        training.build_method("infobert", {"norm": "l1"})


# --- the registry, the schema and the config ---------------------------------------------------------


def test_it_is_registered_with_the_schema_defaults_and_opt_in():
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())["properties"]["finetune"]
    entry = schema["properties"]["method_params"]["properties"]["infobert"]
    defaults = {key: prop["default"] for key, prop in entry["properties"].items()}
    method = training.build_method("infobert", {})
    assert isinstance(method, training.InfoBERT) and training.METHODS["infobert"] is training.InfoBERT
    assert training.method_hyperparameters(method) == defaults == training.method_defaults("infobert")
    assert "infobert" in schema["properties"]["methods"]["items"]["enum"]
    assert "infobert" in schema["properties"]["sweep"]["propertyNames"]["enum"]
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert "infobert" not in config["finetune"]["methods"]  # opt-in: the default experiment is unchanged
    common = _common()
    config["finetune"]["methods"] = [*config["finetune"]["methods"], "infobert"]  # selected with one line
    common.check_config(config)
    assert common.method_params(config, "infobert") == defaults
    assert "infobert" in common.method_points(config)


# --- end to end --------------------------------------------------------------------------------------

ASCENT = {"steps": 2, "step_size": 0.15, "init_mag": 0.05, "epsilon": 0.35, "norm": "l2"}


@pytest.fixture(scope="module")
def finetuned(tiny_bert, tmp_path_factory):
    """base, freelb and infobert (freelb's ascent) fine-tuned from the same seed and data, infobert twice; the
    critic's parameters of each infobert run recorded when made and after training."""
    frame = pd.DataFrame({"id": [str(i) for i in range(12)], "text": TEXTS * 2, "label": LABELS * 2})
    hp = HP | {"epochs": 1}
    runs, made = {}, []
    original = training.InfoBERT.own_parameters

    def recording(self, model):
        new = self.mi_estimator is None
        parameters = original(self, model)
        if new:
            made.append((parameters, [p.detach().clone() for p in parameters]))
        return parameters

    training.InfoBERT.own_parameters = recording
    try:
        for name, method, params in [
            ("base", "base", {}),
            ("freelb", "freelb", ASCENT),
            ("infobert", "infobert", ASCENT),
            ("infobert again", "infobert", ASCENT),
        ]:
            out = tmp_path_factory.mktemp(method)
            record = training.finetune(str(tiny_bert), frame, frame, out, hp, method, params, 3, 2, torch.device("cpu"))
            runs[name] = types.SimpleNamespace(
                record=record, weights=models.load_classifier(str(out / "model"), 2).state_dict(), out=out
            )
    finally:
        training.InfoBERT.own_parameters = original
    return types.SimpleNamespace(runs=runs, critics=made)


def test_it_trains_its_own_way_deterministically(finetuned):
    runs = finetuned.runs

    def same(first, second):
        return all(torch.equal(runs[first].weights[k], runs[second].weights[k]) for k in runs[first].weights)

    assert same("infobert", "infobert again")
    assert not same("infobert", "base") and not same("infobert", "freelb")
    record = runs["infobert"].record
    assert record["method"] == "infobert" and record["method_params"] == training.method_defaults("infobert") | ASCENT
    assert record["history"][0]["perturbation"]["passes"] == 2  # realised sizes recorded as freelb's
    assert record["passes_per_step"] == runs["freelb"].record["passes_per_step"] == {"forward": 2.0, "backward": 2.0}
    assert json.loads((runs["infobert"].out / "train_log.json").read_text())["method"] == "infobert"


def test_the_loop_trains_the_critic_and_saves_it_apart(finetuned):
    (first_parameters, first_start), (second_parameters, second_start) = finetuned.critics
    assert all(torch.equal(a, b) for a, b in zip(first_start, second_start))  # the same start from the same seed
    assert all(torch.equal(a, b) for a, b in zip(first_parameters, second_parameters))  # and the same end
    assert not any(torch.equal(p, start) for p, start in zip(first_parameters, first_start))  # every one moved
    assert set(finetuned.runs["infobert"].weights) == set(finetuned.runs["base"].weights)  # not in the model


def test_an_interrupted_run_resumes_to_the_same_weights(tiny_bert, tmp_path, monkeypatch):
    """Resumed mid-epoch, the critic comes back from the checkpoint (a fresh one would train other weights)."""

    def finetune(out, checkpoints):
        return training.finetune(
            str(tiny_bert),
            FRAME,
            FRAME,
            tmp_path / out,
            HP,
            "infobert",
            ASCENT,
            5,
            2,
            torch.device("cpu"),
            checkpoint_dir=checkpoints,
            checkpoint_every=2,
        )

    straight = finetune("straight", None)
    with monkeypatch.context() as patch:
        _kill_on_call(patch, training.loop, "_batch", 9)
        with pytest.raises(Killed):
            finetune("killed", tmp_path / "checkpoint")
    assert json.loads((tmp_path / "checkpoint" / "progress.json").read_text())["where"] == "step"
    resumed = finetune("killed", tmp_path / "checkpoint")
    assert _same_weights(tmp_path / "straight", tmp_path / "killed")
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in straight["history"]]
