"""Synonym-hull methods (advlm.training.synonym_hull): ASCC and DNE, on the tiny BERT and the tiny counter-fitted
vectors of the ``attack_resources`` fixture."""

import math
import types
from pathlib import Path

import jsonschema
import pytest
import torch
import torch.nn.functional as F
import yaml
from test_methods import END_TO_END_HP

from advlm import models, training
from advlm.resources import STOPWORDS_FILE
from advlm.training import synonym_hull
from advlm.training.loop import PassCounter

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("ascc", "dne")
TEXTS = [
    "a great and moving film , with a cast that never lets you down",
    "dull",
    "the best movie this year , funny and smart",
    "a mess of a movie with bad acting",
    "funny and warm , if a bit long",
    "painfully bad acting in a boring story",
]
LABELS = [1, 0, 1, 0, 1, 0]


@pytest.fixture(scope="module")
def counterfitted(attack_resources):
    return attack_resources.embedding_dir


@pytest.fixture()
def setup(tiny_bert, counterfitted):
    """The tiny model in eval mode (no dropout: every pass is deterministic), its tokenizer and one padded batch."""
    model = models.load_classifier(str(tiny_bert), 2).eval()
    tokenizer = models.load_tokenizer(str(tiny_bert))
    inputs = models.encode(tokenizer, TEXTS, 24)
    return types.SimpleNamespace(
        model=model,
        tokenizer=tokenizer,
        inputs=inputs,
        labels=torch.tensor(LABELS),
        batch={"inputs": inputs, "labels": torch.tensor(LABELS)},
        counterfitted=counterfitted,
    )


def _build(name, setup, **params):
    return training.build_method(name, params, tokenizer=setup.tokenizer, counterfitted=setup.counterfitted)


def _schema():
    return yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())


# --- registry, schema, workflow ----------------------------------------------------------------------


def test_the_registry_finds_both_with_the_schema_defaults(setup):
    finetune = _schema()["properties"]["finetune"]["properties"]
    for name, method_class in (("ascc", training.ASCC), ("dne", training.DNE)):
        assert training.METHODS[name] is method_class
        assert name in finetune["methods"]["items"]["enum"] and name in finetune["sweep"]["propertyNames"]["enum"]
        entry = finetune["method_params"]["properties"][name]
        defaults = {key: prop["default"] for key, prop in entry["properties"].items()}
        assert training.method_defaults(name) == defaults
        assert training.method_hyperparameters(_build(name, setup)) == defaults
        with pytest.raises(ValueError, match=r"needs \['counterfitted'\]"):
            training.build_method(name, {}, tokenizer=setup.tokenizer)
    with pytest.raises(ValueError, match="invalid alpha=0"):
        _build("dne", setup, alpha=0)
    with pytest.raises(ValueError, match="invalid steps=0"):
        _build("ascc", setup, steps=0)
    # opt-in: the default experiment's time budget is unchanged
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert not set(METHODS) & set(config["finetune"]["methods"])


def _common():
    namespace = {"workflow": types.SimpleNamespace(basedir=str(ROOT))}
    exec(compile((ROOT / "rules" / "common.smk").read_text(), "common.smk", "exec"), namespace)
    return types.SimpleNamespace(**namespace)


def test_one_line_adds_them_and_their_jobs_read_the_counterfitted_vectors(counterfitted):
    from smk import rule_script

    common = _common()
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["finetune"]["methods"] += list(METHODS)
    config["finetune"]["sweep"] = {"dne": {"alpha": [0.1]}}
    jsonschema.validate(config, _schema())
    common.check_config(config)
    planned = {m["method"] for m in common.models(config)}
    assert {"ascc", "dne", "dne-alpha=0.1"} <= planned
    assert common.method_params(config, "dne") == training.method_defaults("dne")  # the schema's defaults
    for method in ("ascc", "dne", "dne-alpha=0.1"):
        wildcards = types.SimpleNamespace(method=method, seed="1")
        assert common.method_inputs(config, wildcards) == {"counterfitted": "results/resources/counterfitted"}
    assert common.method_inputs(config, types.SimpleNamespace(method="pgd", seed="1")) == {}
    smk = types.SimpleNamespace(wildcards={"method": "dne-alpha=0.1"}, input=types.SimpleNamespace(counterfitted="x"))
    assert rule_script("finetune").method_context(smk) == {"counterfitted": "x"}


