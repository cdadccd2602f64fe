"""timm's benchmark tables as published runs: read from real files (tests/fixtures/timm, excerpts of
huggingface/pytorch-image-models results/ at aa4b5850; and the bundle, the same commit), each row's form established
from its parameter count, the claims judged on every timm device and protocol with both models at one batch, and
the record counting devices per verdict."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import save
from typer.testing import CliRunner

import fastvit
from harness.analysis.claims import check_all
from harness.analysis.record import record
from harness.cli import app
from harness.ingest import published_timm as timm
from harness.views.findings import render
from harness.baselines import own_resolution

TIMM = Path(__file__).parent / "fixtures" / "timm"
PRO6000 = "benchmark-infer-amp-nchw-pt291-cu130-pro6000maxq-dynamo.csv"
RTX4090_2024 = "benchmark-infer-amp-nchw-pt240-cu124-rtx4090-dynamo.csv"


def invoke(*args, **kwargs):
    result = CliRunner().invoke(app, [str(a) for a in args], **kwargs)
    assert "Traceback" not in result.output, result.output
    return result


def rows_of(name: str) -> dict[tuple[str, int], dict]:
    """A fixture file's rows by (model, image size), as csv reads them: the numbers the tests expect."""
    with open(TIMM / name) as f:
        return {(r["model"], int(float(r["infer_img_size"]))): r for r in csv.DictReader(f)}


@pytest.mark.parametrize("name, expected", [
    ("benchmark-infer-amp-nchw-pt113-cu117-rtx3090.csv", ("amp", "nchw", "1.13", "11.7", "RTX 3090", False)),
    (RTX4090_2024, ("amp", "nchw", "2.4.0", "12.4", "RTX 4090", True)),
    ("benchmark-infer-amp-nchw-pt291-cu128-4090.csv", ("amp", "nchw", "2.9.1", "12.8", "RTX 4090", False)),
    ("benchmark-infer-amp_bf16-nchw-pt291-cu130-pro6000maxq-dynamo.csv",
     ("amp_bf16", "nchw", "2.9.1", "13.0", "RTX Pro 6000 Max-Q", True)),
    ("benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.csv", ("fp32", "nchw", "2.4.0", None, "Core i7-12700H", True)),
])
def test_a_file_name_says_how_its_rows_were_timed(name, expected):
    about = timm.parse_name(name)
    assert (about.precision, about.layout, about.torch, about.cuda, about.device, about.compiled) == expected
    assert about.target.name.startswith("torch-compile/" if about.compiled else "torch/")
    with pytest.raises(ValueError, match="not a timm inference benchmark table"):
        timm.parse_name("benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv")


def test_every_bundled_file_is_read_and_its_name_understood():
    source = timm.bundled()
    assert source.commit == "aa4b5850c1543fa488abf260f18390eda46cf85d" and len(source.files) == 20
    for name, text in source.files.items():
        assert timm.parse_name(name).device in timm.CHIPS
        assert timm.read_rows(name, text)


def test_the_three_header_layouts_read_alike():
    """timm wrote its columns in three orders over the years, and one file with float batch sizes."""
    for name in (p.name for p in TIMM.glob("*.csv")):
        rows = {(r.model, r.img_size): r for r in timm.read_rows(name, (TIMM / name).read_text())}
        for key, raw in rows_of(name).items():
            row = rows[key]
            assert row.samples_per_sec == float(raw["infer_samples_per_sec"])
            assert row.batch == int(float(raw["infer_batch_size"])) and row.param_count_m == float(raw["param_count"])
    with pytest.raises(ValueError, match="not a timm inference benchmark table"):
        timm.read_rows("results-imagenet.csv", "model,top1,top5\nresnet50,80.1,95.0\n")


def test_the_form_each_row_timed_is_read_from_its_parameter_count():
    s12 = fastvit.count("s12", 256)
    train, fused = round(s12.params_train / 1e6, 2), round(s12.params_inference / 1e6, 2)
    assert (train, fused) == (9.47, 9.43)  # the harness's counts of both forms: they differ at timm's precision
    assert timm.form_evidence("s12", 9.47)[0] == "train"
    assert timm.form_evidence("s12", 9.43)[0] == "reparam"
    form, why = timm.form_evidence("s12", 9.5)
    assert form is None and "neither form's" in why
    counts = timm.bundled().counts  # counted with timm where the bundle was made
    assert counts["timm:mobileone_s4"] == [14.95, 14.84] and counts["timm:convnext_base"] == [88.59, 88.59]
    assert timm.form_evidence("timm:mobileone_s4", 14.95, counts)[0] == "train"
    assert timm.form_evidence("timm:convnext_base", 88.59, counts) == (
        "reparam", "param_count 88.59M: nothing to fuse (both forms 88.59M)")
    # the files themselves: timm's 2024 tables timed the training forms, its 2026 ones (--reparam) the fused ones
    assert rows_of(RTX4090_2024)[("fastvit_s12", 256)]["param_count"] == "9.47"
    assert rows_of(PRO6000)[("fastvit_s12", 256)]["param_count"] == "9.43"


def test_baseline_counts_match_timm_where_it_is_installed():
    pytest.importorskip("timm")
    assert list(timm.param_counts("timm:mobileone_s4")) == timm.bundled().counts["timm:mobileone_s4"]


