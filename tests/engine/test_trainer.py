"""The training loop: records, exact resume, checkpoints, schedules."""
from __future__ import annotations

import json
import math
import re

import pytest
import torch

from fgvc_lib.config import TrainConfig
from fgvc_lib.engine.checkpoint import atomic_torch_save, load_checkpoint
from fgvc_lib.engine.trainer import CHECKPOINT, Trainer, lr_factor, train, train_or_load
from fgvc_lib.errors import FGVCError


def _weights(run_dir):
    return load_checkpoint(run_dir / CHECKPOINT)["model"]


def test_run_writes_record_with_provenance(tmp_path, tiny_cfg):
    rec = train(tiny_cfg(epochs=2), tmp_path / "run", progress=False)
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["status"] == "finished"
    for key in ("git", "device", "versions", "started", "finished", "profile"):
        assert key in on_disk["provenance"], key
    assert on_disk["config"]["dataset"] == "synthetic" and on_disk["dataset"]["synthetic"] is True
    assert len(on_disk["history"]) == 2
    test = rec["metrics"]["test"]["final"]
    assert set(test) >= {"top1", "top5", "mean_class", "n"}
    assert test["n"] == 4 * 4
    # model selection used the validation split, recorded separately from the test metrics
    assert "test_best_val" in rec["metrics"] and rec["best"]["epoch"] >= 1


def test_resume_equals_uninterrupted_bit_exact(tmp_path, tiny_cfg):
    cfg = tiny_cfg(epochs=3)
    full = train(cfg, tmp_path / "full", progress=False)

    interrupted = Trainer(cfg, tmp_path / "resumed", progress=False)
    rec = interrupted.fit(stop_after_epoch=0)  # as if killed after the first epoch's checkpoint
    assert rec["status"] == "interrupted"
    resumed = train(cfg, tmp_path / "resumed", resume=True, progress=False)

    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert full["metrics"]["test"] == resumed["metrics"]["test"]
    assert [h["train"] for h in full["history"]] == [h["train"] for h in resumed["history"]]


def test_existing_run_needs_resume_flag(tmp_path, tiny_cfg):
    cfg = tiny_cfg(epochs=1)
    train(cfg, tmp_path / "run", progress=False)
    with pytest.raises(FGVCError, match="--resume"):
        Trainer(cfg, tmp_path / "run", progress=False)


def test_resume_refuses_other_class_count(tmp_path, tiny_cfg):
    train(tiny_cfg(epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(FGVCError, match="4 classes but the dataset has 5"):
        train(tiny_cfg(epochs=2, synthetic_classes=5), tmp_path / "run", resume=True, progress=False)


def test_unwritable_output_folder(tmp_path, tiny_cfg):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(FGVCError, match="cannot write to output folder"):
        Trainer(tiny_cfg(), blocker / "run", progress=False)


def test_train_or_load_reuses_finished_run(tmp_path, tiny_cfg):
    cfg = tiny_cfg(epochs=1)
    first = train_or_load(cfg, tmp_path / "run", progress=False)
    stamp = (tmp_path / "run" / "results.json").stat().st_mtime_ns
    again = train_or_load(cfg, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "results.json").stat().st_mtime_ns == stamp
    assert again["metrics"] == json.loads(json.dumps(first["metrics"]))


def test_atomic_save_keeps_previous_checkpoint_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    atomic_torch_save({"model": {"w": torch.ones(2)}, "spec": {}}, path)

    def broken_save(obj, fh):
        fh.write(b"partial bytes")
        raise KeyboardInterrupt  # a kill in the middle of writing

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"model": {"w": torch.zeros(2)}, "spec": {}}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(FGVCError, match="corrupt or not an fgvc checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("scheduler,expected", [
    ("cosine", [1.0, 0.5, 0.0]),  # factor at epochs 0, 5, 10 of 10 (cosine to zero)
    ("multistep", [1.0, 0.1, 0.01]),
])
def test_lr_schedules(scheduler, expected):
    cfg = TrainConfig(epochs=10, scheduler=scheduler, milestones=[5, 10], gamma=0.1)
    got = [lr_factor(cfg, e) for e in (0, 5, 10)]
    assert got == pytest.approx(expected, abs=1e-12)


