"""`harness serve` in a real headless Chromium: every page loads with no console error and no request leaving
the server, charts hold the stored values, filters change what is shown, stored markup renders as text, a
sweep writing into the database shows without a restart, and PostgreSQL shows what SQLite shows."""
from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlencode
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from sqlalchemy import bindparam, text

import browser
from helpers import schema_5_database
from harness import store
from harness.baselines import own_resolution
from harness.opclass import OVERHEAD_SIGNATURE
from harness.protocol import OpRow, RunResult
from harness.ingest.published import bundled, store_tables
from harness.spec import ModelSpec, Target
from harness.stats import summarize

if browser.chromium() is None and os.environ.get("HARNESS_REQUIRE_BROWSER") != "1":
    pytest.skip("the dashboard tests need Debian's chromium (apt-get install chromium)", allow_module_level=True)

LAB = {"hostname": "lab-pc", "cpu_model": "Intel Xeon", "logical_cores": 2, "os": "Linux 6.1", "machine": "x86_64",
       "isa": "avx2 avx512f"}
GPU_BOX = {"hostname": "gpu-box", "cpu_model": "AMD EPYC", "logical_cores": 16, "os": "Linux 6.8",
           "machine": "x86_64", "isa": "avx2"}
# median ms of each model's fused form on lab-pc, per target
MEDIANS = {("t8", "torch/cpu"): 21.0, ("t8", "onnxruntime/cpu"): 6.0, ("s12", "torch/cpu"): 48.0,
           ("s12", "onnxruntime/cpu"): 14.0, ("timm:mobileone_s4", "torch/cpu"): 40.0,
           ("timm:mobileone_s4", "onnxruntime/cpu"): 16.0}
XSS_LOG = "Traceback (most recent call last):\n<script>window.__pwned = 1</script>\n<img src=x onerror=\"window.__pwned=2\">"
DAY = 86_400


def _samples(median: float, count: int = 40) -> list[int]:
    """Timed samples around `median` ms (a spread of +-3%), as nanoseconds."""
    return [int(median * (0.97 + 0.06 * ((i * 7) % count) / count) * 1e6) for i in range(count)]


def _result(median: float | None, status: str = "ok", when: float = 1_780_000_000.0, **extra) -> RunResult:
    samples = _samples(median) if median else []
    return RunResult(status=status, samples_ns=samples, warmup_ns=samples[:5], first_ns=samples[0] * 3 if samples
                     else None, summary=summarize(samples) if samples else None, started_at=when,
                     finished_at=when + 5, environment={"versions": {"torch": "2.14.1"}, "git_revision": "abc123"},
                     **extra)


def _save(engine, result: RunResult, model: str, target: str, host: dict = LAB, form: str = "reparam",
          **extra) -> int:
    """One run, at the resolution the harness compares `model` at (baselines: their own)."""
    backend, device = target.split("/", 1)
    return store.save_run(engine, result, spec=ModelSpec(model, own_resolution()(model), 1, form), target=Target(backend, device),
                          threads=2, precision="fp32", host=host, **extra)


