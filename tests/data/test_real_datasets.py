"""Real dataset loaders on tiny fake trees of each official layout (built in tmp_path)."""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fgvc_lib.data.aircraft import FGVCAircraft
from fgvc_lib.data.base import FGVCDataset
from fgvc_lib.data.cars import StanfordCars
from fgvc_lib.data.cub import CUB200, CUBList
from fgvc_lib.data.dogs import StanfordDogs
from fgvc_lib.data.download import Resource
from fgvc_lib.data.folder import ImageFolderDataset
from fgvc_lib.data.food11 import FOOD11_CLASSES, Food11
from fgvc_lib.data.nabirds import NABirds
from fgvc_lib.data.real import DATASET_INFO, REAL_DATASETS, build_real_dataset
from fgvc_lib.errors import FGVCError

scipy_io = pytest.importorskip("scipy.io")

CUB100 = Path("/work/shared/data/cub100-227px")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def jpeg(path: Path, size: tuple[int, int] = (16, 12), value: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, 40)).save(path, "JPEG")
    return path


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def tar_gz(source: Path, members: list[str], archive: Path) -> tuple[str, str]:
    """Pack ``source/<member>`` into ``archive``; return (file:// url, md5)."""
    with tarfile.open(archive, "w:gz") as tar:
        for member in members:
            tar.add(source / member, arcname=member)
    return archive.as_uri(), hashlib.md5(archive.read_bytes()).hexdigest()


def check_common(ds: FGVCDataset, n: int, num_classes: int) -> None:
    assert len(ds) == n
    assert ds.num_classes == num_classes
    assert all(0 <= t < num_classes for t in ds.targets)
    assert all(isinstance(p, Path) for p, _ in ds.samples)


# --------------------------------------------------------------------------
# CUB-200-2011
# --------------------------------------------------------------------------
CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def make_cub(parent: Path) -> Path:
    """6 images, 2 per class; ids 1..6; train = 1, 3, 5, 6; boxes x y w h."""
    top = parent / "CUB_200_2011"
    images, labels, split, boxes = [], [], [], []
    flags = {1: 1, 2: 0, 3: 1, 4: 0, 5: 1, 6: 1}
    for image_id in range(1, 7):
        class_id = (image_id + 1) // 2
        rel = f"{CUB_CLASSES[class_id - 1]}/img_{image_id:04d}.jpg"
        jpeg(top / "images" / rel, (8 + 4 * image_id, 8 + 2 * image_id), 30 * image_id)
        images.append(f"{image_id} {rel}")
        labels.append(f"{image_id} {class_id}")
        split.append(f"{image_id} {flags[image_id]}")
        boxes.append(f"{image_id} {image_id}.0 2.0 5.0 {image_id + 1}.5")
    write(top / "images.txt", images)
    write(top / "image_class_labels.txt", labels)
    write(top / "train_test_split.txt", split)
    write(top / "classes.txt", [f"{i + 1} {c}" for i, c in enumerate(CUB_CLASSES)])
    write(top / "bounding_boxes.txt", boxes)
    return top


def test_cub_counts_targets_classes_boxes(tmp_path):
    top = make_cub(tmp_path)
    train = CUB200(tmp_path, "train")
    test = CUB200(top, "test")  # the top folder itself works too
    check_common(train, 4, 3)
    check_common(test, 2, 3)
    assert train.classes == ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross"]
    assert train.targets == [0, 1, 2, 2]  # ids 1, 3, 5, 6
    assert test.targets == [0, 1]          # ids 2, 4
    # id 3: x=3, y=2, w=5, h=4.5 -> (3, 2, 8, 6.5)
    assert train.boxes[1] == (3.0, 2.0, 8.0, 6.5)
    assert train.samples[1][0] == top / "images" / CUB_CLASSES[1] / "img_0003.jpg"


def test_cub_item_annotation_and_transforms(tmp_path):
    make_cub(tmp_path)
    ds = CUB200(tmp_path, "test", transform=lambda im: ("T", im.size, im.mode),
                target_transform=lambda t: t + 100)
    image, target = ds[1]
    assert image == ("T", (8 + 4 * 4, 8 + 2 * 4), "RGB")
    assert target == 101
    ann = ds.annotation(0)
    assert ann["object_box"] == (2.0, 2.0, 7.0, 5.5)
    assert ann["size"] == (16, 12)