def test_warmup_ramps_linearly():
    cfg = TrainConfig(epochs=10, scheduler="constant", warmup_epochs=3)
    assert [lr_factor(cfg, e) for e in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])


def test_resume_refuses_a_changed_config(tmp_path, tiny_cfg):
    Trainer(tiny_cfg(epochs=2), tmp_path / "run", progress=False).fit(stop_after_epoch=0)
    with pytest.raises(FGVCError, match=r"different config \(lr\)"):
        train(tiny_cfg(epochs=2, lr=0.01), tmp_path / "run", resume=True, progress=False)


def test_train_or_load_replaces_a_run_whose_config_changed(tmp_path, tiny_cfg):
    train_or_load(tiny_cfg(epochs=1), tmp_path / "run", progress=False)
    rec = train_or_load(tiny_cfg(epochs=1, lr=0.01), tmp_path / "run", progress=False)
    assert rec["config"]["lr"] == 0.01 and rec["status"] == "finished"


def _as_if_made_when_pooling_defaulted_to_max(path):
    # Rewrite a record or checkpoint as a run made under another library default.
    if path.suffix == ".json":
        rec = json.loads(path.read_text())
        rec["spec"]["resolved_options"]["pooling"] = "max"
        path.write_text(json.dumps(rec))
    else:
        ckpt = load_checkpoint(path)
        ckpt["spec"]["resolved_options"]["pooling"] = "max"
        atomic_torch_save(ckpt, path)


def test_train_or_load_retrains_when_a_library_default_changed(tmp_path, tiny_cfg, capsys):
    # Same config, but the run's model used another default: loading it would present an
    # old model as today's.
    train_or_load(tiny_cfg(epochs=1), tmp_path / "run", progress=False)
    _as_if_made_when_pooling_defaulted_to_max(tmp_path / "run" / "results.json")
    rec = train_or_load(tiny_cfg(epochs=1), tmp_path / "run", progress=True)
    assert "default pooling: 'max' -> 'avg'" in capsys.readouterr().out
    assert rec["spec"]["resolved_options"]["pooling"] == "avg" and rec["status"] == "finished"
    assert train_or_load(tiny_cfg(epochs=1), tmp_path / "run", progress=False)["provenance"] \
        == rec["provenance"], "an up-to-date run is reused"


def test_resume_refuses_a_checkpoint_made_under_another_default(tmp_path, tiny_cfg):
    Trainer(tiny_cfg(epochs=2), tmp_path / "run", progress=False).fit(stop_after_epoch=0)
    _as_if_made_when_pooling_defaulted_to_max(tmp_path / "run" / CHECKPOINT)
    with pytest.raises(FGVCError, match=r"default pooling: .max. -> .avg.*fix: .*--opt"):
        train(tiny_cfg(epochs=2), tmp_path / "run", resume=True, progress=False)


def test_default_changes_reads_old_cross_x_records_as_mixture():
    # Records made before resolved_options existed ran Cross-X with the mixture data term.
    from fgvc_lib.config import resolve_config
    from fgvc_lib.engine.trainer import default_changes

    cfg = resolve_config("cross_x", "synthetic", "smoke")
    # ... and the merge as Eq. (5) is printed (merge_order="eq5", the default before "fpn").
    assert default_changes({"method": "cross_x", "options": {}}, cfg) == [
        "data_loss: 'mixture' -> 'per_branch'", "merge_order: 'eq5' -> 'fpn'"]
    assert default_changes({"method": "cross_x", "options": {"data_loss": "per_branch",
                                                             "merge_order": "fpn"}}, cfg) == []
    named = resolve_config("cross_x", "synthetic", "smoke",
                           method_options={"data_loss": "mixture", "merge_order": "eq5"})
    assert default_changes({"method": "cross_x", "options": {}}, named) == []
    assert default_changes({"method": "baseline", "options": {}}, cfg) == [], "other method"


