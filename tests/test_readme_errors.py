"""README.md's "Bad input, and what you get" table stays true.

Every row of the table is one scenario below, keyed by the row's first cell: the
scenario makes the bad input, runs it through ``fgvc_lib.cli.main`` (or the library
call, for rows without a command), and returns the exit code and the text it printed or
raised. The test checks the exit code of the third cell and finds the second cell's
message in that text (``<...>`` in the README stands for any path, name or number; a
message starting ``fgvc: error:`` must be the only line on stderr). A row without a
scenario, or a scenario without a row, fails too.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from fgvc_lib.cli import main
from fgvc_lib.errors import FGVCError

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Bad input, and what you get"
TINY = ["--backbone", "resnet18", "--image-size", "32", "--batch-size", "8", "--quiet",
        "--max-train-samples", "16", "--max-test-samples", "8", "--epochs", "1"]
FOLDER = ["--dataset", "folder", "--backbone", "resnet18", "--image-size", "32",
          "--batch-size", "4", "--epochs", "1", "--quiet"]

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class Row:
    bad_input: str
    message: str | None  # the fragment in backticks, None for "nothing"
    code: int | None  # the exit code the third cell starts with, if it does


def readme_rows() -> list[Row]:
    text = README.read_text()
    assert SECTION in text, f"README.md lost its section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in body.splitlines():
        if not line.startswith("| ") or line.startswith("| bad input") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, line
        found = re.match(r"`([^`]+)`", cells[1])
        assert found or cells[1] == "nothing", cells[1]
        code = re.match(r"(\d+)\b", cells[2])
        rows.append(Row(cells[0], found.group(1) if found else None,
                        int(code.group(1)) if code else None))
    return rows


def fragment_pattern(fragment: str) -> re.Pattern:
    parts = re.split(r"<[^<>]+>", fragment)
    return re.compile(".+?".join(re.escape(p) for p in parts))


@dataclass
class Context:
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture
    folder_dataset: Callable

    def cli(self, *argv: str) -> tuple[int, str]:
        self.capsys.readouterr()
        code = main(list(argv))
        return code, self.capsys.readouterr().err

    def raised(self, call: Callable[[], object]) -> tuple[None, str]:
        with pytest.raises(FGVCError) as info:
            call()
        return None, str(info.value)

    def trained_folder_run(self) -> tuple[Path, Path]:
        data = self.folder_dataset(self.tmp / "A" / "data", ["finch", "sparrow"])
        self.monkeypatch.chdir(self.tmp / "A")
        assert main(["train", *FOLDER, "--data-root", "data", "--out", "run"]) == 0
        return self.tmp / "A" / "run", data


# -- the scenarios, one per README row ------------------------------------------------
def second_run(ctx: Context):
    from fgvc_lib.engine.run_folder import RunFolder

    holder = RunFolder(ctx.tmp / "R").open()  # a run holding R (here: this process)
    try:
        return ctx.cli("train", *TINY, "--out", str(ctx.tmp / "R"))
    finally:
        holder.close()


def resume_after_kill(ctx: Context):
    out = ctx.tmp / "R"
    out.mkdir()
    (out / ".lock").write_text(json.dumps({"pid": 999999, "host": "elsewhere"}))
    (out / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half")
    result = ctx.cli("train", *TINY, "--out", str(out), "--resume")
    assert not (out / ".checkpoint.pt.k1ll3d.tmp").exists()
    return result


def eval_other_classes(ctx: Context):
    run, _ = ctx.trained_folder_run()
    other = ctx.folder_dataset(ctx.tmp / "B" / "data", ["oak", "pine"])
    return ctx.cli("eval", "--run", str(run), "--data-root", str(other))


def eval_elsewhere(ctx: Context):
    run, _ = ctx.trained_folder_run()
    ctx.folder_dataset(ctx.tmp / "B" / "data", ["oak", "pine"])  # another "data" there
    ctx.monkeypatch.chdir(ctx.tmp / "B")
    code, err = ctx.cli("eval", "--run", str(run), "--json")
    assert "fgvc:" not in err  # no error, no note (only the progress bar)
    record = json.loads((run / "results.json").read_text())
    assert record["config"]["data_root"] == str(ctx.tmp / "A" / "data")  # A's, not B's
    return code, err


def non_finite_loss(ctx: Context):
    from fgvc_lib.methods import build_model

    cls = type(build_model("baseline", 2, backbone="resnet18"))
    step = cls.training_step

    def poisoned(self, *args, **kwargs):
        return {k: v * float("nan") for k, v in step(self, *args, **kwargs).items()}

    ctx.monkeypatch.setattr(cls, "training_step", poisoned)
    return ctx.cli("train", *TINY, "--out", str(ctx.tmp / "R"))


def corrupt_image(ctx: Context):
    root = ctx.folder_dataset(ctx.tmp / "data", ["a", "b"], per_class=6)
    (root / "train" / "a" / "2.jpg").write_bytes(b"\xff\xd8 broken")
    return ctx.cli("train", *FOLDER, "--data-root", str(root), "--workers", "2",
                   "--out", str(ctx.tmp / "R"))


def bad_device(ctx: Context):
    result = ctx.cli("train", *TINY, "--device", "tpu9", "--out", str(ctx.tmp / "R"))
    assert not (ctx.tmp / "R").exists()
    return result


def bad_profile_env(ctx: Context):
    ctx.monkeypatch.setenv("FGVC_PROFILE", "bogus")
    return ctx.cli("train", *TINY, "--out", str(ctx.tmp / "R"))


def pickled_checkpoint(ctx: Context):
    run = ctx.tmp / "R"
    run.mkdir()
    torch.save({"model": argparse.Namespace(), "spec": {}, "config": {}}, run / "checkpoint.pt")
    return ctx.cli("eval", "--run", str(run))


def unwritable_out(ctx: Context):
    (ctx.tmp / "a-file").write_text("not a folder")
    return ctx.cli("train", *TINY, "--out", str(ctx.tmp / "a-file" / "R"))


def early_failure(ctx: Context):
    result = ctx.cli("train", *FOLDER, "--data-root", str(ctx.tmp / "nowhere"),
                     "--out", str(ctx.tmp / "runs" / "R"))
    assert not (ctx.tmp / "runs").exists()
    return result


def bad_epochs(ctx: Context):
    return ctx.cli("train", *TINY, "--epochs", "-1", "--out", str(ctx.tmp / "R"))


def damaged_cache(ctx: Context):
    from fgvc_lib.data.synthetic import SyntheticFGVC

    def make():
        return SyntheticFGVC(root=ctx.tmp, num_classes=2, per_class=2, image_size=32)

    reference = np.array(make().images)
    ds = make()
    images = np.load(ds.images_path, mmap_mode="r+")
    images[:] = 0
    images.flush()
    del images
    assert np.array_equal(np.array(make().images), reference)
    ds.meta_path.write_bytes(ds.meta_path.read_bytes()[:50])
    assert np.array_equal(np.array(make().images), reference)
    return None, ""


def unsafe_archive(ctx: Context):
    from fgvc_lib.data.download import extract_archive

    archive = ctx.tmp / "chain.tar"
    with tarfile.open(archive, "w") as tar:
        for name, target in (("top/a", ".."), ("top/a/b", "..")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return ctx.raised(lambda: extract_archive(archive, ctx.tmp / "root"))


def no_data_filter(ctx: Context):
    from fgvc_lib.data.download import extract_archive

    ctx.monkeypatch.delattr(tarfile, "data_filter")
    archive = ctx.tmp / "ok.tar"
    with tarfile.open(archive, "w"):
        pass
    return ctx.raised(lambda: extract_archive(archive, ctx.tmp / "root"))


def unverifiable_archive(ctx: Context):
    from fgvc_lib.data.download import download_file

    (ctx.tmp / "root").mkdir()
    (ctx.tmp / "root" / "x.tgz").write_bytes(b"from somewhere")
    return ctx.raised(lambda: download_file("https://example.invalid/x.tgz", ctx.tmp / "root",
                                            "x.tgz", progress=False))


def wrong_archive(ctx: Context):
    import urllib.request

    from fgvc_lib.data.dogs import StanfordDogs

    class Response(io.BytesIO):
        headers = {"Content-Length": "9"}

    ctx.monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Response(b"not a tar"))
    return ctx.raised(lambda: StanfordDogs(ctx.tmp / "dogs", download=True))


def small_image(ctx: Context):
    from PIL import Image

    from fgvc_lib.config import resolve_config
    from fgvc_lib.engine.loaders import build_datasets

    root = ctx.folder_dataset(ctx.tmp / "data", ["a", "b"])
    Image.new("RGB", (1, 1)).save(root / "test" / "a" / "tiny.jpg")
    _, _, test, _ = build_datasets(resolve_config("baseline", "folder", "smoke",
                                                  data_root=str(root), image_size=32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(len(test)):
            test[i]
    messages = [str(w.message) for w in caught if w.category.__name__ == "SmallImageWarning"]
    assert len(messages) == 1
    return None, messages[0]


SCENARIOS: dict[str, Callable[[Context], tuple[int | None, str]]] = {
    "a second `fgvc train --out R` while a run uses `R`": second_run,
    "`--resume` after a run was killed (`kill -9`)": resume_after_kill,
    "`fgvc eval --run R --data-root D` where `D`'s classes differ from the run's": eval_other_classes,
    "`fgvc eval --run R` from another directory, for a run trained with `--data-root data`":
        eval_elsewhere,
    "a training loss that becomes NaN or infinite": non_finite_loss,
    "a corrupt image, also read by a DataLoader worker (`--workers 2`)": corrupt_image,
    "`--device tpu9`": bad_device,
    "`FGVC_PROFILE=bogus` in the environment": bad_profile_env,
    "a checkpoint that holds pickled Python objects": pickled_checkpoint,
    "`--out` under a file, or in a read-only folder": unwritable_out,
    "a run that fails before its first epoch is saved (here: `--data-root` missing)": early_failure,
    "`--epochs -1` (or `--lr nan`, `--batch-size 0`, ...)": bad_epochs,
    "a synthetic cache whose images were zero-filled or whose meta file is truncated": damaged_cache,
    "a dataset archive with a link, or a chain of links, pointing outside the data folder":
        unsafe_archive,
    "a Python whose `tarfile` lacks `filter=\"data\"` (before 3.11.4)": no_data_filter,
    "an archive already in the data folder that no known checksum can verify": unverifiable_archive,
    "a downloaded archive of the wrong size or checksum": wrong_archive,
    "an image smaller than the crop": small_image,
}


def test_every_row_has_a_scenario_and_every_scenario_a_row():
    assert [r.bad_input for r in readme_rows()] == list(SCENARIOS)


@pytest.mark.parametrize("row", readme_rows(), ids=lambda r: SCENARIOS.get(r.bad_input,
                                                                            str).__name__)
def test_the_row_holds(row, tmp_path, monkeypatch, capsys, folder_dataset):
    monkeypatch.setenv("FGVC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FGVC_PROFILE", raising=False)
    code, text = SCENARIOS[row.bad_input](Context(tmp_path, monkeypatch, capsys, folder_dataset))
    if row.code is not None:
        assert code == row.code, text
    if row.message is None:
        return
    assert fragment_pattern(row.message).search(text), (row.message, text)
    if row.message.startswith("fgvc: error:"):
        lines = text.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fgvc: error: "), lines
