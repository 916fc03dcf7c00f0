"""The chapters' set-up: one call instead of a configuration cell per notebook.

::

    from fgvc_lib.notebook import setup

    session = setup()                     # profile, dataset, device, result folders
    cfg = session.config(method)          # resolve_config for this session
    record = session.train_or_load(cfg)   # a RunRecord, under results/<profile>/<method>/<dataset>
    normalize = session.normalizer(model) # what the model's backbone expects, on the device

:func:`setup` reads the profile (``$FGVC_PROFILE``, else ``smoke``), the data
(``$FGVC_DATASET``, else ``synthetic``; ``$FGVC_DATA_ROOT``), picks the
device, seeds torch, shows figures inline when it runs in a Jupyter kernel
(no ``%matplotlib inline`` needed) and prints one line saying all that.

Implementation notes
--------------------
* The result folders are found from the repository, not from the working
  directory: the first folder at or above the current one that holds
  ``pyproject.toml`` and ``fgvc_lib/`` (a notebook runs in ``notebooks/``),
  else the checkout this library was imported from, else the current
  folder. ``results/<profile>`` holds this profile's runs (not committed for
  ``smoke``), ``results/gpu`` the recorded GPU runs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATASET_ENV = "FGVC_DATASET"
DATA_ROOT_ENV = "FGVC_DATA_ROOT"


def _is_checkout(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "fgvc_lib").is_dir()


def repository_root(start: str | Path | None = None) -> Path:
    """The repository holding the notebooks and ``results/`` (see the module notes)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_checkout(folder):
            return folder
    package_checkout = Path(__file__).resolve().parents[1]
    return package_checkout if _is_checkout(package_checkout) else here


@dataclass(frozen=True)
class Session:
    """What every chapter needs: the profile, the data, the device and the result folders."""

    profile: str
    dataset: str
    data_root: str | None
    device: str
    seed: int
    root: Path

    @property
    def results_root(self) -> Path:
        """``<repository>/results``: every recorded run."""
        return self.root / "results"

    @property
    def results(self) -> Path:
        """``results/<profile>``: this profile's runs."""
        return self.results_root / self.profile

    @property
    def gpu_results(self) -> Path:
        """``results/gpu``: the runs recorded on a GPU (committed)."""
        return self.results_root / "gpu"

    @property
    def data_label(self) -> str:
        """How captions name the data (``synthetic data`` or the dataset's name)."""
        return "synthetic data" if self.dataset == "synthetic" else self.dataset

    def config(self, method: str, **overrides: Any):
        """:func:`fgvc_lib.config.resolve_config` of ``method`` for this session's
        data and profile; ``overrides`` win (``epochs=2``, ``method_options={...}``)."""
        from fgvc_lib.config import resolve_config

        overrides.setdefault("data_root", self.data_root)
        return resolve_config(method, self.dataset, self.profile, **overrides)

    def normalizer(self, model):
        """The :class:`~fgvc_lib.data.transforms.DeviceNormalize` that ``model``'s backbone
        expects (its weights' mean and std), on this session's device."""
        from fgvc_lib.data.transforms import DeviceNormalize
        from fgvc_lib.models.backbones import input_normalization

        return DeviceNormalize(*input_normalization(model)).to(self.device)

    def run_dir(self, method: str) -> Path:
        """Where the chapters keep the default run of ``method``: ``results/<profile>/<method>/<dataset>``."""
        return self.results / method / self.dataset

    def train_or_load(self, cfg, out_dir: str | Path | None = None, **kwargs: Any):
        """:func:`fgvc_lib.engine.train_or_load` on this session's device, as a
        :class:`~fgvc_lib.reports.records.RunRecord`; ``out_dir`` defaults to
        :meth:`run_dir` of the config's method."""
        from fgvc_lib.engine import train_or_load
        from fgvc_lib.reports.records import RunRecord

        out_dir = Path(out_dir) if out_dir is not None else self.run_dir(cfg.method)
        kwargs.setdefault("device", self.device)
        return RunRecord.from_dict(train_or_load(cfg, out_dir, **kwargs))

    def describe(self) -> str:
        root = self.results_root.parent
        try:
            shown = self.results.relative_to(root)
        except ValueError:  # pragma: no cover - results always lie under the root
            shown = self.results
        return (f"profile={self.profile} dataset={self.dataset} device={self.device} "
                f"seed={self.seed} results={shown}")


def _show_figures_inline() -> None:
    """In a Jupyter kernel, what ``%matplotlib inline`` does; elsewhere nothing."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        shell.run_line_magic("matplotlib", "inline")


#: Font sizes (points) for the chapters' figures. Draw figures at most
#: ``TEXT_WIDTH_IN`` inches wide, so that a point on the figure is a point on the
#: page: wider figures are scaled down to the text column.
READABLE_FONTS = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10,
                  "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
                  "figure.titlesize": 11}
TEXT_WIDTH_IN = 7.2


def _readable_figures() -> None:
    """Fonts of at least 9 pt and a perceptual default colormap for the chapters' figures."""
    import matplotlib

    matplotlib.rcParams.update({**READABLE_FONTS, "image.cmap": "viridis"})


def _text_progress_in_kernels() -> None:
    """In a Jupyter kernel, training prints one line per epoch and draws no tqdm bars:
    a notebook bar is a widget, and a closed one leaves blank rows in the static book.
    ``FGVC_PROGRESS_BARS=1`` in the environment brings the bars back."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from fgvc_lib.engine.trainer import PROGRESS_BARS_ENV

        os.environ.setdefault(PROGRESS_BARS_ENV, "0")


def setup(seed: int = 0, profile: str | None = None, dataset: str | None = None,
          data_root: str | None = None, device: str | None = None,
          verbose: bool = True) -> Session:
    """The chapters' first call: see the module docstring. Arguments left ``None``
    come from the environment (``$FGVC_PROFILE``, ``$FGVC_DATASET``,
    ``$FGVC_DATA_ROOT``) or the defaults (``smoke``, ``synthetic``, CUDA if available)."""
    import torch

    from fgvc_lib.config import current_profile

    session = Session(
        profile=current_profile(profile),
        dataset=dataset or os.environ.get(DATASET_ENV) or "synthetic",
        data_root=data_root or os.environ.get(DATA_ROOT_ENV) or None,
        device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
        seed=seed, root=repository_root())
    torch.manual_seed(seed)
    _show_figures_inline()
    _text_progress_in_kernels()
    _readable_figures()
    if verbose:
        print(session.describe())
    return session


__all__ = ["READABLE_FONTS", "Session", "TEXT_WIDTH_IN", "repository_root", "setup"]