def test_per_step_cosine_ends_at_zero_however_few_the_epochs():
    cfg = TrainConfig(epochs=3, scheduler="cosine")  # schedule_unit="step" is the default
    positions = [e + i / 10 for e in range(3) for i in range(10)] + [3.0]
    factors = [lr_factor(cfg, p) for p in positions]
    assert factors[0] == 1.0 and factors[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(factors, factors[1:])), "monotone"
    # 0.5 (1 + cos(pi * 2.9 / 3)): the last step of the run trains at ~0.3% of the base lr
    assert factors[-2] == pytest.approx(0.5 * (1 + math.cos(math.pi * 2.9 / 3)))
    per_epoch = TrainConfig(epochs=3, scheduler="cosine", schedule_unit="epoch")
    assert lr_factor(per_epoch, 2) == pytest.approx(0.25)  # the old per-epoch end point


def test_the_lr_moves_inside_an_epoch_in_a_real_run(tmp_path, tiny_cfg):
    trainer = Trainer(tiny_cfg(epochs=1), tmp_path / "run", progress=False)
    seen = []
    original = trainer.model.training_step

    def spy(ctx, images, targets):
        seen.append(ctx.optimizer.param_groups[0]["lr"])
        return original(ctx, images, targets)

    trainer.model.training_step = spy
    trainer.fit()
    assert len(seen) >= 2 and seen[0] > seen[-1] > 0


@pytest.mark.parametrize("policy", ["train", "source", "frozen"])
def test_bn_policy_decides_whether_backbone_statistics_move(policy):
    from fgvc_lib.methods import build_model

    torch.manual_seed(0)
    model = build_model("baseline", 3, backbone="resnet18")
    model.set_bn_policy(policy)
    model.train()
    bn = model.backbone.body.bn1
    before = bn.running_mean.clone()
    with torch.no_grad():
        model(torch.randn(4, 3, 32, 32) * 3 + 1)
    moved = not torch.equal(before, bn.running_mean)
    assert moved == (policy != "frozen")
    assert bn.momentum == (0.1 if policy != "source" else model.backbone.source_bn_momentum)
    assert model.training and not (policy == "frozen" and bn.training)
    model.eval()
    model.train()  # train() again must keep the policy (evaluation restores train mode)
    assert bn.training == (policy != "frozen")


def test_auto_bn_policy_is_train_from_scratch_and_the_transfer_choice_when_pretrained():
    from fgvc_lib.config import TRANSFER_BN_POLICY

    assert TrainConfig().resolved_bn_policy() == "train"
    assert TrainConfig(pretrained=True).resolved_bn_policy() == TRANSFER_BN_POLICY
    assert TrainConfig(weights="w.pt", bn_policy="source").resolved_bn_policy() == "source"


@pytest.mark.parametrize("setting,value,message", [
    ("epochs", -1, "epochs=-1"), ("epochs", 0, "integer >= 1"), ("lr", float("nan"), "finite"),
    ("lr", 0.0, "> 0"), ("batch_size", -4, "batch_size"), ("num_workers", -1, "num_workers"),
    ("image_size", 0, "image_size"), ("weight_decay", -1e-4, ">= 0"),
    ("val_fraction", 1.0, "[0, 1)"), ("resize_size", 10, "resize_size"),
    ("bn_policy", "cold", "unknown bn_policy"), ("scheduler", "step", "unknown scheduler"),
])
def test_nonsense_settings_are_refused_in_one_line(setting, value, message):
    with pytest.raises(FGVCError, match=re.escape(message)) as info:
        TrainConfig(**{setting: value})
    assert "\n" not in str(info.value) and "-> fix:" in str(info.value)