def test_cub_missing_root_and_list_file(tmp_path):
    with pytest.raises(FGVCError, match="dataset root not found.*CUB_200_2011/images.txt exists"):
        CUB200(tmp_path / "nowhere")
    with pytest.raises(FGVCError, match=r"expected images.txt under .*CUB_200_2011/images.txt"):
        CUB200(tmp_path)
    top = make_cub(tmp_path)
    (top / "bounding_boxes.txt").unlink()
    with pytest.raises(FGVCError, match="expected file missing: .*bounding_boxes.txt"):
        CUB200(tmp_path)


@pytest.mark.parametrize("file, line, text, message", [
    ("images.txt", 2, "2", r"malformed line 2 in .*images.txt.*found 1 field"),
    ("image_class_labels.txt", 3, "3 two", r"line 3 in .*image_class_labels.txt.*not a number"),
    ("image_class_labels.txt", 4, "4 9", r"line 4 .*class id 9 is not listed"),
    ("train_test_split.txt", 1, "1 2", r"line 1 .*flag '2' is not 0 or 1"),
    ("bounding_boxes.txt", 5, "5 1 2 3", r"line 5 in .*bounding_boxes.txt"),
    ("images.txt", 6, "5 x/y.jpg", r"line 6 in .*images.txt.*appears twice"),
    ("train_test_split.txt", 6, "7 1", r"line 6 .*image id '7' is not in"),
])
def test_cub_malformed_lines(tmp_path, file, line, text, message):
    top = make_cub(tmp_path)
    replace_line(top / file, line, text)
    with pytest.raises(FGVCError, match=message):
        CUB200(tmp_path)


def test_cub_missing_entry_and_image(tmp_path):
    top = make_cub(tmp_path)
    lines = (top / "image_class_labels.txt").read_text().splitlines()
    write(top / "image_class_labels.txt", lines[:-1])
    with pytest.raises(FGVCError, match="image_class_labels.txt has no entry for 1 image"):
        CUB200(tmp_path)
    make_cub(tmp_path)
    (top / "images" / CUB_CLASSES[0] / "img_0001.jpg").unlink()
    with pytest.raises(FGVCError, match="1 of 4 image files are missing, first: .*img_0001.jpg"):
        CUB200(tmp_path)


def test_cub_corrupt_image_names_file(tmp_path):
    top = make_cub(tmp_path)
    corrupt(top / "images" / CUB_CLASSES[1] / "img_0003.jpg")
    ds = CUB200(tmp_path, "train")
    ds[0]
    with pytest.raises(FGVCError, match="corrupt or truncated image: .*img_0003.jpg"):
        ds[1]


def test_unknown_split(tmp_path):
    make_cub(tmp_path)
    with pytest.raises(FGVCError, match="unknown split 'val'"):
        CUB200(tmp_path, "val")


def test_cub_download_from_file_url(tmp_path, monkeypatch):
    source = tmp_path / "source"
    make_cub(source)
    url, md5 = tar_gz(source, ["CUB_200_2011"], tmp_path / "cub.tgz")
    monkeypatch.setattr(CUB200, "resources", (Resource(url, "CUB_200_2011.tgz", md5=md5),))
    root = tmp_path / "data"
    ds = CUB200(root, "train", download=True)
    assert len(ds) == 4 and (root / "CUB_200_2011" / "images.txt").is_file()
    assert CUB200(root, "test", download=True).targets == [0, 1]  # already there: no new download


def test_cub_download_checksum_mismatch(tmp_path, monkeypatch):
    source = tmp_path / "source"
    make_cub(source)
    url, _ = tar_gz(source, ["CUB_200_2011"], tmp_path / "cub.tgz")
    monkeypatch.setattr(CUB200, "resources", (Resource(url, "CUB_200_2011.tgz", md5="0" * 32),))
    root = tmp_path / "data"
    with pytest.raises(FGVCError, match="checksum mismatch"):
        CUB200(root, download=True)
    assert list(root.iterdir()) == []