def fill(engine) -> dict[str, int]:
    """The same runs into any database, in the same order (so run ids agree), through the store's writers."""
    ids = {}
    when = 1_780_000_000.0
    for (model, target), median in MEDIANS.items():
        profile = [OpRow("stages.0.mixer", "Conv", "conv_dw_7x7", 6, median * 0.4),
                   OpRow("stages.0.mlp", "Conv", "conv_pointwise", 20, median * 0.5)]
        ids[(model, target)] = _save(engine, _result(median, when=when, op_profile=profile), model, target)
        when += 60
    ids["t8_train"] = _save(engine, _result(30.0, when=when), "t8", "torch/cpu", form="train")
    # history: t8 on onnxruntime timed again on later days, the last clearly slower with a newer runtime
    for day, median in ((1, 6.05), (2, 9.0)):
        result = _result(median, when=when + day * DAY)
        result.environment["versions"] = {"onnxruntime": "1.24.0" if day == 2 else "1.23.2"}
        ids[f"t8_ort_day{day}"] = _save(engine, result, "t8", "onnxruntime/cpu")
    ids["crashed"] = _save(engine, _result(None, "crashed", error="worker died <b>hard</b>", log=XSS_LOG,
                                           when=when + 3 * DAY), "t8", "openvino/cpu")
    agent = _result(11.0, when=when + 4 * DAY)
    agent.environment["agent"] = "gpu-box"
    ids["agent"] = _save(engine, agent, "t8", "onnxruntime/gpu", host=GPU_BOX)
    # t8's layers alone on two targets: a 7x7 depthwise conv far slower on torch
    for target, dw_ms, pw_ms in (("torch/cpu", 0.9, 0.2), ("onnxruntime/cpu", 0.1, 0.18)):
        _save(engine, _result(0.01, when=when), "t8", target, layer=OVERHEAD_SIGNATURE, layer_count=1)
        _save(engine, _result(dw_ms, when=when), "t8", target, layer="dw conv7x7 c48 64x64", layer_count=6)
        _save(engine, _result(pw_ms, when=when), "t8", target, layer="conv1x1 c48->144 64x64", layer_count=12)
    store_tables(engine, bundled())
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A filled SQLite database, `harness serve` on it, and a browser: shared by this module's tests."""
    db = tmp_path_factory.mktemp("serve") / "results.db"
    engine = store.open_engine(str(db))
    ids = fill(engine)
    engine.dispose()
    with browser.serve(db) as base:
        chromium = browser.Browser(base)
        try:
            yield db, base, chromium, ids
        finally:
            chromium.close()


def _clean(page) -> None:
    visit = page.visit
    assert visit.console_errors == [] and visit.page_errors == [], (visit.console_errors, visit.page_errors)
    assert visit.outside == [], f"requests left the server: {visit.outside}"
    assert visit.failed == [], visit.failed


def _chart(page, element_id: str) -> list[dict]:
    """The traces Plotly drew in the browser (x, y, name of each)."""
    return page.evaluate(f"document.getElementById('{element_id}').data.map(t => ({{name: t.name, x: t.x, y: t.y}}))")


def test_every_page_loads_clean_and_draws_its_charts(site):
    _db, _base, chromium, ids = site
    history = urlencode({"host_id": 1, "model": "t8", "resolution": 256, "batch": 1, "form": "reparam",
                         "weights": "random:0", "target": "onnxruntime/cpu", "threads": 2, "precision": "fp32"})
    pages = {"/": ["overview-chart"], "/claims": ["claims-chart"],
             "/model/t8": ["distribution-chart", "breakdown-chart"], "/model/mobileone_s4": ["distribution-chart"],
             f"/run/{ids[('t8', 'torch/cpu')]}": ["samples-chart"], "/history": [], f"/history?{history}":
             ["history-chart"], "/lab": [], "/advise": []}
    for path, charts in pages.items():
        page = chromium.open(path)
        _clean(page)
        assert page.locator("h1").count() == 1, path
        for chart in charts:
            assert _chart(page, chart), f"{path}: {chart} drew no trace"
        page.close()


def test_charts_hold_the_stored_values(site):
    db, _base, chromium, ids = site
    engine = store.open_reader(str(db))
    with engine.connect() as conn:
        stored = {row[0]: row[1] for row in conn.execute(text(
            "SELECT id, median_ms FROM runs WHERE id IN :ids").bindparams(bindparam("ids", expanding=True)),
            {"ids": list(ids.values())})}
        torch_samples = [r[0] / 1e6 for r in conn.execute(text(
            "SELECT latency_ns FROM samples WHERE run_id = :id AND phase = 'timed' ORDER BY iteration"),
            {"id": ids[("t8", "torch/cpu")]})]
    engine.dispose()

    overview = chromium.open("/?origin=measured")
    traces = {t["name"]: dict(zip(t["x"], t["y"])) for t in _chart(overview, "overview-chart")}
    # the latest valid run per model and target: t8 on onnxruntime is the slower last one
    assert traces["lab-pc torch/cpu"]["t8"] == pytest.approx(stored[ids[("t8", "torch/cpu")]])
    assert traces["lab-pc onnxruntime/cpu"]["t8"] == pytest.approx(stored[ids["t8_ort_day2"]])
    assert traces["lab-pc onnxruntime/cpu"]["s12"] == pytest.approx(stored[ids[("s12", "onnxruntime/cpu")]])
    # the log axis is labelled in plain numbers that read in order over decades (plotly's own say "2" for 20)
    everything = chromium.open("/")
    labels = [float(t) for t in everything.locator("#overview-chart .ytick text").all_text_contents()]
    assert labels == sorted(labels) and labels[0] <= 1 and labels[-1] >= 20
    cell = overview.locator("#matrix tbody tr", has_text="s12").first.locator("td").nth(1)
    assert cell.inner_text().strip() == f"{stored[ids[('s12', 'onnxruntime/cpu')]]:.2f}"

    run = chromium.open(f"/run/{ids[('t8', 'torch/cpu')]}")
    timed = next(t for t in _chart(run, "samples-chart") if t["name"] == "timed")
    assert timed["y"] == pytest.approx(torch_samples)

    model = chromium.open("/model/t8")
    histograms = {t["name"]: t["y"] for t in _chart(model, "distribution-chart")}
    assert sum(histograms["lab-pc torch/cpu"]) == len(torch_samples)  # every timed sample counted once
    breakdown = {t["name"]: t["y"] for t in _chart(model, "breakdown-chart")}
    assert set(breakdown) == {"conv_dw_7x7", "conv_pointwise"}
    assert model.locator("#outliers").inner_text().count("dw conv7x7") == 1  # torch: 9x onnxruntime's
    for page in (overview, everything, run, model):
        _clean(page)
        page.close()