def test_published_timm_stores_each_row_once_with_its_form_and_protocol(tmp_path, db, engine):
    first = invoke("published", "--timm", "--timm-results", TIMM, "--db", db)
    assert first.exit_code == 0, first.output
    text = " ".join(first.output.split())
    assert "from 5 timm benchmark table(s) at commit unknown" in text  # the fixtures are no timm checkout
    assert "not stored resnet50 in" in text and "got 176" in text  # a size no model spec has, said
    again = invoke("published", "--timm", "--timm-results", TIMM, "--db", db)
    assert "stored 0 published latencies" in " ".join(again.output.split())
    rows = json.loads(invoke("query", "SELECT model, resolution, batch, form, target, precision, median_ms, mean_ms, "
                                      "environment, citation FROM runs WHERE published", "--format", "json",
                             "--db", db).output)
    pro = {r["model"]: r for r in rows if "cuda=13.0" in r["target"]}
    raw = rows_of(PRO6000)[("fastvit_s12", 256)]
    s12 = pro["s12"]
    assert (s12["batch"], s12["form"], s12["precision"]) == (int(raw["infer_batch_size"]), "reparam", "amp")
    assert s12["target"] == "torch-compile/gpu[layout=nchw,torch=2.9.1,cuda=13.0]"
    assert s12["median_ms"] is None and s12["mean_ms"] == pytest.approx(1000 / float(raw["infer_samples_per_sec"]))
    environment = json.loads(s12["environment"]) if isinstance(s12["environment"], str) else s12["environment"]
    assert environment["form_evidence"] == "param_count 9.43M: the fused form's (9.43M; training 9.47M)"
    assert PRO6000 in s12["citation"]
    old = [r for r in rows if r["model"] == "s12" and "torch=2.4.0,cuda=12.4" in r["target"]]
    assert [r["form"] for r in old] == ["train"]


def test_claims_are_judged_on_each_timm_device_at_one_batch(db, engine):
    invoke("published", "--timm", "--db", db)  # the bundle
    checks = [c for c in check_all(engine) if c.origin == "published" and c.claim.key == "s12_vs_mobileone_s4"]
    by_protocol = {c.protocol: c for c in checks}
    rtx4090 = by_protocol["RTX 4090, AMP (fp16), NCHW, torch.compile, PyTorch 2.4.0, CUDA 12.4, timm benchmark.py, "
                          "batch 256, training form"]
    raw = rows_of(RTX4090_2024)
    expected = (float(raw[("fastvit_s12", 256)]["infer_samples_per_sec"])
                / float(raw[("mobileone_s4", 224)]["infer_samples_per_sec"]))
    assert rtx4090.speedup == pytest.approx(expected) and rtx4090.claimed_here == "1.269x (GPU)"
    assert rtx4090.verdict == ("holds" if expected >= 1.269 else "does not hold") and not rtx4090.single_process
    fused = [c for c in checks if c.form is None and c.verdict != "not enough data"]
    assert fused and all("training form" not in c.protocol for c in fused)
    # the Pro 6000's compiled tables ran the two models at different batches: no speedup, and why
    apart = [c for c in checks if "RTX Pro 6000" in c.host and c.verdict == "not enough data"]
    assert apart and all("a speedup needs both at one batch" in c.missing for c in apart)
    # MA36 vs NFNet-F1 is about MA36 at 384 px, which timm's tables do not time
    every = check_all(engine)
    nfnet = [c for c in every if c.claim.key == "ma36_vs_nfnet_f1" and c.origin == "published"]
    assert nfnet and {c.verdict for c in nfnet} == {"not enough data"}
    # ConvNeXt-B has nothing to fuse: its one row times the training form MA36 is judged in beside it
    cpu = [c for c in every if c.claim.key == "ma36_vs_convnext_base" and c.host == "published: Core i7-12700H"
           and c.form == "train"]
    assert len(cpu) == 1 and cpu[0].speedup and cpu[0].verdict == "does not hold"


def test_the_record_counts_devices_per_verdict_and_findings_show_it(tmp_path, db, engine):
    save(engine, [10.0] * 20, model="s12", target="onnxruntime/cpu")
    save(engine, [12.0] * 20, model="timm:mobileone_s4", resolution=224, target="onnxruntime/cpu")
    invoke("published", "--timm", "--db", db)
    checks = check_all(engine)
    cells = {(c.claim, c.fabric): c for c in record(checks)}
    gpus = cells[("s12_vs_mobileone_s4", "desktop GPU")]
    named = {d.name for devices in gpus.devices.values() for d in devices}
    assert named == {"RTX 3090", "RTX 4090", "RTX 5090", "RTX Pro 6000 Max-Q"}
    cpus = cells[("s12_vs_mobileone_s4", "desktop CPU")]
    assert "h cpu" in {d.name for devices in cpus.devices.values() for d in devices}  # measured here beside them
    for cell in cells.values():  # a device is counted once per claim, under one verdict
        assert sum(cell.count(v) for v in cell.devices) == len({d.name for ds in cell.devices.values() for d in ds})
    text, _ = render(engine, own_resolution(256))
    section = text[text.index("## The published record"):]
    assert "| s12_vs_mobileone_s4 | desktop GPU |" in section and "RTX 4090" in section
    assert "## The paper's claims on the GPU" not in text  # published GPUs are the record's, not a section each


def test_the_claims_page_shows_the_record_and_filters_by_kind_of_device(db, engine):
    from harness import store
    from harness.web.app import create_app

    invoke("published", "--timm", "--db", db)
    client = create_app(store.open_reader(str(db))).test_client()
    page = client.get("/claims").get_data(as_text=True)
    assert 'id="record"' in page and "RTX Pro 6000 Max-Q" in page
    gpus = client.get("/claims.json?fabric=desktop GPU").get_json()
    assert gpus and {r["host"] for r in gpus} == {"published: RTX 3090", "published: RTX 4090", "published: RTX 5090",
                                                  "published: RTX Pro 6000 Max-Q"}
    assert client.get("/claims?fabric=watch").status_code == 400