# --------------------------------------------------------------------------
# CUB list subsets (cub100-227px format)
# --------------------------------------------------------------------------
def make_cub_list(root: Path) -> Path:
    names = ["Black_footed_Albatross", "Groove_billed_Ani"]
    images, labels, split = [], [], []
    for image_id in range(5):
        class_id = 0 if image_id < 3 else 1
        rel = f"{names[class_id]}/{image_id:04d}.jpg"
        jpeg(root / "images" / rel, (10, 10), 40 * image_id)
        images.append(f"{image_id}, {rel}")
        labels.append(f"{image_id}, {class_id}")
        split.append(f"{image_id},{1 if image_id in (0, 1, 3) else 0}")
    write(root / "images.txt", images)
    write(root / "image_class_labels.txt", labels)
    write(root / "train_test_split.txt", split)
    write(root / "classes.txt", [f"{i}, {n}" for i, n in enumerate(names)])
    return root


def test_cub_list_counts_and_targets(tmp_path):
    root = make_cub_list(tmp_path / "sub")
    train, test = CUBList(root, "train"), CUBList(root, "test")
    check_common(train, 3, 2)
    check_common(test, 2, 2)
    assert train.targets == [0, 0, 1] and test.targets == [0, 1]
    assert train.classes == ["Black_footed_Albatross", "Groove_billed_Ani"]
    assert not train.has_boxes
    with pytest.raises(FGVCError, match="no bounding boxes"):
        train.annotation(0)


def test_cub_list_rejects_official_format_with_hint(tmp_path):
    make_cub(tmp_path)
    with pytest.raises(FGVCError, match="malformed line 1 .*use CUB200"):
        CUBList(tmp_path / "CUB_200_2011")
    with pytest.raises(FGVCError, match="malformed line 1 .*use CUBList"):
        CUB200(make_cub_list(tmp_path / "sub"))


@pytest.mark.skipif(not CUB100.is_dir(), reason="real cub100-227px subset not on this machine")
def test_real_cub100_subset():
    train, test = CUBList(CUB100, "train"), CUBList(CUB100, "test")
    assert (len(train), len(test)) == (2903, 2999)
    assert train.num_classes == test.num_classes == 100
    assert set(train.targets) == set(range(100))
    assert train.classes[0] == "Black_footed_Albatross"
    image, target = train[0]
    assert image.size == (227, 227) and image.mode == "RGB" and target == 0


# --------------------------------------------------------------------------
# Stanford Cars (devkit .mat files)
# --------------------------------------------------------------------------
CAR_NAMES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012"]


def save_annos(path: Path, rows: list[tuple[int, int, int, int, int, str]], with_class: bool = True) -> None:
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"] + (["class"] if with_class else []) + ["fname"]
    records = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, (x1, y1, x2, y2, cls, fname) in enumerate(rows):
        values = [x1, y1, x2, y2] + ([cls] if with_class else []) + [fname]
        records[0, i] = tuple(np.array([[v]]) if isinstance(v, int) else v for v in values)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(str(path), {"annotations": records})


def make_cars(root: Path, test_annos_in_devkit: bool = False) -> Path:
    (root / "devkit").mkdir(parents=True)
    scipy_io.savemat(str(root / "devkit" / "cars_meta.mat"), {"class_names": np.array([CAR_NAMES], dtype=object)})
    train = [(1, 1, 10, 8, 1, "00001.jpg"), (3, 2, 16, 12, 3, "00002.jpg"), (2, 5, 9, 9, 2, "00003.jpg")]
    test = [(1, 1, 16, 12, 2, "00001.jpg"), (4, 4, 8, 8, 3, "00002.jpg")]
    for fname in ("00001.jpg", "00002.jpg", "00003.jpg"):
        jpeg(root / "cars_train" / fname)
    for fname in ("00001.jpg", "00002.jpg"):
        jpeg(root / "cars_test" / fname, (20, 16))
    save_annos(root / "devkit" / "cars_train_annos.mat", train)
    save_annos(root / ("devkit" if test_annos_in_devkit else "") / "cars_test_annos_withlabels.mat", test)
    save_annos(root / "devkit" / "cars_test_annos.mat", test, with_class=False)
    return root


