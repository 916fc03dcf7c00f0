"""Attention measured over a dataset with boxes."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from fgvc_lib.attention.report import attention_report, box_batches
from fgvc_lib.data.synthetic import SyntheticFGVC
from fgvc_lib.errors import FGVCError
from fgvc_lib.models.output import ModelOutput


class _ObjectOracle(nn.Module):
    """Predicts class 0; its 'attention' is the dataset's own object box, handed in per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.boxes: torch.Tensor | None = None

    def forward(self, x):
        b, _, h, w = x.shape
        ys = torch.arange(h).view(1, h, 1) + 0.5
        xs = torch.arange(w).view(1, 1, w) + 0.5
        bx = self.boxes
        inside = ((xs >= bx[:, 0, None, None]) & (xs < bx[:, 2, None, None])
                  & (ys >= bx[:, 1, None, None]) & (ys < bx[:, 3, None, None])).float()
        logits = torch.zeros(b, 4) + self.w
        logits[:, 0] = 1.0
        return ModelOutput(logits=logits, attention={"oracle": inside, "corner": _corner(b, h, w)})


def _corner(b, h, w):
    m = torch.zeros(b, h, w)
    m[:, :3, :3] = 1.0
    return m


@pytest.fixture
def data(tmp_path):
    return SyntheticFGVC(root=tmp_path, split="test", num_classes=4, per_class=3, image_size=32)


def test_oracle_map_scores_perfectly_and_corner_map_fails(data, monkeypatch):
    model = _ObjectOracle()
    batches = list(box_batches(data, 32, batch_size=64))
    assert len(batches) == 1 and batches[0]["images"].shape == (12, 3, 32, 32)
    model.boxes = batches[0]["object_boxes"]
    report = attention_report(model, data, 32, maps=["oracle", "corner"], batch_size=64)
    assert report["oracle"]["precision"] == pytest.approx(100.0)
    assert report["oracle"]["ACE"] == pytest.approx(0.0)
    # ACR: only class 0 is predicted correctly -> 1 of 4 classes has recall 1, others 0.
    assert report["oracle"]["ACR"] == pytest.approx(25.0)
    assert report["corner"]["ACE"] == pytest.approx(100.0)
    assert set(report["oracle"]) >= {"pointing_parts", "energy_in_parts"}


def test_dataset_without_boxes_is_refused():
    class NoBoxes:
        has_boxes = False

    with pytest.raises(FGVCError, match="no bounding boxes"):
        next(box_batches(NoBoxes(), 32))