# --- words and tokens --------------------------------------------------------------------------------


def test_only_whole_single_token_words_get_a_hull_of_single_token_synonyms(setup):
    table = _build("dne", setup).table
    pieces = setup.tokenizer.convert_ids_to_tokens(list(range(len(table.sizes))))
    stopwords = set(STOPWORDS_FILE.read_text().split())
    with_hull = (table.sizes > 1).nonzero().flatten().tolist()
    assert with_hull
    for token in with_hull:
        row = table.vertices[token][table.valid[token]].tolist()
        words = [pieces[t] for t in row]
        assert row[0] == token and len(set(row)) == len(row)
        assert all(word.isalpha() and word.islower() and word not in stopwords for word in words), words
        assert table.first_order[token][0] and table.first_order[token].sum() <= len(row)
    assert table.sizes[setup.tokenizer.convert_tokens_to_ids("the")] == 1  # a stopword keeps its embedding

    word = pieces[with_hull[0]]
    inputs = models.encode(setup.tokenizer, [f"{word} {word}qz"], 16)
    tokens = setup.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
    assert tokens == ["[CLS]", word, word, "##q", "##z", "[SEP]"]
    hull = table.batch(inputs)
    assert hull.where[0].tolist() == [False, True, False, False, False, False]  # the split word keeps its pieces
    assert (
        hull.vertices[0].tolist()[: int(hull.valid[0].sum())]
        == table.vertices[with_hull[0]][table.valid[with_hull[0]]].tolist()
    )


def test_the_budget_ramp_shrinks_a_combination_toward_its_word():
    weights = torch.tensor([[0.2, 0.5, 0.3, 0.0]])
    assert torch.allclose(synonym_hull.toward_word(weights, 0.5), torch.tensor([[0.6, 0.25, 0.15, 0.0]]))
    assert synonym_hull.toward_word(weights, 1.0) is weights


# --- ASCC --------------------------------------------------------------------------------------------


def test_ascc_weights_lie_on_the_simplex_and_the_mixed_embedding_in_the_synonyms_hull(setup):
    torch.manual_seed(0)
    method = _build("ascc", setup)
    hull = method.hulls(setup.inputs)
    assert len(hull) >= 3 and hull.valid.sum(-1).max() > 2
    embeds = training._word_embeddings(setup.model, setup.inputs).detach()
    weights = method.weights(hull, method.attack(setup.model, setup.inputs, embeds, hull))
    assert (weights >= 0).all() and torch.allclose(weights.sum(-1), torch.ones(len(hull)))
    assert (weights[~hull.valid] == 0).all()
    vertices = hull.vertex_embeddings(setup.model).detach()
    mixed = hull.mix(vertices, embeds, weights)
    assert torch.equal(mixed[~hull.where], embeds[~hull.where])  # tokens without a hull keep their embedding
    points = mixed[hull.where]
    assert torch.allclose(points, torch.einsum("ns,nsd->nd", weights, vertices), atol=1e-6)
    low = vertices.masked_fill(~hull.valid.unsqueeze(-1), math.inf).amin(1)
    high = vertices.masked_fill(~hull.valid.unsqueeze(-1), -math.inf).amax(1)
    assert ((points >= low - 1e-6) & (points <= high + 1e-6)).all()
    assert not torch.allclose(points, embeds[hull.where])  # the combination moved away from the words