def test_history_marks_the_regression_beyond_the_spread(site):
    _db, _base, chromium, ids = site
    page = chromium.open("/history")
    page.locator("#series a", has_text="t8").first.click()
    page.wait_for_load_state("networkidle")
    rows = page.locator("#history tbody tr")
    assert rows.count() == 3
    assert "regression" in rows.nth(2).inner_text() and "onnxruntime 1.24.0" in rows.nth(2).inner_text()
    assert "regression" not in rows.nth(1).inner_text()  # 6.00 -> 6.05: within the measured spread
    # single-process runs: the change is marked unconfirmed, with the command that confirms it
    assert "one process" in rows.nth(2).inner_text()
    assert "--repeats auto" in page.locator("#unconfirmed").inner_text()
    y = _chart(page, "history-chart")[0]["y"]
    assert y[-1] > y[0] * 1.4
    page.close()


def test_filters_change_what_is_shown(site):
    _db, base, chromium, ids = site
    page = chromium.open("/")
    assert page.locator("#matrix thead", has_text="published").count() == 1
    page.locator("input[name=origin][value=published]").uncheck()
    page.locator("input[name=origin][value=imported]").uncheck()
    page.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "origin=measured" in page.url and "published" not in page.url
    assert page.locator("#matrix thead", has_text="published").count() == 0
    assert "lab-pc" in page.locator("#matrix thead").inner_text()

    claims = chromium.open("/claims")
    everything = claims.locator("#claims tbody tr").count()
    claims.select_option("select[name=claim]", "s12_vs_mobileone_s4")
    claims.locator("button[type=submit]").click()
    claims.wait_for_load_state("networkidle")
    shown = claims.locator("#claims tbody tr")
    assert 0 < shown.count() < everything
    assert {shown.nth(i).get_attribute("data-claim") for i in range(shown.count())} == {"s12_vs_mobileone_s4"}
    assert "claim=s12_vs_mobileone_s4" in claims.url  # the filtered view is a URL to share

    train = chromium.open("/model/t8?form=train")
    shown_runs = train.locator("#runs").inner_text()
    assert f"#{ids['t8_train']}" in shown_runs and f"#{ids[('t8', 'torch/cpu')]}" not in shown_runs
    series = chromium.open("/history?model=s12")
    assert series.locator("#series tbody tr").count() == 0  # s12 was timed once per target: no history
    for page in (page, claims, train, series):
        _clean(page)
        page.close()


def test_stored_markup_renders_as_text(site):
    _db, _base, chromium, ids = site
    page = chromium.open(f"/run/{ids['crashed']}")
    _clean(page)
    assert page.evaluate("window.__pwned") is None  # neither the <script> nor the onerror ran
    assert "<script>window.__pwned = 1</script>" in page.locator("#log").inner_text()
    assert page.locator("#log script, #log img").count() == 0
    assert "worker died <b>hard</b>" in page.locator("#error").inner_text()
    page.close()