def test_cars_counts_targets_boxes(tmp_path):
    root = make_cars(tmp_path / "cars")
    train, test = StanfordCars(root, "train"), StanfordCars(root, "test")
    check_common(train, 3, 3)
    check_common(test, 2, 3)
    assert train.classes == CAR_NAMES
    assert train.targets == [0, 2, 1] and test.targets == [1, 2]
    # 1-based inclusive (3, 2)-(16, 12) -> 0-based exclusive (2, 1, 16, 12)
    assert train.boxes[1] == (2.0, 1.0, 16.0, 12.0)
    assert test.annotation(0) == {"object_box": (0.0, 0.0, 16.0, 12.0), "part_boxes": [], "size": (20, 16)}
    image, target = test[1]
    assert image.size == (20, 16) and target == 2


def test_cars_layout_variants(tmp_path):
    root = make_cars(tmp_path / "stanford_cars", test_annos_in_devkit=True)
    assert len(StanfordCars(tmp_path, "test")) == 2  # parent of stanford_cars/, annos in devkit/
    nested = root / "cars_train" / "cars_train"
    nested.mkdir()
    for image in sorted((root / "cars_train").glob("*.jpg")):
        image.rename(nested / image.name)
    assert StanfordCars(root, "train").samples[0][0] == nested / "00001.jpg"