def test_ascc_finds_a_more_divergent_and_sparser_combination_than_the_uniform_one(setup):
    embeds = training._word_embeddings(setup.model, setup.inputs).detach()
    with torch.no_grad():
        clean = training._logits(setup.model, setup.inputs, embeds)

    def divergence(method, hull, weights):
        vertices = hull.vertex_embeddings(setup.model).detach()
        with torch.no_grad():
            mixed = training._logits(setup.model, setup.inputs, hull.mix(vertices, embeds, weights))
        return float(synonym_hull._kl(clean, mixed, "sum"))

    torch.manual_seed(0)
    method = _build("ascc", setup, entropy_weight=0.0, steps=5)
    hull = method.hulls(setup.inputs)
    uniform = hull.softmax(torch.zeros(hull.vertices.shape))
    adversarial = method.weights(hull, method.attack(setup.model, setup.inputs, embeds, hull))
    assert divergence(method, hull, adversarial) > 2 * divergence(method, hull, uniform)

    def entropy(weights):
        return float(-(weights * weights.clamp_min(1e-12).log()).sum(-1).mean())

    torch.manual_seed(0)
    sparse = _build("ascc", setup, entropy_weight=100.0)
    assert entropy(sparse.weights(hull, sparse.attack(setup.model, setup.inputs, embeds, hull))) < 0.5 * entropy(
        uniform
    )


def test_ascc_loss_is_clean_cross_entropy_plus_beta_kl(setup, monkeypatch):
    torch.manual_seed(0)
    method = _build("ascc", setup, steps=2, kl_weight=3.0)
    attacks = []
    original = method.attack
    monkeypatch.setattr(method, "attack", lambda *args: attacks.append(original(*args)) or attacks[-1])
    loss = method.backward(setup.model, setup.batch)
    hull = method.hulls(setup.inputs)
    embeds = training._word_embeddings(setup.model, setup.inputs).detach()
    vertices = hull.vertex_embeddings(setup.model).detach()
    with torch.no_grad():
        clean = training._logits(setup.model, setup.inputs, embeds)
        adversarial = training._logits(
            setup.model, setup.inputs, hull.mix(vertices, embeds, method.weights(hull, attacks[0]))
        )
    expected = F.cross_entropy(clean, setup.labels) + 3.0 * F.kl_div(
        F.log_softmax(adversarial, -1), F.softmax(clean, -1), reduction="batchmean"
    )
    assert loss == pytest.approx(float(expected), rel=1e-5)


# --- DNE ---------------------------------------------------------------------------------------------


def test_dne_draws_its_weights_from_the_references_dirichlet(setup, monkeypatch):
    """Dirichlet(alpha for the word and its synonyms, alpha * decay for their synonyms) over each hull's vertices:
    over many draws the mean is alpha_i / alpha_0 and the variance alpha_i (alpha_0 - alpha_i) / (alpha_0^2
    (alpha_0 + 1)); the first pass mixes with a draw."""
    method = _build("dne", setup, alpha=0.5, decay=0.2)
    hull = method.hulls(setup.inputs)
    second = (hull.valid & ~hull.first_order).any(-1)
    assert second.any()  # a hull with synonyms' synonyms
    row = int(second.nonzero()[0])
    valid, first = hull.valid[row], hull.first_order[row]
    concentration = method.concentration(hull)[row][valid]
    assert torch.allclose(concentration, torch.where(first[valid], 0.5, 0.1))

    draws = 20000
    rows = (part[row].repeat(draws, 1) for part in (hull.vertices, hull.valid, hull.first_order))
    many = synonym_hull.BatchHull(hull.where, hull.positions, *rows)
    torch.manual_seed(0)
    sample = method.sample(many)
    assert (sample[:, ~valid] == 0).all() and torch.allclose(sample.sum(-1), torch.ones(draws))
    total = concentration.sum()
    mean = concentration / total
    variance = concentration * (total - concentration) / (total**2 * (total + 1))
    assert torch.allclose(sample[:, valid].mean(0), mean, atol=0.01)
    assert torch.allclose(sample[:, valid].var(0), variance, rtol=0.1, atol=1e-4)

    drawn, used = [], []
    original_sample = method.sample
    monkeypatch.setattr(method, "sample", lambda h: drawn.append(original_sample(h)) or drawn[-1])
    original_add = method.realised.add_hull
    monkeypatch.setattr(method.realised, "add_hull", lambda h, m, w: used.extend(w) or original_add(h, m, w))
    torch.manual_seed(1)
    method.backward(setup.model, setup.batch)
    assert len(used) == 1 + method.steps
    assert torch.allclose(used[0], drawn[0], atol=1e-4)  # softmax(log(w + 1e-6)) over the vertices