def test_bad_input_is_a_page_saying_why(site):
    _db, base, chromium, _ids = site
    for path, code, says in (("/?resolution=big", 400, "resolution must be a whole number"),
                             ("/model/resnet999", 404, "resnet999"), ("/run/999999", 404, "no run 999999"),
                             ("/?metric=%3Cscript%3E", 400, "metric must be one of")):
        page = chromium.open(path)
        assert page.visit.failed == [f"{code} {base}{path}"]
        assert says in page.locator("main").inner_text()
        assert page.visit.console_errors in ([], [f"Failed to load resource: the server responded with a status of "
                                                  f"{code} ({'BAD REQUEST' if code == 400 else 'NOT FOUND'})"])
        page.close()


def test_nothing_the_dashboard_serves_can_write(site):
    db, base, _chromium, _ids = site
    for method in ("POST", "PUT", "DELETE"):
        with pytest.raises(HTTPError) as refused:
            urlopen(Request(base + "/", method=method, data=b"x"), timeout=10)
        assert refused.value.code == 405
    engine = store.open_reader(str(db))
    with pytest.raises(Exception, match="readonly|read-only"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM samples"))
    engine.dispose()


def test_a_sweep_writing_shows_without_a_restart(site):
    db, _base, chromium, _ids = site
    page = chromium.open("/")
    assert "resnet50" not in page.locator("#matrix").inner_text()
    writer = store.open_engine(str(db))
    _save(writer, _result(33.0, when=1_790_000_000.0), "timm:resnet50", "torch/cpu")
    writer.dispose()
    page.reload(wait_until="networkidle")
    assert "timm:resnet50" in page.locator("#matrix").inner_text()
    page.close()


def test_an_older_schema_is_refused_not_migrated(tmp_path):
    db = tmp_path / "old.db"
    schema_5_database(db)
    before = db.read_bytes()
    with pytest.raises(store.StorageError, match=r"older schema \(from before Alembic\).* `harness report --db"):
        store.open_reader(str(db))
    assert db.read_bytes() == before


def test_serve_binds_loopback_and_warns_when_exposed(tmp_path):
    db = tmp_path / "results.db"
    store.open_engine(str(db)).dispose()
    out = subprocess.run([sys.executable, "-m", "harness.cli", "serve", "--db", str(tmp_path / "none.db")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no results database" in out.stderr and "Traceback" not in out.stderr
    with browser.serve(db) as base:
        assert base.startswith("http://127.0.0.1:")
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", "--db", str(db), "--host", "0.0.0.0",
                                "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    try:
        process.stdout.readline()  # serving ... : the warning came before it
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "no login and no TLS" in " ".join(stderr.split())


def test_postgresql_shows_what_sqlite_shows(tmp_path, postgres_server, site):
    import psycopg

    _db, _base, chromium, _ids = site
    name = f"serve_{os.getpid()}"
    admin = postgres_server.url().replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    sqlite_db = tmp_path / "same.db"
    try:
        for url in (postgres_server.url(name), str(sqlite_db)):
            engine = store.open_engine(url)
            ids = fill(engine)
            engine.dispose()
        texts = {}
        for url in (postgres_server.url(name), str(sqlite_db)):
            with browser.serve(url) as base:
                texts[url] = []
                for path in ("/", "/claims", "/model/t8", f"/run/{ids[('s12', 'torch/cpu')]}", "/history", "/lab"):
                    page = chromium.open(path, base=base)
                    _clean(page)
                    if path == "/lab":  # the measured hosts (a published host is stamped when it is stored)
                        texts[url] += [page.locator("section.host", has_text=host).inner_text()
                                       for host in ("lab-pc", "gpu-box")]
                    else:
                        texts[url].append(page.locator("main").inner_text())
                    for chart in page.locator(".chart").all():  # and what the charts drew: SQL's arithmetic
                        texts[url].append(_chart(page, chart.get_attribute("id")))
                    page.close()
        postgres_pages, sqlite_pages = texts.values()
        assert "s12" in postgres_pages[0] and "s12 vs mobileone_s4" in postgres_pages[2]
        assert any("agents: gpu-box" in str(text) for text in postgres_pages)
        assert postgres_pages == sqlite_pages
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
