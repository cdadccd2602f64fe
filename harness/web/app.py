"""`harness serve`: the results database as web pages (Flask), read-only.

Every page renders table models of harness/views, built from harness/analysis results (the same the terminal
tables and findings print), and reads the database on each request, so a sweep writing into it shows on the next
load. Every page also answers as JSON at its path + `.json` (named by a `Link: rel=alternate` header): the
document `harness <verb> --format json` prints for the same result. Filters come from the query string, are
parsed into typed values and reach the database only as bound parameters of SQLAlchemy expressions. Stored text
(logs, errors, model and host names) is escaped (views/html.py, Jinja's autoescaping); charts travel as JSON in
<script type="application/json"> (Jinja's tojson escapes <, > and &) and are drawn by a static script, and a
Content-Security-Policy lets a page load nothing but this server's own files.
"""
from __future__ import annotations

from dataclasses import asdict
from importlib.resources import files

from flask import Flask, Response, abort, render_template, request, url_for
from werkzeug.exceptions import BadRequest, HTTPException

from .. import baselines
from ..analysis.claims import CLAIMS, check_all
from ..analysis.compare import HEADLINE, METRICS, compare
from ..analysis.history import SERIES_KEY, history, series
from ..analysis.lab import lab
from ..analysis.predict import add_predictions
from ..analysis.record import FABRICS, fabric_of, record
from ..spec import canonical_model

from ..views import formats, html, serialize
from ..views.claims import claims_table, definitions_table, record_table
from ..views.compare import compare_table
from ..views.pages import histogram_traces, model_page, run_page
from . import charts

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
PLOTLY_JS = files("plotly") / "package_data" / "plotly.min.js"
JSON_SUFFIX = ".json"