def test_dne_ascent_raises_the_loss_within_the_hull(setup, monkeypatch):
    seen, original = [], F.cross_entropy

    def recording(*args, **kwargs):
        loss = original(*args, **kwargs)
        seen.append(float(loss.detach()))
        return loss

    monkeypatch.setattr(F, "cross_entropy", recording)
    torch.manual_seed(0)
    _build("dne", setup, steps=2, step_size=0.5).backward(setup.model, setup.batch)
    assert len(seen) == 3 and seen[0] < seen[1] < seen[2]


# --- both: passes, records, training -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params, forward, backward, passes",
    [("ascc", {"steps": 3}, 1 + 3 + 2, 3 + 2, 1), ("dne", {"steps": 2}, 3, 3, 3)],
)
def test_passes_per_step_and_the_realised_record(setup, name, params, forward, backward, passes):
    """ASCC: the clean pass (no gradient), one pass per Adam step, the clean and the adversarial pass of the update;
    DNE: the Dirichlet pass and one per ascent step, each backpropagated into the parameters."""
    torch.manual_seed(0)
    method = _build(name, setup, **params)
    counts = PassCounter.empty()
    counter = PassCounter(setup.model, counts)
    with counter.counting("step"):
        method.backward(setup.model, setup.batch)
    counter.remove()
    assert counts["step"] == {"forward": forward, "backward": backward}
    size = training.realised_size(method)
    assert (size["norm"], size["passes"], size["examples"]) == ("l2", passes, len(TEXTS))
    assert size["mean"] > 0 and 0 < size["relative_mean"] < 1 and "at_bound" not in size
    tokens = int(setup.inputs["attention_mask"].sum())
    assert size["hull_share"] == len(method.hulls(setup.inputs)) / tokens
    assert 0 < size["word_weight"] < 1 and 0 < size["top_weight"] <= 1
    assert training.realised_size(method) is None  # forgotten once summarized


@pytest.mark.parametrize("name", METHODS)
def test_budget_scale_zero_leaves_the_words_in_place(setup, name):
    torch.manual_seed(0)
    method = _build(name, setup)
    method.set_budget_scale(0.0)
    method.backward(setup.model, setup.batch)
    size = training.realised_size(method)
    assert size["max"] == 0 and size["word_weight"] == 1


@pytest.fixture(scope="module")
def finetuned(tiny_bert, counterfitted, tmp_path_factory):
    """base, ascc (twice) and dne fine-tuned end to end from the same seed and data."""
    import pandas as pd

    frame = pd.DataFrame({"id": [str(i) for i in range(12)], "text": TEXTS * 2, "label": LABELS * 2})
    hp = END_TO_END_HP
    params = {"base": {}, "ascc": {"steps": 2}, "dne": {"steps": 1}}
    runs = {}
    for name in ["base", "ascc", "dne", "ascc again"]:
        method = name.split()[0]
        out = tmp_path_factory.mktemp(method)
        record = training.finetune(
            str(tiny_bert),
            frame,
            frame,
            out,
            hp,
            method,
            params[method],
            3,
            2,
            torch.device("cpu"),
            method_context={"counterfitted": str(counterfitted)},
        )
        weights = models.load_classifier(str(out / "model"), 2).state_dict()
        runs[name] = types.SimpleNamespace(record=record, weights=weights, params=params[method])
    return runs


def test_each_trains_its_own_way_and_is_deterministic_under_a_seed(finetuned):
    def same(first, second):
        first, second = finetuned[first].weights, finetuned[second].weights
        return all(torch.equal(first[key], second[key]) for key in first)

    assert same("ascc", "ascc again")
    assert not same("ascc", "base") and not same("dne", "base") and not same("ascc", "dne")
    for name, passes in (("ascc", {"forward": 5.0, "backward": 4.0}), ("dne", {"forward": 2.0, "backward": 2.0})):
        record = finetuned[name].record
        assert record["method_params"] == {**training.method_defaults(name), **finetuned[name].params}
        assert record["passes_per_step"] == passes
        assert 0 < record["history"][0]["perturbation"]["hull_share"] < 1
