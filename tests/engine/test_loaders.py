"""Validation split and subsampling of the data path."""
from __future__ import annotations

from collections import Counter

import pytest
from torch.utils.data import Dataset

from fgvc_lib.engine.loaders import _subsample, stratified_split
from fgvc_lib.errors import FGVCError


class _Labels(Dataset):
    def __init__(self, targets):
        self.targets = list(targets)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return i, self.targets[i]


def test_stratified_split_takes_a_share_of_every_class_and_is_seeded():
    targets = [c for c in range(4) for _ in range(10)] + [4, 4]
    train, val = stratified_split(targets, 0.2, seed=0)
    assert sorted(train + val) == list(range(len(targets)))
    per_class = Counter(targets[i] for i in val)
    assert per_class == {0: 2, 1: 2, 2: 2, 3: 2, 4: 1}  # at least one of a two-item class
    assert stratified_split(targets, 0.2, seed=0) == (train, val)
    assert stratified_split(targets, 0.2, seed=1) != (train, val)
    with pytest.raises(FGVCError, match="val_fraction"):
        stratified_split(targets, 1.0, seed=0)


@pytest.mark.parametrize("n", [1, 7, 10, 23, 49])
def test_subsample_keeps_n_items_balanced_over_classes(n):
    # 10 classes of 5: fewer samples than 2 per class used to round every class to zero.
    ds = _Labels(c for c in range(10) for _ in range(5))
    sub = _subsample(ds, n, seed=0)
    assert len(sub) == n
    counts = Counter(sub.targets)
    assert max(counts.values()) - min(counts.values()) <= 1 or len(counts) < 10
    assert max(counts.values()) == -(-n // 10)
    assert sub.targets == [ds.targets[i] for i in sub.indices]


def test_subsample_of_zero_or_more_than_all_is_the_whole_set():
    ds = _Labels([0, 1, 0, 1])
    assert _subsample(ds, 0, seed=0) is ds and _subsample(ds, 9, seed=0) is ds