def create_app(engine, resolution: int = 256) -> Flask:
    """The dashboard over `engine` (open it with store.open_reader); FastViT shown at `resolution` by default."""
    app = Flask(__name__)
    app.config["ENGINE"] = engine
    app.jinja_env.filters.update(ms=formats.ms, share=formats.share, when=formats.when, ratio=formats.ratio,
                                 decimal=formats.decimal, scientific=formats.scientific, cosine=formats.cosine,
                                 compile_seconds=formats.compile_seconds)
    app.jinja_env.globals.update(html=html)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException):
        if request.path.endswith(JSON_SUFFIX):
            return Response(serialize.to_json({"error": exc.description}), exc.code, mimetype="application/json")
        return render_template("error.html", code=exc.code, message=exc.description), exc.code

    @app.get("/static/vendor/plotly.min.js")
    def plotly_js():
        response = Response(PLOTLY_JS.read_bytes(), mimetype="text/javascript")
        response.headers["Cache-Control"] = "max-age=86400"
        return response

    def page(json_path: str, document, template: str, **context) -> Response:
        """The page as HTML, or as its JSON document when asked at its `.json` path; either names the JSON one."""
        if request.path.endswith(JSON_SUFFIX):
            response = Response(serialize.to_json(document), mimetype="application/json")
        else:
            response = Response(render_template(template, **context))
        query = request.query_string.decode()
        response.headers["Link"] = f'<{json_path}{"?" + query if query else ""}>; rel="alternate"; type="application/json"'
        return response

    @app.get("/index.json")
    @app.get("/")  # registered first: url_for() builds the page
    def overview():
        fastvit_resolution = _int("resolution", resolution)
        metric = _choice("metric", "latency", METRICS)
        origins = request.args.getlist("origin") or ["measured", "imported", "published"]
        hosts = request.args.getlist("host")
        found = compare(engine, baselines.own_resolution(fastvit_resolution), metric)
        all_hosts = sorted({c.host for c in found.columns})
        found.columns = [c for c in found.columns if c.origin in origins and (not hosts or c.host in hosts)]
        found.models = [m for m in found.models if any((m, c) in found.values for c in found.columns)]
        with_predictions = request.args.get("predicted") == "1"
        if with_predictions:  # marked cells, as `harness compare --predicted` shows them
            add_predictions(engine, found, baselines.own_resolution(fastvit_resolution))
        shown = compare_table(found)
        return page("/index.json", serialize.document(shown), "overview.html", found=found, matrix=shown,
                    chart=charts.overview(found), metric=metric, metrics=METRICS, resolution=fastvit_resolution,
                    origins=origins, hosts=hosts, all_hosts=all_hosts, headline=HEADLINE if metric == "latency" else (),
                    with_predictions=with_predictions)

    @app.get("/claims.json")
    @app.get("/claims")  # registered first: url_for() builds the page
    def claims():
        checks = check_all(engine)
        device, host = request.args.get("device", ""), request.args.get("host", "")
        claim, paper_only = request.args.get("claim", ""), request.args.get("paper") == "1"
        fabric = _choice("fabric", "", ("", *FABRICS))
        devices = sorted({c.device for c in checks if c.device})
        all_hosts = sorted({c.host for c in checks if c.host != "—"})
        chosen = [c for c in checks if (not device or c.device == device) and (not host or c.host == host)
                  and (not claim or c.claim.key == claim) and (not paper_only or c.paper_protocol)
                  and (not fabric or fabric_of(c.device, c.target) == fabric)]
        shown = claims_table(chosen)
        return page("/claims.json", serialize.document(shown), "claims.html", checks=shown,
                    definitions=definitions_table(CLAIMS), chart=charts.claims(chosen), devices=devices,
                    hosts=all_hosts, device=device, host=host, claim=claim, paper_only=paper_only, claims=CLAIMS,
                    fabric=fabric, fabrics=FABRICS, record=record_table(record(checks)))

    @app.get("/model/<name>")
    def model(name: str):
        as_json = name.endswith(JSON_SUFFIX)
        try:
            canonical = canonical_model(name.removesuffix(JSON_SUFFIX) if as_json else name)
        except ValueError as exc:
            abort(404, str(exc))
        found = model_page(engine, canonical, _int("resolution", baselines.own_resolution(resolution)(canonical)),
                           _choice("form", "reparam", ("reparam", "train")), _int("batch", 1),
                           request.args.get("device", "cpu"))
        traces = histogram_traces(engine, found)
        return page(url_for("model", name=f"{canonical}{JSON_SUFFIX}"), serialize.document(*found.tables.values()),
                    "model.html", page=found, tables=found.tables, distribution=charts.distributions(traces),
                    breakdown_chart=charts.breakdown(found.explained), hists=len(traces))

    @app.get("/run/<int:run_id>.json")
    @app.get("/run/<int:run_id>")  # registered first: url_for() builds the page
    def run(run_id: int):
        found = run_page(engine, run_id)
        if found is None:
            abort(404, f"no run {run_id} in this database")
        return page(f"/run/{run_id}.json", serialize.document(*found.tables.values()), "run.html",
                    run=found.detail.run, host=found.detail.host, detail=found.detail, tables=found.tables,
                    samples=charts.samples(found.ordered), ordered=found.ordered)

    @app.get("/history.json")
    @app.get("/history")  # registered first: url_for() builds the page
    def history_page():
        if all(request.args.get(k) for k in SERIES_KEY if k != "keep_float"):  # "": no mixed recipe
            key = {k: (_int(k, 0) if k in ("host_id", "resolution", "batch", "threads") else request.args.get(k, ""))
                   for k in SERIES_KEY}
            found = history(engine, **key)
            if found.series is None:
                abort(404, "no valid run of that model spec on that target and host")
            return page("/history.json", asdict(found), "history.html", found=found, chart=charts.history(found))
        model_filter = request.args.get("model") or None
        if model_filter:
            try:
                model_filter = canonical_model(model_filter)
            except ValueError as exc:
                abort(404, str(exc))
        found = series(engine, model=model_filter)
        return page("/history.json", [asdict(s) for s in found], "series.html", series=found,
                    model=model_filter or "")

    @app.get("/advise.json")
    @app.get("/advise")  # registered first: url_for() builds the page
    def advise_page():
        from ..analysis.advise import DEFAULT_FLOOR, latest_advice, rejudged_claims
        from ..views.advise import advice_tables

        floor = _float("floor", DEFAULT_FLOOR, 0.0, 1.0)
        found = latest_advice(engine, floor)
        *candidates, summary, claims_at = advice_tables(found, rejudged_claims(found))
        return page("/advise.json", serialize.document(*candidates, summary, claims_at), "advise.html", found=found,
                    summary=summary, claims=claims_at, candidates=candidates, floor=floor)

    @app.get("/lab.json")
    @app.get("/lab")  # registered first: url_for() builds the page
    def lab_page():
        hosts = lab(engine)
        return page("/lab.json", [asdict(h) for h in hosts], "lab.html", hosts=hosts)

    return app


def _int(name: str, default: int) -> int:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {value!r}") from None


def _choice(name: str, default: str, allowed) -> str:
    value = request.args.get(name) or default
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _float(name: str, default: float, low: float, high: float) -> float:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        found = float(value)
    except ValueError:
        raise BadRequest(f"{name} must be a number, not {value!r}") from None
    if not low <= found <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, not {value!r}")
    return found
