import pytest
import torch

from fgvc_lib.engine.metrics import accuracy_metrics


def test_accuracy_metrics_hand_computed():
    # 4 samples, 6 classes; sample 0 and 1 right at top-1; sample 2 right at top-2; sample 3 wrong.
    logits = torch.tensor([
        [9., 1, 0, 0, 0, 0],
        [0., 9, 1, 0, 0, 0],
        [0., 9, 8, 0, 0, 0],   # target 2: top-5 hit only
        [9., 8, 7, 6, 5, 0],   # target 5: ranked 6th -> miss even at top-5
    ])
    targets = torch.tensor([0, 1, 2, 5])
    m = accuracy_metrics(logits, targets, num_classes=6)
    assert m["top1"] == pytest.approx(50.0)
    assert m["top5"] == pytest.approx(75.0)
    # per-class: class0 1/1, class1 1/1, class2 0/1, class5 0/1 -> mean 50%
    assert m["mean_class"] == pytest.approx(50.0)


def test_mean_class_differs_from_top1_when_unbalanced():
    logits = torch.tensor([[1., 0], [1., 0], [1., 0], [1., 0]])
    targets = torch.tensor([0, 0, 0, 1])
    m = accuracy_metrics(logits, targets, num_classes=2)
    assert m["top1"] == pytest.approx(75.0)
    assert m["mean_class"] == pytest.approx(50.0)
