import numpy as np
import pytest

from tfpretrain.metrics import classification_metrics


def test_binary_metrics_by_hand():
    y_true = [1, 1, 1, 0, 0, 0, 1, 0]
    y_pred = [1, 0, 1, 0, 1, 0, 1, 0]
    m = classification_metrics(y_true, y_pred)
    tp, fp, fn = 3, 1, 1
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_multiclass_macro_average():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    m = classification_metrics(y_true, y_pred, num_classes=4)
    precisions = [np.mean(y_true[y_pred == c] == c) for c in range(4)]
    recalls = [np.mean(y_pred[y_true == c] == c) for c in range(4)]
    assert m["precision"] == pytest.approx(np.mean(precisions))
    assert m["recall"] == pytest.approx(np.mean(recalls))
    assert m["accuracy"] == pytest.approx(np.mean(y_true == y_pred))


def test_bad_input():
    with pytest.raises(ValueError, match="equally long"):
        classification_metrics([0, 1], [0])
