"""advlm.models.Bf16Weights: the attacked model's weights cast to bf16 once, with autocast's arithmetic."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from advlm import models, runtime


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=2
    )
    model = BertForSequenceClassification(config).eval()
    inputs = {"input_ids": torch.randint(5, 100, (3, 12)), "attention_mask": torch.ones(3, 12, dtype=torch.long)}
    inputs["attention_mask"][0, 8:] = 0  # a padded row
    return model, inputs


@pytest.fixture
def precision():
    before = runtime._precision
    yield lambda name: runtime.set_precision(name, torch.device("cpu"))
    runtime._precision = before


def autocast_logits(model, inputs):
    with torch.no_grad(), models.autocast(torch.device("cpu")):
        return model(**inputs).logits


def test_bf16_weights_give_autocasts_logits_and_follow_weight_updates(classifier, precision):
    model, inputs = classifier
    precision("bf16")
    forward = models.Bf16Weights(model)
    assert "classifier.weight" in forward.names and "bert.embeddings.word_embeddings.weight" not in forward.names
    with torch.no_grad():
        first = forward(**inputs).logits
    assert first.dtype == torch.bfloat16
    assert torch.equal(first, autocast_logits(model, inputs))

    with torch.no_grad():  # an optimizer step: in place, as A2T's training attacks see the model between epochs
        model.bert.encoder.layer[0].intermediate.dense.weight.mul_(-1.0)
        model.classifier.bias.add_(0.5)
        updated = forward(**inputs).logits
    assert not torch.equal(updated, first)
    assert torch.equal(updated, autocast_logits(model, inputs))


def test_bf16_weights_leave_shared_weights_and_fp32_alone(classifier, precision):
    model, inputs = classifier
    model.classifier.weight = torch.nn.Parameter(model.bert.embeddings.word_embeddings.weight[:2].clone())
    model.bert.pooler.dense.weight = model.bert.encoder.layer[1].attention.self.query.weight  # tied
    forward = models.Bf16Weights(model)
    assert "bert.pooler.dense.weight" not in forward.names and "classifier.weight" in forward.names
    assert "bert.encoder.layer.1.attention.self.query.weight" not in forward.names
    precision("fp32")
    with torch.no_grad():
        assert torch.equal(forward(**inputs).logits, model(**inputs).logits)


def test_a_name_that_is_no_directory_is_read_as_a_hub_id_and_the_error_says_so(tmp_path, monkeypatch, caplog):
    from transformers import AutoConfig

    from advlm.resources import MissingResourceError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingResourceError, match="model directory .*/results/models/x does not exist"):
        models._load_from(AutoConfig, "results/models/x")
    with caplog.at_level("INFO"), pytest.raises(MissingResourceError) as error:
        models._load_from(AutoConfig, "models/my-bert")
    expected = f"'models/my-bert', read as a Hub id since there is no directory {tmp_path}/models/my-bert"
    assert expected in str(error.value) and "read as a Hub id" in caplog.text