def test_old_records_read_with_the_settings_of_their_time():
    old = {k: v for k, v in TrainConfig().to_dict().items()
           if k not in ("schedule_unit", "bn_policy")}
    cfg = TrainConfig.from_dict(old)
    assert (cfg.schedule_unit, cfg.bn_policy) == ("epoch", "train")


def test_cpu_channels_last_is_asked_for_by_the_environment_and_trains_the_same(
        tmp_path, tiny_cfg, monkeypatch):
    """FGVC_CPU_CHANNELS_LAST=1 changes the memory layout on a CPU, not what is computed:
    the config is the same, the record's provenance says which layout ran, the losses
    agree to float rounding."""
    from fgvc_lib.engine.trainer import CPU_CHANNELS_LAST_ENV

    monkeypatch.delenv(CPU_CHANNELS_LAST_ENV, raising=False)
    plain = train(tiny_cfg(epochs=1), tmp_path / "plain", progress=False)
    monkeypatch.setenv(CPU_CHANNELS_LAST_ENV, "1")
    nhwc = train(tiny_cfg(epochs=1), tmp_path / "nhwc", progress=False)
    assert plain["provenance"]["channels_last"] is False
    assert nhwc["provenance"]["channels_last"] is True
    assert plain["config"] == nhwc["config"]
    assert nhwc["history"][0]["train"]["loss"] == pytest.approx(
        plain["history"][0]["train"]["loss"], rel=1e-4)


def test_train_or_load_reuses_a_linked_run_and_replaces_only_the_link(tmp_path, tiny_cfg):
    """A sweep may reuse another sweep's run through a symlink: the same config loads it;
    another config drops the link and trains in a folder of its own, leaving the linked
    run as it was."""
    target = tmp_path / "sweep-lr" / "point"
    first = train_or_load(tiny_cfg(epochs=1), target, progress=False)
    link = tmp_path / "sweep-bn" / "point"
    link.parent.mkdir()
    link.symlink_to(target, target_is_directory=True)
    reused = train_or_load(tiny_cfg(epochs=1), link, progress=False)
    assert reused["provenance"]["started"] == first["provenance"]["started"]
    other = train_or_load(tiny_cfg(epochs=1, lr=0.02), link, progress=False)
    assert not link.is_symlink() and other["config"]["lr"] == 0.02
    kept = json.loads((target / "results.json").read_text())
    assert kept["provenance"]["started"] == first["provenance"]["started"]


def test_train_or_load_never_deletes_a_folder_another_run_holds(tmp_path, tiny_cfg):
    """A changed config replaces the old run, but not while another process trains there
    (its lock is held): one line naming the fix, and the folder stays as it is."""
    from fgvc_lib.io import FileLock

    train_or_load(tiny_cfg(epochs=1), tmp_path / "run", progress=False)
    holder = FileLock(tmp_path / "run" / ".lock").acquire()   # stands for a running trainer
    try:
        with pytest.raises(FGVCError, match="in use by another process") as err:
            train_or_load(tiny_cfg(epochs=1, lr=0.02), tmp_path / "run", progress=False)
        assert "\n" not in str(err.value)
        assert json.loads((tmp_path / "run" / "results.json").read_text())["config"]["lr"] != 0.02
    finally:
        holder.release()


def test_the_record_names_the_code_the_run_started_with(tmp_path, tiny_cfg, monkeypatch):
    """A commit made while a run trains must not relabel the run: provenance is read once."""
    import fgvc_lib.engine.trainer as trainer_module
    from fgvc_lib.results import provenance as real_provenance

    calls = []

    def counting_provenance(device):
        calls.append(device)
        return {**real_provenance(device), "git": {"commit": f"commit-{len(calls)}"}}

    monkeypatch.setattr(trainer_module, "provenance", counting_provenance)
    rec = train(tiny_cfg(epochs=2), tmp_path / "run", progress=False)
    assert rec["provenance"]["git"]["commit"] == "commit-1"
