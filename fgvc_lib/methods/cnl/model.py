"""CNL (Ye et al., ICIP 2020): a backbone with five non-local blocks or one cross-layer
non-local module, then global average pooling and a linear classifier.

Paper: "Associating Multi-scale Receptive Fields for Fine-grained Recognition".

* ``variant="nl"`` ("+5NL"): Eq. (1) after each of five blocks, two in res3 and three in
  res4 (ResNet ``layer2``/``layer3``), each block's output replaced by ``NL(output)``.
* ``variant="cnl"`` ("+5CNL"): the same five blocks are the responses of one module,
  Eq. (3), whose query is a res5 layer; its output replaces the query layer's output.
* Both start as their backbone: every block ends in a BatchNorm with weight and bias zero,
  so a fresh model computes exactly what the plain backbone computes.

How the blocks are wired: the backbone stays the library's :class:`~fgvc_lib.models.Backbone`
(its stages are still the modules that Grad-CAM and the CAM helpers hook). Forward hooks on
the chosen blocks record the responses and replace the query's (or an NL site's) output;
the hooks are small picklable objects that point at modules owned by the model, so the new
layers are not backbone parameters (they get the heads' learning rate and their BatchNorms
are not frozen by ``bn_policy="frozen"``), and the backbone's state-dict keys are unchanged.

Implementation notes
--------------------
Choices where the paper is open, and where the released code differs:

1. **f.** The paper says only "dot product". ``normalization="scaled_softmax"`` (default,
   ``softmax(theta^T phi / sqrt(d))`` over the response positions) is what the released
   code, which produced the paper's numbers, computes; it also makes each attention row a
   distribution, which Fig. 3 and the part-mass measure need. ``"softmax"`` drops the
   ``sqrt(d)``; ``"dot"`` is the non-local paper's dot-product form, ``theta^T phi / N_r``
   (signed weights; the rows need not sum to one).
2. **Residual of Eq. (2).** The query ``X^q`` (the paper prints ``X^l``, which in Eq. (1)
   is both inputs).
3. **Shared and per-response parts of Eq. (3).** ``theta`` and the 1x1 conv of ``z`` are
   shared, ``phi_i`` and ``g_i`` per response (Eq. (3)'s indices). The BatchNorm that ends
   ``z`` is per response by default (``output_bn="per_response"``, the released code), so
   each response's contribution has its own learnt scale; ``"shared"`` puts one BN on the
   summed output.
4. **Widths.** ``theta``, ``phi_i``, ``g_i`` map to ``d`` channels, ``z`` back to ``C^q``.
   ``d = 256`` for CNL (released code) and ``C/2`` for NL (non-local paper); with these,
   the parameter counts of Table 2 come out (27.1M and 31.3M on ResNet-50 with 200
   classes; a test checks). ``theta``, ``phi``, ``g`` have biases, ``z`` none (BN follows).
5. **Initialisation.** The new 1x1 convs keep PyTorch's default initialisation; the final
   BN weight and bias are zero (Sec. 3.1, after Goyal et al.). At that point only the BN
   affine parameters get a gradient; from the first update on, everything does.
6. **Placement, ResNet-50/101** (:data:`PLACEMENTS`; 0-based block indices). Two blocks in
   res3 and three in res4 at regular intervals: R-50 ``layer2.1, layer2.3, layer3.1,
   layer3.3, layer3.5`` (every other block, as in the non-local paper and the released
   code); R-101 ``layer2.1, layer2.3, layer3.5, layer3.12, layer3.19`` (every seventh
   block of the 23, the released code's choice). The query (``query="paper"``) is the last
   res5 block (``layer4.2``), as Sec. 3.1 says; ``query="released"`` takes ``layer4.0``,
   the first res5 block, as the authors' code does (the remaining res5 blocks then
   process the module's output). Both are 14 x 14 at 448 px.
7. **Placement, other backbones.** ResNet-18 has two blocks in each of res3 and res4, so
   it gets four sites (all four blocks); the chapter keeps the paper's row labels and says
   so. EfficientNet-Lite0: the stride-8 stage (``blocks.2.0``, ``blocks.2.1``) and every
   other block of the six at stride 16 (``blocks.3.1``, ``blocks.4.0``, ``blocks.4.2``);
   query ``"paper"`` is the last layer (``conv_head`` + BN, 1280 channels, read at ``bn2``),
   ``"released"`` the first stride-32 block (``blocks.5.0``). Another ResNet-style
   backbone gets every other block of ``layer2`` (2) and ``layer3`` (3), ending at each
   stage's last block.
8. **Head.** Global average pooling of the last stage and one linear layer (the
   baseline's head), so that ``+5NL``/``+5CNL`` differ from the baseline only by the
   blocks.
9. **Recipe** (``full`` profile, :data:`fgvc_lib.methods.cnl.CNL_RECIPE`): 448 px, 110
   epochs, 10 of warm-up (linear, the trainer's), batch 64, lr 0.01 with steps at epochs
   50, 70 and 90. The printed factor "0.9" is read as x0.1 (``gamma=0.1``): the released
   code steps by x0.1, and x0.9 three times would leave 73% of the lr, hardly a schedule.
   Not stated, chosen: SGD with momentum 0.9 and weight decay 1e-4 (released code), one
   learning rate for all parameters.
10. **Attention output.** ``ModelOutput.attention["r1"..."rn"]`` (``"nl1"...`` for NL):
    each response's attention averaged over the query positions, ``(B, h_r, w_r)`` (where
    the query layer looks, on the whole); ``"r_last"`` repeats the deepest. The full
    matrices are ``extras["attention"]`` (name -> ``(B, N_q, N_r)``), with
    ``extras["grids"]`` (name -> ``(h, w)`` of the response) and ``extras["query_grid"]``.
11. **Hooks and compilation.** ``torch._dynamo.explain`` traces the forward of a CNL model,
    hooks included, as one graph with no graph break (checked on ResNet-18 on the CPU), and
    ``torch.compile(backend="aot_eager")`` reproduces the eager logits and attention and
    trains; ``copy.deepcopy`` of a model copies its hooks along with the modules they call
    (a test relies on it).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.cnl.blocks import CrossLayerNonLocal, NonLocalBi
from fgvc_lib.methods.cnl.options import CNLOptions
from fgvc_lib.models.base import FGVCModel
from fgvc_lib.models.blocks import global_pool
from fgvc_lib.models.output import ModelOutput

#: Backbone -> (response/insertion blocks, shallow to deep; query "paper"; query "released").
PLACEMENTS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "resnet50": (("layer2.1", "layer2.3", "layer3.1", "layer3.3", "layer3.5"),
                 "layer4.2", "layer4.0"),
    "resnet101": (("layer2.1", "layer2.3", "layer3.5", "layer3.12", "layer3.19"),
                  "layer4.2", "layer4.0"),
    "resnet18": (("layer2.0", "layer2.1", "layer3.0", "layer3.1"), "layer4.1", "layer4.0"),
    "efficientnet_lite0": (("blocks.2.0", "blocks.2.1", "blocks.3.1", "blocks.4.0", "blocks.4.2"),
                           "bn2", "blocks.5.0"),
}

#: Embedding width of CNL when ``embed_channels`` is not given (released code).
CNL_EMBED = 256


def _every_other(n: int, m: int) -> list[int]:
    """``m`` block indices of a stage of ``n`` blocks at regular intervals, ending at the last."""
    m = min(m, n)
    step = max(1, n // m)
    return [n - 1 - step * (m - 1 - k) for k in range(m)]


def placement(backbone, query: str = "paper") -> tuple[tuple[str, ...], str]:
    """The default (responses, query block) of a :class:`~fgvc_lib.models.Backbone`."""
    if backbone.name in PLACEMENTS:
        responses, paper, released = PLACEMENTS[backbone.name]
        return responses, paper if query == "paper" else released
    body = backbone.body
    if all(hasattr(body, f"layer{k}") for k in (2, 3, 4)):
        responses = tuple(f"layer{stage}.{i}" for stage, m in ((2, 2), (3, 3))
                          for i in _every_other(len(getattr(body, f"layer{stage}")), m))
        last = len(body.layer4) - 1
        return responses, f"layer4.{last}" if query == "paper" else "layer4.0"
    raise FGVCError(f"CNL has no default placement for backbone {backbone.name!r}",
                    'pass responses=[...] (module names inside backbone.body), or use '
                    f"one of: {', '.join(PLACEMENTS)}")


def _out_shapes(backbone: nn.Module, body: nn.Module, names: list[str]) -> dict[str, tuple]:
    """Output shapes of the named submodules of ``body`` in one dry run of ``backbone`` on a
    64-px image."""
    module, x = backbone, torch.zeros(1, 3, 64, 64)
    shapes: dict[str, tuple] = {}
    was_training = module.training
    module.eval()  # a dry run must not move the BatchNorm running statistics
    handles = [body.get_submodule(n).register_forward_hook(
        lambda _m, _a, out, n=n: shapes.__setitem__(n, tuple(out.shape))) for n in names]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return shapes


class _Record:
    """Forward hook: keep a block's output as response ``index`` (the output is unchanged)."""

    def __init__(self, store: dict, index: int) -> None:
        self.store, self.index = store, index

    def __call__(self, module, args, output):
        self.store[self.index] = output