def test_cars_errors(tmp_path):
    with pytest.raises(FGVCError, match="no direct download.*cars_test_annos_withlabels.mat"):
        StanfordCars(tmp_path / "none", download=True)
    root = make_cars(tmp_path / "cars")
    (root / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(FGVCError, match="cars_test_annos_withlabels.mat.*exists but has no labels"):
        StanfordCars(root, "test")
    save_annos(root / "devkit" / "cars_train_annos.mat", [(1, 1, 10, 8, 7, "00001.jpg")])
    with pytest.raises(FGVCError, match=r"entry 1 \(00001.jpg\) .* class 7, outside 1..3"):
        StanfordCars(root, "train")
    save_annos(root / "devkit" / "cars_train_annos.mat", [(1, 1, 10, 8, 1, "00001.jpg")], with_class=False)
    with pytest.raises(FGVCError, match="lacks field.*class"):
        StanfordCars(root, "train")
    (root / "devkit" / "cars_meta.mat").write_bytes(b"not a mat file")
    with pytest.raises(FGVCError, match="cannot read MATLAB file .*cars_meta.mat"):
        StanfordCars(root, "train")


# --------------------------------------------------------------------------
# FGVC-Aircraft
# --------------------------------------------------------------------------
VARIANTS = ["707-320", "Cessna 172", "F/A-18"]


def make_aircraft(parent: Path) -> Path:
    data = parent / "fgvc-aircraft-2013b" / "data"
    write(data / "variants.txt", VARIANTS)
    trainval = [("0000001", "Cessna 172"), ("0000002", "707-320"), ("0000003", "F/A-18")]
    test = [("0000004", "F/A-18"), ("0000005", "Cessna 172")]
    write(data / "images_variant_trainval.txt", [f"{i} {v}" for i, v in trainval])
    write(data / "images_variant_test.txt", [f"{i} {v}" for i, v in test])
    for image_id, _ in trainval + test:
        jpeg(data / "images" / f"{image_id}.jpg", (32, 40))  # 40 px high, 20 of them banner
    write(data / "images_box.txt", ["0000001 1 1 32 40", "0000002 3 4 20 15", "0000003 2 2 30 10",
                                     "0000004 5 6 25 30", "0000005 1 1 10 10"])
    return data


def test_aircraft_splits_classes_boxes(tmp_path):
    data = make_aircraft(tmp_path)
    train = FGVCAircraft(tmp_path, "train", crop_banner=False)
    check_common(train, 3, 3)
    assert train.classes == VARIANTS  # order of variants.txt
    assert train.targets == [1, 0, 2]
    assert FGVCAircraft(data, "trainval").targets == train.targets  # alias, data/ as root
    assert train.boxes[1] == (2.0, 3.0, 20.0, 15.0)  # 1-based inclusive -> 0-based exclusive
    test = FGVCAircraft(tmp_path / "fgvc-aircraft-2013b", "test", crop_banner=False)
    check_common(test, 2, 3)
    assert test.targets == [2, 1]
    assert test[0][0].size == (32, 40)


def test_aircraft_banner_crop_adjusts_image_and_boxes(tmp_path):
    make_aircraft(tmp_path)
    ds = FGVCAircraft(tmp_path, "train", transform=lambda im: im.size)
    assert ds[0] == ((32, 20), 1)
    assert ds.boxes[0] == (0.0, 0.0, 32.0, 20.0)  # ymax 40 clipped to the 20 rows left
    assert ds.boxes[1] == (2.0, 3.0, 20.0, 15.0)  # box above the banner: unchanged
    assert ds.annotation(0) == {"object_box": (0.0, 0.0, 32.0, 20.0), "part_boxes": [], "size": (32, 20)}
    assert list(ds.boxes[-2:]) == [ds.boxes[1], ds.boxes[2]]


def test_aircraft_errors(tmp_path):
    data = make_aircraft(tmp_path)
    replace_line(data / "images_variant_test.txt", 2, "0000005 Boeing 999")
    with pytest.raises(FGVCError, match=r"line 2 in .*images_variant_test.txt.*'Boeing 999' is not listed"):
        FGVCAircraft(tmp_path, "test")
    replace_line(data / "images_box.txt", 3, "0000003 2 2 thirty 10")
    with pytest.raises(FGVCError, match=r"line 3 in .*images_box.txt.*'thirty'.* not a number"):
        FGVCAircraft(tmp_path, "train")
    (data / "images_box.txt").unlink()
    with pytest.raises(FGVCError, match="expected file missing: .*images_box.txt"):
        FGVCAircraft(tmp_path, "train")
    with pytest.raises(FGVCError, match="unknown level 'model'"):
        FGVCAircraft(tmp_path, level="model")


def test_aircraft_download_from_file_url(tmp_path, monkeypatch):
    source = tmp_path / "source"
    make_aircraft(source)
    url, md5 = tar_gz(source, ["fgvc-aircraft-2013b"], tmp_path / "a.tar.gz")
    monkeypatch.setattr(FGVCAircraft, "resources", (Resource(url, "fgvc-aircraft-2013b.tar.gz", md5=md5),))
    assert len(FGVCAircraft(tmp_path / "data", "test", download=True)) == 2


# --------------------------------------------------------------------------
# Stanford Dogs
# --------------------------------------------------------------------------
DOG_DIRS = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02116738-African_hunting_dog"]


def voc_xml(boxes: list[tuple[int, int, int, int]]) -> str:
    objects = "".join(
        f"<object><name>dog</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
        f"<ymax>{d}</ymax></bndbox></object>" for a, b, c, d in boxes)
    return f"<annotation><size><width>16</width><height>12</height></size>{objects}</annotation>"


def save_list(path: Path, files: list[str], labels: list[int]) -> None:
    scipy_io.savemat(str(path), {
        "file_list": np.array(files, dtype=object).reshape(-1, 1),
        "annotation_list": np.array([f[:-4] for f in files], dtype=object).reshape(-1, 1),
        "labels": np.array(labels, dtype=float).reshape(-1, 1)})


def make_dogs(root: Path) -> Path:
    train, test = [], []
    for c, folder in enumerate(DOG_DIRS):
        for n in range(3):
            rel = f"{folder}/{folder[:9]}_{n}.jpg"
            jpeg(root / "Images" / rel, (16, 12), 60 * c + 10 * n)
            boxes = [(1, 1, 8, 6), (2, 3, 16, 12)] if n == 0 else [(n, n, 10, 9)]
            (root / "Annotation" / folder).mkdir(parents=True, exist_ok=True)
            (root / "Annotation" / rel[:-4]).write_text(voc_xml(boxes))
            (test if n == 2 else train).append((rel, c + 1))
    save_list(root / "train_list.mat", [f for f, _ in train], [label for _, label in train])
    save_list(root / "test_list.mat", [f for f, _ in test], [label for _, label in test])
    return root


def test_dogs_counts_classes_boxes(tmp_path):
    root = make_dogs(tmp_path)
    train, test = StanfordDogs(root, "train"), StanfordDogs(root, "test")
    check_common(train, 6, 3)
    check_common(test, 3, 3)
    assert train.classes == ["Chihuahua", "Japanese_spaniel", "African_hunting_dog"]
    assert train.targets == [0, 0, 1, 1, 2, 2] and test.targets == [0, 1, 2]
    assert train.boxes[0] == (1.0, 2.0, 16.0, 12.0)  # the larger of two dogs, VOC 1-based -> 0-based
    assert train.boxes[1] == (0.0, 0.0, 10.0, 9.0)
    assert StanfordDogs(root, "test", load_boxes=False).boxes is None


def test_dogs_errors(tmp_path):
    root = make_dogs(tmp_path)
    (root / "Annotation" / DOG_DIRS[1] / f"{DOG_DIRS[1][:9]}_1").write_text("<annotation><object>")
    with pytest.raises(FGVCError, match="malformed annotation XML .*n02085782_1"):
        StanfordDogs(root, "train")
    save_list(root / "test_list.mat", [f"{DOG_DIRS[0]}/{DOG_DIRS[0][:9]}_2.jpg"], [2])
    with pytest.raises(FGVCError, match="has label 2, but class 2 is folder n02085782-Japanese_spaniel"):
        StanfordDogs(root, "test")
    (root / "test_list.mat").unlink()
    with pytest.raises(FGVCError, match="expected file missing: .*test_list.mat"):
        StanfordDogs(root, "test")
    with pytest.raises(FGVCError, match="dataset root not found"):
        StanfordDogs(tmp_path / "missing")


def test_dogs_download_checks_layout(tmp_path, monkeypatch):
    source = make_dogs(tmp_path / "source")
    resources = []
    for name, members in (("images.tar", ["Images"]), ("annotation.tar", ["Annotation"]),
                          ("lists.tar", ["train_list.mat", "test_list.mat"])):
        url, _ = tar_gz(source, members, tmp_path / name)
        resources.append(Resource(url, name))
    monkeypatch.setattr(StanfordDogs, "resources", tuple(resources))
    assert len(StanfordDogs(tmp_path / "data", "test", download=True)) == 3
    monkeypatch.setattr(StanfordDogs, "resources", tuple(resources[:1]))
    with pytest.raises(FGVCError, match="did not produce the expected layout"):
        StanfordDogs(tmp_path / "data2", download=True)


# --------------------------------------------------------------------------
# Food-11
# --------------------------------------------------------------------------
def test_food11_flat_layout(tmp_path):
    for folder, names in (("training", ["0_0", "0_10", "0_2", "6_1", "10_0"]),
                          ("validation", ["3_0"]), ("evaluation", ["9_0", "9_1"])):
        for stem in names:
            jpeg(tmp_path / "Food-11" / folder / f"{stem}.jpg", (8, 8))
    (tmp_path / "Food-11" / "training" / "notes.txt").write_text("ignored")
    train = Food11(tmp_path, "train")  # parent of Food-11/
    check_common(train, 5, 11)
    assert train.classes == list(FOOD11_CLASSES) and train.classes[6] == "Noodles/Pasta"
    assert [p.stem for p, _ in train.samples] == ["0_0", "0_2", "0_10", "6_1", "10_0"]
    assert train.targets == [0, 0, 0, 6, 10]
    assert Food11(tmp_path / "Food-11", "val").targets == [3]
    assert Food11(tmp_path, "test").targets == [9, 9]
    jpeg(tmp_path / "Food-11" / "evaluation" / "11_0.jpg")
    with pytest.raises(FGVCError, match=r"unexpected file name .*11_0.jpg"):
        Food11(tmp_path, "test")


def test_food11_class_folder_layout(tmp_path):
    for folder, n in (("Bread", 2), ("Noodles-Pasta", 1), ("vegetable fruit", 1)):
        for i in range(n):
            jpeg(tmp_path / "training" / folder / f"img{i}.jpg", (8, 8))
    ds = Food11(tmp_path, "train")
    assert sorted(ds.targets) == [0, 0, 6, 10]
    jpeg(tmp_path / "training" / "Pizza" / "x.jpg")
    with pytest.raises(FGVCError, match="unknown class folder .*Pizza"):
        Food11(tmp_path, "train")
    with pytest.raises(FGVCError, match="no direct download"):
        Food11(tmp_path, "val", download=True)


# --------------------------------------------------------------------------
# NABirds
# --------------------------------------------------------------------------
def make_nabirds(parent: Path) -> Path:
    top = parent / "nabirds"
    write(top / "classes.txt", ["0 Birds", "22 Perching Birds", "295 Oak Titmouse",
                                "317 Common Raven", "819 Mute Swan"])
    rows = [("a1b2c3d4-0000-0000-0000-000000000001", 819, 1), ("a1b2c3d4-0000-0000-0000-000000000002", 295, 1),
            ("a1b2c3d4-0000-0000-0000-000000000003", 317, 0), ("a1b2c3d4-0000-0000-0000-000000000004", 819, 0),
            ("a1b2c3d4-0000-0000-0000-000000000005", 295, 1)]
    images, labels, split, boxes = [], [], [], []
    for n, (uuid, cls, train) in enumerate(rows):
        rel = f"{cls:04d}/{uuid.replace('-', '')}.jpg"
        jpeg(top / "images" / rel, (24, 16))
        images.append(f"{uuid} {rel}")
        labels.append(f"{uuid} {cls}")
        split.append(f"{uuid} {train}")
        boxes.append(f"{uuid} {n} 1 {n + 4} 5")
    write(top / "images.txt", images)
    write(top / "image_class_labels.txt", labels)
    write(top / "train_test_split.txt", split)
    write(top / "bounding_boxes.txt", boxes)
    return top


def test_nabirds_leaf_classes_mapped_in_id_order(tmp_path):
    top = make_nabirds(tmp_path)
    train, test = NABirds(tmp_path, "train"), NABirds(top, "test")
    check_common(train, 3, 3)
    check_common(test, 2, 3)
    assert train.classes == ["Oak Titmouse", "Common Raven", "Mute Swan"]  # ids 295, 317, 819
    assert train.targets == [2, 0, 0] and test.targets == [1, 2]
    assert train.boxes[0] == (0.0, 1.0, 4.0, 6.0)
    assert test.annotation(1)["object_box"] == (3.0, 1.0, 10.0, 6.0)  # x=3, w=7


def test_nabirds_errors(tmp_path):
    with pytest.raises(FGVCError, match="no direct download.*dl.allaboutbirds.org"):
        NABirds(tmp_path, download=True)
    top = make_nabirds(tmp_path)
    replace_line(top / "image_class_labels.txt", 2, "a1b2c3d4-0000-0000-0000-000000000002 296")
    with pytest.raises(FGVCError, match="line 2 .*class id 296 is not listed"):
        NABirds(tmp_path)


# --------------------------------------------------------------------------
# ImageFolderDataset and the registry
# --------------------------------------------------------------------------
def test_image_folder(tmp_path):
    for split, classes in (("train", ["tulip", "daisy", "iris"]), ("test", ["daisy", "iris"])):
        for c in classes:
            for i in range(2):
                jpeg(tmp_path / split / c / f"{i}.jpg", (8, 8))
    (tmp_path / "train" / "daisy" / ".DS_Store").write_text("")
    train, test = ImageFolderDataset(tmp_path, "train"), ImageFolderDataset(tmp_path, "test")
    check_common(train, 6, 3)
    assert train.classes == test.classes == ["daisy", "iris", "tulip"]
    assert test.targets == [0, 0, 1, 1]
    with pytest.raises(FGVCError, match="expected split folder .*val"):
        ImageFolderDataset(tmp_path, "val")
    jpeg(tmp_path / "test" / "stray.jpg")
    with pytest.raises(FGVCError, match="image outside any class folder: .*stray.jpg"):
        ImageFolderDataset(tmp_path, "test")


def test_registry_lists_every_dataset_with_a_description(tmp_path):
    assert set(REAL_DATASETS) == set(DATASET_INFO) == {
        "cub", "cub_list", "cars", "aircraft", "dogs", "food11", "nabirds", "folder"}
    assert all(issubclass(cls, FGVCDataset) for cls in REAL_DATASETS.values())
    make_cub(tmp_path)
    assert len(build_real_dataset("cub", tmp_path, "test")) == 2
    with pytest.raises(FGVCError, match="unknown dataset 'cub2'.*use one of: aircraft"):
        build_real_dataset("cub2", tmp_path)
