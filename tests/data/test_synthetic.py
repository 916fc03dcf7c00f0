"""The synthetic fine-grained dataset: determinism, splits, boxes, locality of class evidence, cache."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from fgvc_lib.data import synthetic
from fgvc_lib.data.synthetic import (GENERATOR_VERSION, SyntheticFGVC, class_prototypes,
                                     prototype_annotations)
from fgvc_lib.data.synthetic import dataset as synthetic_dataset
from fgvc_lib.data.synthetic import scene as synthetic_scene
from fgvc_lib.errors import FGVCError

SMALL = {"num_classes": 4, "per_class": 6, "image_size": 64}


def make(root, **kwargs) -> SyntheticFGVC:
    return SyntheticFGVC(root=root, **{**SMALL, **kwargs})


def digest(ds: SyntheticFGVC) -> str:
    return hashlib.sha256(np.ascontiguousarray(ds.images).tobytes()).hexdigest()


# sha256 of a tiny split, computed with the generator as ONE module (fgvc_lib/data/synthetic.py at
# GENERATOR_VERSION 3, before it became a package) by
#   ds = SyntheticFGVC(root=tmp, split=split, num_classes=4, per_class=3, image_size=64)
#   images: sha256(ds.images.tobytes())
#   record: sha256 over the bytes of ds.images, then int64 targets, object_boxes and part_boxes.
# Any change to the pictures must bump GENERATOR_VERSION and recompute these.
REFERENCE = {
    "train": ("e81fc93023f5667a8f2a553bc499db060ace559e21a75cc95e86bbc3061d18b8",
              "6e7e8333458a1bba6a30ce97a5037d742c103cde8ca4d5424384c396af2a8ee4"),
    "test": ("d3ce164275403735f422ec8be3ebd130bcd91627cde4ed2e191d2cd92b9c36fb",
             "abadfafe7fe85021a4ad4d2abcc66932c6c7f4fb9cab57faa039e37e1d126098"),
}


@pytest.mark.parametrize("split", sorted(REFERENCE))
def test_images_and_boxes_equal_the_stored_reference(tmp_path, split):
    assert GENERATOR_VERSION == 3
    ds = SyntheticFGVC(root=tmp_path, split=split, num_classes=4, per_class=3, image_size=64)
    record = hashlib.sha256()
    for array in (ds.images, np.asarray(ds._targets, np.int64), ds.object_boxes.astype(np.int64),
                  ds.part_boxes.astype(np.int64)):
        record.update(np.ascontiguousarray(array).tobytes())
    assert (digest(ds), record.hexdigest()) == REFERENCE[split]


def test_same_seed_gives_identical_bytes_across_cache_folders(tmp_path):
    a = make(tmp_path / "a", seed=3)
    b = make(tmp_path / "b", seed=3)
    assert digest(a) == digest(b)
    assert a.targets == b.targets
    assert np.array_equal(a.part_boxes, b.part_boxes)


def test_different_seed_gives_different_images_and_classes(tmp_path):
    a = make(tmp_path, seed=0)
    b = make(tmp_path, seed=1)
    assert digest(a) != digest(b)
    assert a.classes != b.classes


def test_train_and_test_splits_share_no_image(tmp_path):
    train = make(tmp_path, split="train")
    test = make(tmp_path, split="test")
    assert train.classes == test.classes
    train_hashes = {hashlib.sha256(img.tobytes()).digest() for img in np.asarray(train.images)}
    test_hashes = {hashlib.sha256(img.tobytes()).digest() for img in np.asarray(test.images)}
    assert len(train_hashes) == len(train)  # no duplicates inside a split either
    assert not train_hashes & test_hashes


@pytest.mark.parametrize("size", [64, 128])
def test_items_are_rgb_images_of_the_requested_size(tmp_path, size):
    ds = make(tmp_path, image_size=size, per_class=2)
    image, target = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (size, size)
    assert isinstance(target, int) and 0 <= target < 4
    assert ds.images.shape == (8, size, size, 3) and ds.images.dtype == np.uint8
    assert ds.annotation(0)["size"] == (size, size)


def test_same_scenes_at_any_resolution(tmp_path):
    """One seed, two resolutions: the same birds, boxes scaled with the image."""
    small = make(tmp_path, image_size=64, per_class=2)
    large = make(tmp_path, image_size=128, per_class=2)
    assert small.targets == large.targets
    assert np.abs(large.object_boxes - 2 * small.object_boxes).max() <= 2
    assert np.abs(large.part_boxes - 2 * small.part_boxes).max() <= 2


def test_transforms_apply_to_image_and_target(tmp_path):
    ds = make(tmp_path, transform=lambda im: torch.from_numpy(np.array(im)).permute(2, 0, 1),
              target_transform=lambda t: t + 100)
    x, y = ds[1]
    assert x.shape == (3, 64, 64) and x.dtype == torch.uint8
    assert y == ds.targets[1] + 100


def test_targets_are_balanced_and_classes_named_by_their_parts(tmp_path):
    ds = make(tmp_path, per_class=5)
    assert len(ds) == 20
    assert np.bincount(ds.targets, minlength=4).tolist() == [5, 5, 5, 5]
    assert len(set(ds.classes)) == 4
    for name in ds.classes:
        slots = name.split("/")
        assert [s.split("-")[0] for s in slots] == ["crest", "wing", "tail"]
    assert ds.has_boxes


def test_boxes_lie_inside_the_image_and_parts_inside_the_object(tmp_path):
    ds = make(tmp_path, per_class=10)
    for i in range(len(ds)):
        ann = ds.annotation(i)
        x0, y0, x1, y1 = ann["object_box"]
        # the whole bird is in the picture: its box does not touch the border
        assert 1 <= x0 < x1 <= 63 and 1 <= y0 < y1 <= 63
        assert ann["part_names"] == ["crest", "wing", "tail"]
        assert len(ann["part_boxes"]) == 3
        for px0, py0, px1, py1 in ann["part_boxes"]:
            assert x0 <= px0 < px1 <= x1 and y0 <= py0 < py1 <= y1
            # a part is small: under ~20% of the object's longer side
            assert max(px1 - px0, py1 - py0) <= 0.2 * max(x1 - x0, y1 - y0) + 2


def test_largest_most_shifted_birds_are_never_cropped(monkeypatch):
    # sample_params reads the constants from the module defining them, not the package's copies
    monkeypatch.setattr(synthetic_scene, "SCALE_RANGE", (synthetic.SCALE_RANGE[1],) * 2)
    monkeypatch.setattr(synthetic_scene, "MAX_SHIFT", 0.5)  # push every bird against the border
    table = synthetic.make_class_table(4, 0)
    params = synthetic.sample_params(table, np.arange(200) % 4, np.random.default_rng(0), 32)
    _, object_boxes, _ = synthetic.render_images(params, 32)
    assert object_boxes[:, :2].min() >= 1 and object_boxes[:, 2:].max() <= 31
    assert object_boxes[:, :2].min() <= 2 or object_boxes[:, 2:].max() >= 30  # they do reach it


def test_object_box_is_tight_on_the_prototype():
    image = class_prototypes(2, 64)[0].astype(int)
    object_boxes, _ = prototype_annotations(2, 64)
    x0, y0, x1, y1 = object_boxes[0].tolist()
    drawn = np.abs(image - image[0, 0]).sum(-1) > 0  # the prototype background is flat
    ys, xs = np.nonzero(drawn)
    # every drawn pixel is inside; the box exceeds them by at most one faint anti-aliased pixel
    assert x0 <= xs.min() <= x0 + 1 and y0 <= ys.min() <= y0 + 1
    assert x1 - 1 <= xs.max() + 1 <= x1 and y1 - 1 <= ys.max() + 1 <= y1


def test_class_prototypes_differ_only_inside_the_differing_part_boxes():
    """Classes share everything but the parts: prototypes differ only where their codes differ."""
    k, size = 6, 96
    protos = class_prototypes(k, size).astype(int)
    _, part_boxes = prototype_annotations(k, size)
    table = synthetic.make_class_table(k, 0)
    for a in range(k):
        for b in range(a + 1, k):
            differing = [s for s in range(3) if not np.array_equal(table.codes[a, s], table.codes[b, s])]
            assert differing
            allowed = np.zeros((size, size), bool)
            for s in differing:
                x0, y0, x1, y1 = part_boxes[a, s]
                allowed[y0:y1, x0:x1] = True
            changed = np.abs(protos[a] - protos[b]).sum(-1) > 0
            assert changed.any()
            assert not (changed & ~allowed).any(), (a, b)
            # and every differing part really looks different (not just a tiny rim)
            for s in differing:
                x0, y0, x1, y1 = part_boxes[a, s]
                assert changed[y0:y1, x0:x1].mean() > 0.2, (a, b, s)


def test_siblings_differ_in_exactly_one_named_part(tmp_path):
    ds = make(tmp_path, num_classes=7, per_class=1)
    pairs = ds.sibling_pairs
    assert [(a, b) for a, b, _ in pairs] == [(0, 1), (2, 3), (4, 5)]
    assert [slot for _, _, slot in pairs] == ["crest", "wing", "tail"]
    assert ds.sibling_part(6) is None and ds.sibling_part(3) == "wing"
    for a, b, slot in pairs:
        differs = [s for s in range(3)
                   if not np.array_equal(ds.table.codes[a, s], ds.table.codes[b, s])]
        assert differs == [["crest", "wing", "tail"].index(slot)]


def test_class_table_is_prefix_stable():
    small, large = synthetic.make_class_table(6, 5), synthetic.make_class_table(30, 5)
    assert np.array_equal(small.codes, large.codes[:6])
    assert len({c.tobytes() for c in large.codes}) == 30


def test_body_colour_does_not_reveal_the_class(tmp_path):
    """Two images of one class get different body colours; parts keep their palette colour."""
    ds = make(tmp_path, num_classes=2, per_class=8)
    rng = np.random.default_rng(0)
    params = synthetic.sample_params(ds.table, np.zeros(8, dtype=np.int64), rng, 64)
    assert np.ptp(params["body"], axis=0).max() > 0.2
    assert np.allclose(params["part_colour"], synthetic.PALETTE[ds.table.codes[0, :, 1]], atol=0.2)


def test_second_construction_reads_the_cache(tmp_path, monkeypatch):
    first = make(tmp_path)

    def boom(*args, **kwargs):
        raise AssertionError("regenerated although the cache exists")

    monkeypatch.setattr(synthetic_dataset, "render_images", boom)
    second = make(tmp_path)
    assert digest(first) == digest(second)
    assert second.annotation(3) == first.annotation(3)
    with pytest.raises(AssertionError, match="regenerated"):
        make(tmp_path, seed=9)  # other parameters: a different cache file


def test_cache_defaults_to_env_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVC_CACHE", str(tmp_path / "env-cache"))
    ds = SyntheticFGVC(**SMALL)
    assert ds.images_path.parent == tmp_path / "env-cache" / "synthetic"
    assert ds.images_path.is_file() and ds.meta_path.is_file()


def test_stale_temp_file_and_corrupt_cache_are_harmless(tmp_path):
    reference = make(tmp_path / "ref")
    folder = tmp_path / "c" / "synthetic"
    folder.mkdir(parents=True)
    # leftovers of a crashed writer, named like ours
    (folder / f".{reference.images_path.name}.abc123.tmp").write_bytes(b"garbage")
    ds = make(tmp_path / "c")
    assert digest(ds) == digest(reference)
    assert not [p for p in folder.iterdir() if p.suffix == ".tmp" and "abc123" not in p.name]
    # a truncated final file (e.g. copied half-way) is detected and regenerated
    ds.images_path.write_bytes(ds.images_path.read_bytes()[:200])
    assert digest(make(tmp_path / "c")) == digest(reference)


@pytest.mark.parametrize("kwargs, words", [
    ({"num_classes": 1}, "num_classes >= 2"),
    ({"num_classes": synthetic.MAX_CLASSES + 1}, f"num_classes <= {synthetic.MAX_CLASSES}"),
    ({"image_size": 16}, "image_size >= 32"),
    ({"per_class": 0}, "per_class >= 1"),
    ({"image_size": 64.0}, "int"),
    ({"split": "val"}, "train, test"),
])
def test_bad_arguments_raise_with_the_fix(tmp_path, kwargs, words):
    with pytest.raises(FGVCError, match="fix") as info:
        make(tmp_path, **kwargs)
    assert words in str(info.value)
    assert not list(tmp_path.rglob("*.npy"))  # nothing half-made on disk


def test_prototypes_and_describe_explain_the_classes():
    protos = class_prototypes(3, 48, seed=2)
    assert protos.shape == (3, 48, 48, 3) and protos.dtype == np.uint8
    text = synthetic.describe(4, seed=2)
    for name in synthetic.make_class_table(4, 2).names:
        assert name in text
    assert "sibling" in text


def _no_render(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("regenerated")

    monkeypatch.setattr(synthetic_dataset, "render_images", boom)


def test_a_zero_filled_image_cache_beside_a_valid_meta_file_is_regenerated(tmp_path, monkeypatch):
    reference = make(tmp_path / "ref")
    ds = make(tmp_path / "c")
    images = np.load(ds.images_path, mmap_mode="r+")  # same header, the pixels zeroed
    images[:] = 0
    images.flush()
    del images
    # the meta file records the images' checksum: the zeroed pixels are not used
    assert digest(make(tmp_path / "c")) == digest(reference)
    _no_render(monkeypatch)
    assert digest(make(tmp_path / "c")) == digest(reference)  # and the fresh cache is reused


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "no checksum"])
def test_a_damaged_meta_file_is_regenerated_not_a_traceback(tmp_path, damage):
    reference = make(tmp_path / "ref")
    ds = make(tmp_path / "c")
    if damage == "truncated":
        ds.meta_path.write_bytes(ds.meta_path.read_bytes()[:60])
    elif damage == "not a zip":
        ds.meta_path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    else:  # a cache written before the checksum existed: cannot be verified, so remade
        with np.load(ds.meta_path) as meta:
            kept = {k: meta[k] for k in meta.files if k != "images_sha256"}
        with open(ds.meta_path, "wb") as fh:
            np.savez(fh, **kept)
    again = make(tmp_path / "c")
    assert digest(again) == digest(reference)
    with np.load(again.meta_path) as meta:
        assert str(meta["images_sha256"]) == digest(reference)


def test_temporaries_of_a_killed_writer_are_removed_when_the_cache_is_opened(tmp_path):
    ds = make(tmp_path)
    folder = ds.images_path.parent
    stale = [folder / f".{ds.images_path.name}.abc123.tmp", folder / f".{ds.meta_path.name}.x9.tmp"]
    for path in stale:
        path.write_bytes(b"left by a kill -9")
    other = folder / ".someone-else.npy.q1.tmp"  # not a temporary of this split: untouched
    other.write_bytes(b"x")
    make(tmp_path)  # opening the (valid) cache tidies its own leftovers
    assert not any(p.exists() for p in stale)
    assert other.exists()
    # ...and a writer that is still at work (holding the split's lock) keeps its file
    from fgvc_lib.data.synthetic.cache import cache_files
    from fgvc_lib.io import FileLock

    files = cache_files(tmp_path, split="train", **{**SMALL, "seed": 0})
    busy = folder / f".{ds.images_path.name}.busy.tmp"
    busy.write_bytes(b"being written")
    lock = FileLock(files.lock).acquire()
    try:
        make(tmp_path)
    finally:
        lock.release()
    assert busy.exists()
