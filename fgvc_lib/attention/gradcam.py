"""Gradient-based class activation maps for any registered model.

Every model returns a :class:`~fgvc_lib.models.output.ModelOutput`, while
pytorch-grad-cam expects ``model(x)`` to be one ``(B, K)`` tensor;
:class:`HeadSelector` bridges the two. :func:`compute_cam` then runs
Grad-CAM, Grad-CAM++, LayerCAM or FinerCAM on one named target layer
(``model.cam_layers()``: ``stage2`` .. ``stage5``, deepest last) and returns
maps at input resolution in [0, 1]. :func:`model_attention` gives the maps
a method computes itself (``ModelOutput.attention``, e.g. CMAL-Net's
Eq. (4) CAMs) at the same resolution and scale, so both kinds plot and
score alike.

Implementation notes
--------------------
* pytorch-grad-cam runs in float32 with autocast switched off: its resize
  and SVD steps break in float16 / bfloat16. A model holding non-float32
  weights is copied to float32 for the CAM; the original is not touched.
* The model is put in eval mode for the CAM and every module gets its own
  previous mode back afterwards (a frozen BatchNorm in a training model
  stays frozen).
* Parameters are made not to require grad during the CAM and the input is
  made to require it instead: the gradients reach the target layer even
  when the backbone is frozen, no parameter gradient is computed, and the
  ``.grad`` the user had accumulated is restored unchanged (pytorch-grad-cam
  calls ``model.zero_grad()``).
* The library's context-manager ``__exit__`` swallows IndexError and only
  prints it; we do not use the context manager, release its hooks in a
  ``finally`` and turn every failure into an :class:`FGVCError` that names
  the layer. A layer that the forward never ran, or ran more than once
  (a model whose forward makes several backbone passes, e.g. CMAL-Net's
  raw + A_oval inference), is refused rather than giving a CAM that mixes
  passes; pass ``forward=`` a one-pass forward instead.
* No gradient at the layer, any NaN, or an all-zero batch is an error,
  each with its own message: the first two mean a misconfiguration; the
  last happens when Grad-CAM's clipping of negative evidence leaves
  nothing in any image (seen on untrained models with 2 x 2 maps), where
  LayerCAM or a shallower layer still gives a map. One all-zero image
  among others is returned as it is.
* FinerCAM (pytorch-grad-cam >= 1.5.5) contrasts the target class with
  the three classes whose logits are closest to it; we build those
  comparison targets ourselves so that explicit ``targets`` work too.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from fgvc_lib.errors import FGVCError, unknown_name_error
from fgvc_lib.models.blocks.cam import minmax_normalize, upsample_maps
from fgvc_lib.models.output import ModelOutput

#: Method names accepted by :func:`compute_cam` -> pytorch-grad-cam class name.
CAM_METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "layercam": "LayerCAM",
    "finercam": "FinerCAM",
}

#: How many most-similar classes FinerCAM contrasts the target class with.
FINERCAM_COMPARISONS = 3

TargetSpec = int | Sequence[int] | np.ndarray | torch.Tensor | None


class HeadSelector(nn.Module):
    """``x -> (B, K)`` logits of one head of a model that returns :class:`ModelOutput`.

    Parameters
    ----------
    model: any registered model.
    head: a name in ``ModelOutput.heads``; ``None`` or ``"final"`` selects
        the final prediction ``ModelOutput.logits``.
    forward: optional callable used instead of ``model(x)``, e.g. a
        method's raw-input-only forward when its full forward runs the
        backbone more than once.
    """

    def __init__(self, model: nn.Module, head: str | None = None,
                 forward: Callable[[torch.Tensor], ModelOutput] | None = None) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.forward_fn = forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward_fn(x) if self.forward_fn is not None else self.model(x)
        if isinstance(out, ModelOutput):
            return out.head(self.head)
        if isinstance(out, torch.Tensor) and self.head in (None, "final"):
            return out
        raise FGVCError(f"the model returned {type(out).__name__}, not a ModelOutput with head "
                        f"{self.head!r}",
                        "use a model built with fgvc_lib.build_model (or a forward returning ModelOutput)")


def resolve_cam_layer(model: nn.Module, layer: str | nn.Module | None) -> tuple[str, nn.Module]:
    """The ``(name, module)`` a CAM targets: ``None`` is the deepest of
    ``model.cam_layers()``; a string is a ``cam_layers()`` name or a
    submodule path; a module must belong to ``model``."""
    cam_layers: dict[str, nn.Module] = model.cam_layers() if hasattr(model, "cam_layers") else {}
    if layer is None:
        if not cam_layers:
            raise FGVCError(f"{type(model).__name__} names no CAM target layers",
                            "pass layer= (a submodule name or the module itself)")
        name = list(cam_layers)[-1]
        return name, cam_layers[name]
    if isinstance(layer, str):
        if layer in cam_layers:
            return layer, cam_layers[layer]
        try:
            return layer, model.get_submodule(layer)
        except AttributeError:
            raise unknown_name_error("CAM layer", layer, list(cam_layers)) from None
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name or "<model>", module
        raise FGVCError(f"the CAM target layer {type(layer).__name__} is not a submodule of the model",
                        f"pick one of model.cam_layers(): {', '.join(cam_layers)}")
    raise FGVCError(f"layer must be a name or an nn.Module, got {type(layer).__name__}",
                    f"use one of: {', '.join(cam_layers)}")


def compute_cam(model: nn.Module, images: torch.Tensor, method: str = "gradcam",
                layer: str | nn.Module | None = None, targets: TargetSpec = None,
                head: str | None = None,
                forward: Callable[[torch.Tensor], ModelOutput] | None = None) -> np.ndarray:
    """Class activation maps of ``images`` at input resolution.

    Parameters
    ----------
    model: a registered model (``ModelOutput`` forward).
    images: normalised input batch ``(B, 3, H, W)`` (or one ``(3, H, W)`` image).
    method: ``"gradcam"``, ``"gradcam++"``, ``"layercam"`` or ``"finercam"``.
    layer: target layer: a ``model.cam_layers()`` name (``"stage2"`` ..
        ``"stage5"``), a submodule path, or the module; default the deepest.
    targets: class index per image (an int applies to all); ``None`` uses
        the predicted class of the chosen head.
    head: which head's logits the CAM explains (``None``: final logits).
    forward: optional one-pass forward to use instead of ``model(x)``
        (see :class:`HeadSelector`).

    Returns
    -------
    ``float32`` array ``(B, H, W)`` in [0, 1], one map per image.
    """
    if method not in CAM_METHODS:
        raise unknown_name_error("CAM method", method, list(CAM_METHODS))
    try:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget, FinerWeightedTarget
    except ImportError as exc:
        raise FGVCError("pytorch-grad-cam is not installed",
                        "pip install 'grad-cam>=1.5' (or the project's [cam] extra)") from exc
    cam_class = getattr(pytorch_grad_cam, CAM_METHODS[method], None)
    if cam_class is None:
        raise FGVCError(f"this pytorch-grad-cam version has no {CAM_METHODS[method]}",
                        "pip install 'grad-cam>=1.5.5' or choose method='gradcam'")
    if not isinstance(images, torch.Tensor) or images.ndim not in (3, 4):
        raise FGVCError(f"images must be a (B, 3, H, W) tensor, got "
                        f"{getattr(images, 'shape', type(images).__name__)}",
                        "pass the normalised input batch the model is fed")
    if images.ndim == 3:
        images = images.unsqueeze(0)

    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper: hooks need the real module
    layer_name, target_layer = resolve_cam_layer(model, layer)
    work_model, target_layer, forward = _float32_model(model, target_layer, layer_name, forward)
    device = next(work_model.parameters()).device
    x = images.detach().to(device=device, dtype=torch.float32).clone().requires_grad_(True)

    modes = {m: m.training for m in work_model.modules()}
    grad_state = [(p, p.requires_grad, p.grad) for p in work_model.parameters()]
    selector = HeadSelector(work_model, head, forward)
    failure: Exception | None = None
    result = None
    n_activations = n_gradients = 0
    gradient_reached = False
    try:
        for p, _, _ in grad_state:
            p.requires_grad_(False)
        work_model.eval()
        with torch.enable_grad(), _no_autocast(device):
            logits = None
            if method == "finercam":
                with torch.no_grad():
                    logits = selector(x).float()
            num_classes = logits.shape[1] if logits is not None else getattr(model, "num_classes", None)
            classes = _target_classes(targets, x.shape[0], num_classes, logits)
            if classes is None:
                cam_targets = None  # grad-cam explains each image's predicted class
            elif method == "finercam":
                cam_targets = _finer_targets(logits, classes, FinerWeightedTarget)
            else:
                cam_targets = [ClassifierOutputTarget(c) for c in classes]
            cam = cam_class(model=selector, target_layers=[target_layer])
            hooks = cam.base_cam.activations_and_grads if method == "finercam" else cam.activations_and_grads
            try:
                result = cam(input_tensor=x, targets=cam_targets)
            except FGVCError:
                raise
            except Exception as exc:  # noqa: BLE001 - re-raised below with the layer named
                failure = exc
            finally:
                n_activations, n_gradients = len(hooks.activations), len(hooks.gradients)
                gradient_reached = any(bool((g != 0).any()) for g in hooks.gradients)
                hooks.release()
    finally:
        for p, requires_grad, grad in grad_state:
            p.requires_grad_(requires_grad)
            p.grad = grad
        for module, training in modes.items():
            module.training = training

    fix = f"choose a layer the forward runs once, e.g. one of: {', '.join(model.cam_layers())}" \
        if hasattr(model, "cam_layers") else "choose another target layer"
    if n_activations == 0:
        raise FGVCError(f"CAM target layer {layer_name!r} was never run by the model's forward", fix)
    if n_activations > 1:
        raise FGVCError(f"CAM target layer {layer_name!r} ran {n_activations} times in one forward "
                        "(the forward makes several passes), so its CAM would mix them",
                        "pass forward= a one-pass forward, or switch the second pass off "
                        "(CMAL-Net: model.test_on_oval = False)")
    if n_gradients == 0 or (failure is None and not gradient_reached):
        raise FGVCError(f"no gradient reached CAM target layer {layer_name!r} from head "
                        f"{head or 'final'!r}", f"check that the head depends on the layer; {fix}")
    if failure is not None:
        raise FGVCError(f"{method} on layer {layer_name!r} failed: "
                        f"{type(failure).__name__}: {failure}", fix) from failure
    maps = np.asarray(result, dtype=np.float32)
    if not np.isfinite(maps).all():
        raise FGVCError(f"{method} on layer {layer_name!r} gave NaN / inf values",
                        "check the model's output for NaN (e.g. load a checkpoint that trained stably)")
    if not maps.any():
        raise FGVCError(f"{method} on layer {layer_name!r} is all zeros for every image: the layer "
                        "holds only negative evidence for the explained classes (common for an "
                        "untrained model or a map of a few pixels)",
                        "use method='layercam', a shallower layer, or other targets")
    return np.clip(maps, 0.0, 1.0)


def attention_from_output(output: ModelOutput, name: str,
                          size: int | tuple[int, int]) -> np.ndarray:
    """Map ``name`` of ``output.attention`` up-sampled to ``size`` (bilinear,
    CMAL-Net after Eq. (4)) and min-max normalised per image (Eq. (5))."""
    if name not in output.attention:
        raise unknown_name_error("attention map", name, list(output.attention))
    maps = output.attention[name].detach().float()
    if maps.ndim != 3:
        raise FGVCError(f"attention map {name!r} has shape {tuple(maps.shape)}, expected (B, h, w)",
                        "return attention maps as (B, h, w) tensors from the model's forward")
    return minmax_normalize(upsample_maps(maps, size)).cpu().numpy()


def model_attention(model: nn.Module, images: torch.Tensor, name: str,
                    size: int | tuple[int, int] | None = None) -> np.ndarray:
    """The model's own attention map ``name`` for ``images`` as ``(B, H, W)`` in [0, 1].

    Runs one eval-mode forward without gradients (the modes are restored);
    ``size`` defaults to the input's ``(H, W)``.
    """
    if images.ndim == 3:
        images = images.unsqueeze(0)
    size = size or (images.shape[-2], images.shape[-1])
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            output = model(images.to(device))
    finally:
        for module, training in modes.items():
            module.training = training
    return attention_from_output(output, name, size)


# -- helpers -------------------------------------------------------------------
def _no_autocast(device: torch.device):
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # pragma: no cover - a device type without autocast support
        import contextlib

        return contextlib.nullcontext()


def _float32_model(model: nn.Module, layer: nn.Module, layer_name: str,
                   forward: Callable | None) -> tuple[nn.Module, nn.Module, Callable | None]:
    """``model`` itself if all its floating tensors are float32, else a float32 copy
    (with the target layer and a bound ``forward`` mapped onto the copy)."""
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.dtype == torch.float32 for t in tensors if t.is_floating_point()):
        return model, layer, forward
    names = {id(m): n for n, m in model.named_modules()}
    copy_model = copy.deepcopy(model).float()
    copy_layer = copy_model.get_submodule(names[id(layer)]) if names[id(layer)] else copy_model
    if forward is not None and getattr(forward, "__self__", None) is model:
        forward = getattr(copy_model, forward.__name__)
    elif forward is not None:
        raise FGVCError(f"the model holds non-float32 weights and forward= is not one of its methods, "
                        f"so the CAM for layer {layer_name!r} cannot run in float32",
                        "call model.float() first, or pass forward= as a bound method of the model")
    return copy_model, copy_layer, forward


def _target_classes(targets: TargetSpec, batch: int, num_classes: int | None,
                    logits: torch.Tensor | None) -> list[int] | None:
    """One class index per image; ``None`` means "predicted" (left to grad-cam
    unless ``logits`` are at hand, as for FinerCAM)."""
    if targets is None:
        return None if logits is None else logits.argmax(1).tolist()
    if isinstance(targets, (int, np.integer)):
        classes = [int(targets)] * batch
    else:
        classes = [int(c) for c in np.asarray(
            targets.detach().cpu() if isinstance(targets, torch.Tensor) else targets).reshape(-1)]
    if len(classes) != batch:
        raise FGVCError(f"got {len(classes)} CAM targets for {batch} images",
                        "pass one class index per image, one int for all, or None (predicted)")
    if num_classes is not None:
        bad = [c for c in classes if not 0 <= c < num_classes]
        if bad:
            raise FGVCError(f"CAM target classes {bad} are outside 0..{num_classes - 1}",
                            "pass class indices of the model's head")
    return classes


def _finer_targets(logits: torch.Tensor, classes: list[int], target_cls: type) -> list:
    """FinerCAM targets: the class against its closest-scoring rivals."""
    chosen = logits.gather(1, torch.tensor(classes, device=logits.device)[:, None])
    distance = (logits - chosen).abs()
    distance.scatter_(1, torch.tensor(classes, device=logits.device)[:, None], float("inf"))
    n = min(FINERCAM_COMPARISONS, logits.shape[1] - 1)
    rivals = distance.topk(n, dim=1, largest=False).indices.tolist()
    return [target_cls(c, r, 1.0) for c, r in zip(classes, rivals)]
