"""The method registry (fgvc_lib.methods): building by name, and the options a record keeps."""
from __future__ import annotations

import json

import pytest
import torch

from fgvc_lib.engine.checkpoint import atomic_torch_save
from fgvc_lib.engine.trainer import load_trained_model
from fgvc_lib.errors import FGVCError
from fgvc_lib.methods import available_methods as available_models, build_model


@pytest.mark.parametrize("name", ["baseline", "cmal", "cross_x"])
def test_the_spec_names_every_option_defaults_included(name):
    model = build_model(name, num_classes=5, backbone="resnet18")
    spec = model.fgvc_spec
    assert spec["options"] == {}
    assert spec["resolved_options"], "defaults must be recorded"
    json.dumps(spec)  # it goes into results.json and checkpoints
    rebuilt = build_model(name, num_classes=5, backbone="resnet18", **spec["resolved_options"])
    assert rebuilt.fgvc_spec["resolved_options"] == spec["resolved_options"]


def test_given_options_win_over_defaults():
    spec = build_model("cross_x", 5, backbone="resnet18", data_loss="mixture", cl=False).fgvc_spec
    assert spec["options"] == {"data_loss": "mixture", "cl": False}
    assert spec["resolved_options"]["data_loss"] == "mixture"
    assert spec["resolved_options"]["cl"] is False and spec["resolved_options"]["c3s"] is True
    assert build_model("cmal", 5, backbone="resnet18").fgvc_spec["resolved_options"]["t"] == 0.5


def test_a_checkpoint_rebuilds_with_the_options_it_was_trained_with(tmp_path):
    # Trained when "mixture" was the default, so "options" is empty: the resolved options
    # must win, or today's default would silently replace the run's data term.
    model = build_model("cross_x", 5, backbone="resnet18", data_loss="mixture")
    spec = dict(model.fgvc_spec, options={})
    atomic_torch_save({"spec": spec, "model": model.state_dict()}, tmp_path / "checkpoint.pt")
    loaded = load_trained_model(tmp_path)
    assert loaded.data_loss == "mixture" and not loaded.training
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_unknown_method_and_option_name_the_fix():
    with pytest.raises(FGVCError, match="cmal"):
        build_model("cmall", 5)
    with pytest.raises(FGVCError, match="use only"):
        build_model("cmal", 5, backbone="resnet18", temperature=2.0)
    assert {"baseline", "cmal", "cross_x"} <= set(available_models())


def test_an_old_spec_without_resolved_options_reads_with_the_defaults_of_its_time():
    from fgvc_lib.methods import get_spec, recorded_options

    def default_options(name):
        return get_spec(name).default_options()

    old_cross_x = {"method": "cross_x", "options": {"cl": False}}
    options = recorded_options(old_cross_x)
    assert options["data_loss"] == "mixture", "Cross-X's default before commit cdb7100"
    assert options["cl"] is False and options["c3s"] is True
    assert set(options) == set(default_options("cross_x"))
    assert recorded_options({"method": "cross_x", "options": {"data_loss": "summed_logits"}})[
        "data_loss"] == "summed_logits", "a given option wins"
    assert options["merge_order"] == "eq5", "Cross-X's merge before it became FPN-ordered"
    # CMAL-Net drew its MDA input per image before the per-batch default, and ran every
    # step through the whole network before truncated steps.
    assert recorded_options({"method": "cmal", "options": {}}) == {
        **default_options("cmal"), "mda_draw": "sample", "truncated_steps": False}
    new = build_model("cross_x", 5, backbone="resnet18").fgvc_spec
    assert recorded_options(new) == new["resolved_options"]


def test_default_options_of_a_profile_are_what_a_run_of_that_profile_records():
    from fgvc_lib.config import resolve_config
    from fgvc_lib.methods import get_spec

    spec = get_spec("coarse2fine")
    transfer = spec.default_options("transfer")
    # the transfer profile shortens the up-sampler's pre-training (a scale setting) ...
    assert transfer["pretrain_pairs"] == 6000 and spec.default_options()["pretrain_pairs"] == 60000
    # ... and a run resolved under that profile without options records exactly these
    cfg = resolve_config("coarse2fine", "synthetic", "transfer")
    assert spec.make_options(cfg.method_options).to_dict() == transfer
    assert get_spec("baseline").default_options("transfer") == get_spec("baseline").default_options()