class _ApplyCNL:
    """Forward hook on the query block: its output becomes ``CNL(output, responses)``."""

    def __init__(self, cnl: CrossLayerNonLocal, store: dict, attention: dict) -> None:
        self.cnl, self.store, self.attention = cnl, store, attention

    def __call__(self, module, args, output):
        n = self.cnl.num_responses
        missing = [i for i in range(n) if i not in self.store]
        if missing:  # pragma: no cover - the build checks the order
            raise RuntimeError(f"CNL query ran before responses {missing}")
        responses = [self.store.pop(i) for i in range(n)]
        out, attentions = self.cnl(output, responses)
        for i, (a, r) in enumerate(zip(attentions, responses), start=1):
            self.attention[f"r{i}"] = (a, tuple(r.shape[-2:]))
        self.attention["query_grid"] = tuple(output.shape[-2:])
        return out


class _ApplyNL:
    """Forward hook on an insertion block: its output becomes ``NL(output)``, Eq. (1)."""

    def __init__(self, nl: NonLocalBi, attention: dict, name: str) -> None:
        self.nl, self.attention, self.name = nl, attention, name

    def __call__(self, module, args, output):
        out, a = self.nl(output)
        self.attention[self.name] = (a, tuple(output.shape[-2:]))
        return out


class CNLNet(FGVCModel):
    """Backbone + ("+5NL" | "+5CNL") + global average pooling + linear classifier.

    Attributes
    ----------
    response_blocks: the module names (inside ``backbone.body``) of the responses (CNL) or
        insertion sites (NL), shallow to deep.
    query_block: the CNL query's module name (``None`` for NL).
    cnl: the :class:`CrossLayerNonLocal` module (CNL), or ``nl``: one
        :class:`NonLocalBi` per site (NL).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", pretrained: bool = False,
                 weights: str | None = None, options: CNLOptions = CNLOptions()) -> None:
        super().__init__(num_classes, backbone, pretrained, weights)
        self.options = options
        body = self.backbone.body
        default_responses, query = placement(self.backbone, options.query)
        responses = tuple(options.responses) if options.responses is not None else default_responses
        order = [n for n, _ in body.named_modules()]
        unknown = [r for r in (*responses, query) if r not in order]
        if unknown:
            raise FGVCError(f"cnl: backbone {backbone} has no layer(s) {unknown}",
                            "name blocks inside backbone.body, e.g. layer2.1 (ResNet) or "
                            "blocks.2.0 (EfficientNet)")
        responses = tuple(sorted(responses, key=order.index))  # shallow to deep
        self.response_blocks = list(responses)
        self.variant = options.variant
        # Channels and grids of every site, from one dry run at a small size (the
        # backbone is still plain here).
        probe = _out_shapes(self.backbone, body, [*responses, query])
        self._attention: dict = {}
        self._store: dict = {}
        if options.variant == "cnl":
            if order.index(query) <= order.index(responses[-1]):
                raise FGVCError(f"cnl: the query {query} does not come after the response "
                                f"{responses[-1]}", "choose responses shallower than the query")
            self.query_block: str | None = query
            self.cnl = CrossLayerNonLocal(
                probe[query][1], [probe[r][1] for r in responses],
                embed_channels=options.embed_channels or CNL_EMBED,
                normalization=options.normalization, output_bn=options.output_bn)
            for i, name in enumerate(responses):
                body.get_submodule(name).register_forward_hook(_Record(self._store, i))
            body.get_submodule(query).register_forward_hook(
                _ApplyCNL(self.cnl, self._store, self._attention))
        else:
            self.query_block = None
            self.nl = nn.ModuleList(
                NonLocalBi(probe[r][1], embed_channels=options.embed_channels,
                           normalization=options.normalization) for r in responses)
            for i, (name, block) in enumerate(zip(responses, self.nl), start=1):
                body.get_submodule(name).register_forward_hook(
                    _ApplyNL(block, self._attention, f"nl{i}"))
        self.classifier = nn.Linear(self.backbone.channels[-1], num_classes)

    def added_modules(self) -> nn.Module:
        """The layers this method adds to the backbone (for parameter and cost counts)."""
        return self.cnl if self.variant == "cnl" else self.nl

    def forward(self, x: torch.Tensor) -> ModelOutput:
        self._store.clear()
        self._attention.clear()
        feat = self.backbone(x)[-1]
        logits = self.classifier(global_pool(feat, "avg").flatten(1))
        found = dict(self._attention)
        self._attention.clear()
        query_grid = found.pop("query_grid", None)
        matrices = {name: a for name, (a, _) in found.items()}
        grids = {name: grid for name, (_, grid) in found.items()}
        maps = {name: a.mean(1).reshape(a.shape[0], *grids[name]) for name, a in matrices.items()}
        if maps:
            maps["r_last" if self.variant == "cnl" else "nl_last"] = maps[list(matrices)[-1]]
        return ModelOutput(logits=logits, heads={"fc": logits}, attention=maps,
                           extras={"attention": matrices, "grids": grids,
                                   "query_grid": query_grid,
                                   "blocks": dict(zip(matrices, self.response_blocks))})


__all__ = ["CNLNet", "CNL_EMBED", "PLACEMENTS", "placement"]
