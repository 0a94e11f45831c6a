import numpy as np
import pytest

from advlm import evaluation


def test_ece_by_hand():
    # two bins used: confidences 0.9 (both right) and 0.6 (one right of two)
    probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 0])
    expected = 0.5 * abs(1.0 - 0.9) + 0.5 * abs(0.5 - 0.6)
    assert evaluation.expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(expected)


def test_perfectly_calibrated_and_metrics():
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    labels = np.array([0, 1, 0, 1])
    metrics = evaluation.classification_metrics(probabilities, labels)
    assert metrics["accuracy"] == 0.75 and metrics["n"] == 4
    assert metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert metrics["ece"] == pytest.approx(0.25)
