"""Registry of the real-image datasets: name -> loader class, plus where to get the data.

Every class takes ``(root, split="train"|"test", transform=None,
target_transform=None, download=False)``; see each module for the layout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fgvc_lib.data.aircraft import FGVCAircraft
from fgvc_lib.data.base import FGVCDataset
from fgvc_lib.data.cars import StanfordCars
from fgvc_lib.data.cub import CUB200, CUBList
from fgvc_lib.data.dogs import StanfordDogs
from fgvc_lib.data.folder import ImageFolderDataset
from fgvc_lib.data.food11 import Food11
from fgvc_lib.data.nabirds import NABirds
from fgvc_lib.errors import unknown_name_error

REAL_DATASETS: dict[str, type[FGVCDataset]] = {
    "cub": CUB200,
    "cub_list": CUBList,
    "cars": StanfordCars,
    "aircraft": FGVCAircraft,
    "dogs": StanfordDogs,
    "food11": Food11,
    "nabirds": NABirds,
    "folder": ImageFolderDataset,
}

DATASET_INFO: dict[str, str] = {
    "cub": "CUB-200-2011, 200 bird species, 5,994/5,794 images, boxes; "
           "https://www.vision.caltech.edu/datasets/cub_200_2011/ (download=True works).",
    "cub_list": "A CUB subset with comma-separated list files and 0-based ids, no boxes, e.g. "
                "/work/shared/data/cub100-227px (100 species, 2,903/2,999); made locally, no download.",
    "cars": "Stanford Cars, 196 models, 8,144/8,041 images, boxes; original devkit .mat files from a "
            "mirror (the Stanford site no longer serves them) plus cars_test_annos_withlabels.mat.",
    "aircraft": "FGVC-Aircraft 2013b, 100 variants, 6,667 trainval/3,333 test, boxes, banner cropped; "
                "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ (download=True works).",
    "dogs": "Stanford Dogs, 120 breeds, 12,000/8,580 images, boxes; "
            "https://vision.stanford.edu/aditya86/ImageNetDogs/ (download=True works, checksum-verified).",
    "food11": "Food-11 (EPFL), 11 food categories, 9,866/3,430/3,347 train/val/test, no boxes; "
              "https://www.epfl.ch/labs/mmspg/downloads/food-image-datasets/ (request form) or a mirror.",
    "nabirds": "NABirds, 555 leaf bird classes, 23,929/24,633 images, boxes; "
               "https://dl.allaboutbirds.org/nabirds (accept the terms, then download).",
    "folder": "Any ROOT/train/<class>/*.jpg + ROOT/test/<class>/*.jpg tree, no boxes, e.g. "
              "/work/shared/data/flowers12-224px (12 species, 60/20 per class).",
}


def build_real_dataset(name: str, root: str | Path, split: str = "train", **kwargs: Any) -> FGVCDataset:
    """``REAL_DATASETS[name](root, split, **kwargs)`` with a clear error for an unknown name."""
    if name not in REAL_DATASETS:
        raise unknown_name_error("dataset", name, list(REAL_DATASETS))
    return REAL_DATASETS[name](root, split, **kwargs)
