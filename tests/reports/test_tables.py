"""Paper tables as data: runs shared between tables, and the rendered comparison."""
from __future__ import annotations

import json

import pytest

import fgvc_lib.engine.trainer as trainer
from fgvc_lib.reports import tables as reports
from fgvc_lib.errors import FGVCError
from fgvc_lib.reports import (FIGURE_ONLY, PaperTable, TableRow, available_tables, get_table,
                              render_table, row_config, run_dir, run_table, shared_row)

SHARED = [(tid, row) for tid in available_tables() for row in get_table(tid).rows
          if row.same_run_as]


def test_paper_values_are_numbers_figure_only_or_plain_text_never_estimates():
    for tid in available_tables():
        for row in get_table(tid).rows:
            for col, value in row.paper.items():
                if isinstance(value, (int, float)) or value == FIGURE_ONLY:
                    continue
                # Text cells (an input size such as "448x448") are allowed; a number
                # hidden in a string or an approximation is not.
                assert not any(mark in value for mark in ("~", "≈", "approx")), (tid, row.label)
                with pytest.raises(ValueError):
                    float(value)


def test_the_tables_share_runs_where_the_configurations_coincide():
    # Cross-X Table 2 is four rows of Figs. 3-4; CMAL-Net's t = 0.5 is Table 2's MDA row;
    # CN-CNN's Table 3 "w/o ConvLSTM" is Table 2's HL+LH, and Table 1 quotes both.
    assert {tid for tid, _ in SHARED} == {"cmal.table3", "cross_x.ablation_gap", "cross_x.table2",
                                          "cn_cnn.table1", "cn_cnn.table3"}


@pytest.mark.parametrize("profile", ["smoke", "gpu", "full"])
@pytest.mark.parametrize("tid,row", SHARED, ids=[f"{t}:{r.label}" for t, r in SHARED])
def test_a_shared_run_has_exactly_the_config_of_its_row(tid, row, profile):
    ref_table, ref_row = shared_row(row)
    ours = row_config(get_table(tid), row, "synthetic", profile)
    theirs = row_config(ref_table, ref_row, "synthetic", profile)
    assert ours == theirs


def _finished_record(path, top1: float, head: str = "fusion") -> None:
    path.mkdir(parents=True)
    record = {"status": "finished",
              "config": {"profile": "smoke", "dataset": "synthetic", "backbone": "resnet18",
                         "image_size": 64, "epochs": 1},
              "provenance": {"device": {"name": "cpu"}},
              "metrics": {"test": {head: {"top1": top1}}}}
    (path / "results.json").write_text(json.dumps(record))


def test_render_reads_a_shared_run_from_the_row_that_owns_it(tmp_path):
    owner = run_dir(tmp_path, get_table("cmal.table2"),
                    next(r for r in get_table("cmal.table2").rows if r.label == "MDA (GMP), raw input"))
    assert owner == tmp_path / "cmal.table2" / "mda-gmp-raw-input"
    _finished_record(owner, 61.3)
    df = render_table("cmal.table3", tmp_path)
    assert df.loc["t = 0.5", "Accuracy (ours)"] == "61.3"
    assert df.loc["t = 0.1", "Accuracy (ours)"] == "-"
    assert "synthetic data" in df.attrs["caption"]
    assert not (tmp_path / "cmal.table3").exists()


def test_run_table_trains_a_shared_row_once_in_the_owners_folder(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(trainer, "train_or_load",
                        lambda cfg, out, **kw: calls.append((cfg, out))
                        or {"status": "finished", "config": cfg.to_dict()})
    run_table("cross_x.table2", tmp_path, profile="smoke", rows=["GMP+"], progress=False)
    run_table("cross_x.ablation_gmp", tmp_path, profile="smoke", rows=["C3S+GMP+FP"], progress=False)
    assert [out for _, out in calls] == [tmp_path / "cross_x.ablation_gmp" / "c3s-gmp-fp"] * 2
    assert calls[0][0] == calls[1][0]


def _patched_tables(monkeypatch, rows_a, rows_b):
    tables = {
        "t.a": PaperTable(id="t.a", paper="P", caption="c", source="Table A",
                          columns={"Acc": "final"}, rows=rows_a),
        "t.b": PaperTable(id="t.b", paper="P", caption="c", source="Table B",
                          columns={"Acc": "final"}, rows=rows_b),
    }
    monkeypatch.setattr(reports, "_load_all", lambda: tables)


def test_a_shared_row_whose_options_drifted_is_refused_with_the_fix(tmp_path, monkeypatch):
    _patched_tables(monkeypatch,
                    [TableRow(label="x", paper={}, method="cmal", options={"t": 0.5})],
                    [TableRow(label="y", paper={}, method="cmal", options={"t": 0.7},
                              same_run_as="t.a:x")])
    monkeypatch.setattr(trainer, "train_or_load", lambda *a, **k: pytest.fail("must not train"))
    with pytest.raises(FGVCError, match="configs differ") as err:
        run_table("t.b", tmp_path, profile="smoke", progress=False)
    assert "method_options" in str(err.value) and "same_run_as" in err.value.fix


@pytest.mark.parametrize("ref,message", [("t.a", "must read"), ("t.a:nope", "has no row"),
                                         ("t.a:z", "no run of its own")])
def test_a_broken_same_run_as_names_the_fix(monkeypatch, ref, message):
    _patched_tables(monkeypatch,
                    [TableRow(label="x", paper={}, method="cmal"),
                     TableRow(label="z", paper={}, run_of="x")],
                    [TableRow(label="y", paper={}, method="cmal", same_run_as=ref)])
    with pytest.raises(FGVCError, match=message):
        shared_row(get_table("t.b").rows[0])
