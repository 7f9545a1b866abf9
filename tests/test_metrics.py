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


def test_class_report_by_hand():
    from tfpretrain.metrics import class_report

    # 3 classes: true  a a a b b c c c c
    #            pred  a b a b c c c a c
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 0, 1, 2, 2, 2, 0, 2]
    report = class_report(y_true, y_pred, ["ant", "bee", "cat"])
    assert report["class_names"] == ["ant", "bee", "cat"]
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
    ant, bee, cat = (report["per_class"][n] for n in ("ant", "bee", "cat"))
    assert ant == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert bee == pytest.approx({"precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "support": 2})
    assert cat["precision"] == pytest.approx(3 / 4) and cat["recall"] == pytest.approx(3 / 4)
    # The macro averages of classification_metrics are these per-class figures' means.
    macro = classification_metrics(y_true, y_pred, 3)
    assert macro["f1"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert macro["accuracy"] == pytest.approx(6 / 9)
    # A class that never occurs and is never predicted scores 0, with support 0.
    sparse = class_report([0, 1], [0, 1], ["x", "y", "z"])
    assert sparse["per_class"]["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert sparse["confusion_matrix"][2] == [0, 0, 0]
