"""`harness serve`: the results database as web pages (Flask), read-only.

Every page renders a result of harness/analysis (the same the terminal tables and findings print) and queries
the database on each request, so a sweep writing into it shows on the next load. Filters come from the query
string, are parsed into typed values and reach the database only as bound parameters of SQLAlchemy
expressions. Stored text (logs, errors, model and host names) is escaped by Jinja's autoescaping; charts
travel as JSON in <script type="application/json"> (Jinja's tojson escapes <, > and &) and are drawn by a
static script, and a Content-Security-Policy lets a page load nothing but this server's own files.
"""
from __future__ import annotations

from importlib.resources import files

from flask import Flask, Response, abort, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest, HTTPException

from .. import baselines
from ..analysis.claims import CLAIMS, check_all
from ..analysis.compare import HEADLINE, METRICS, compare
from ..analysis.delegation import delegation
from ..analysis.explain import breakdown
from ..analysis.history import SERIES_KEY, history, series
from ..analysis.lab import lab
from ..analysis.layers import layer_table
from ..analysis.precision import coverage as precision_coverage
from ..analysis.samples import histograms, in_order
from ..report import claim_label, claimed_here, fmt_ms
from ..spec import canonical_model
from ..store import Run, latest_runs
from . import charts

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
PLOTLY_JS = files("plotly") / "package_data" / "plotly.min.js"


def create_app(engine, resolution: int = 256) -> Flask:
    """The dashboard over `engine` (open it with store.open_reader); FastViT shown at `resolution` by default."""
    app = Flask(__name__)
    app.config["ENGINE"] = engine
    app.jinja_env.filters.update(ms=fmt_ms, share=_share, when=_when, ratio=_ratio)
    app.jinja_env.globals.update(claim_label=claim_label, claimed_here=claimed_here)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException):
        return render_template("error.html", code=exc.code, message=exc.description), exc.code

    @app.get("/static/vendor/plotly.min.js")
    def plotly_js():
        response = Response(PLOTLY_JS.read_bytes(), mimetype="text/javascript")
        response.headers["Cache-Control"] = "max-age=86400"
        return response

    @app.get("/")
    def overview():
        fastvit_resolution = _int("resolution", resolution)
        metric = _choice("metric", "latency", METRICS)
        origins = request.args.getlist("origin") or ["measured", "imported", "published"]
        hosts = request.args.getlist("host")
        found = compare(engine, baselines.own_resolution(fastvit_resolution), metric)
        all_hosts = sorted({c.host for c in found.columns})
        found.columns = [c for c in found.columns if c.origin in origins and (not hosts or c.host in hosts)]
        found.models = [m for m in found.models if any((m, c) in found.values for c in found.columns)]
        return render_template("overview.html", found=found, chart=charts.overview(found), metric=metric,
                               metrics=METRICS, resolution=fastvit_resolution, origins=origins, hosts=hosts,
                               all_hosts=all_hosts, headline=HEADLINE if metric == "latency" else ())

    @app.get("/claims")
    def claims():
        checks = check_all(engine)
        device, host = request.args.get("device", ""), request.args.get("host", "")
        claim, paper_only = request.args.get("claim", ""), request.args.get("paper") == "1"
        devices = sorted({c.device for c in checks if c.device})
        all_hosts = sorted({c.host for c in checks if c.host != "—"})
        shown = [c for c in checks if (not device or c.device == device) and (not host or c.host == host)
                 and (not claim or c.claim.key == claim) and (not paper_only or c.paper_protocol)]
        return render_template("claims.html", checks=shown, chart=charts.claims(shown),
                               devices=devices, hosts=all_hosts, device=device, host=host, claim=claim,
                               paper_only=paper_only, claims=CLAIMS)

    @app.get("/model/<name>")
    def model(name: str):
        try:
            canonical = canonical_model(name)
        except ValueError as exc:
            abort(404, str(exc))
        res = _int("resolution", baselines.own_resolution(resolution)(canonical))
        form = _choice("form", "reparam", ("reparam", "train"))
        batch = _int("batch", 1)
        device = request.args.get("device", "cpu")
        spec = (Run.model == canonical, Run.resolution == res, Run.form == form, Run.batch == batch)
        with Session(engine) as session:
            runs = latest_runs(session, *spec, valid_only=False)
            labels = {r.id: f"{r.host.hostname} {r.labelled_precise_target}" for r in runs}
            resolutions = sorted(set(session.scalars(select(Run.resolution).where(Run.model == canonical)
                                                     .distinct())))
        valid = [r for r in runs if r.status == "ok" and r.origin == "measured"]
        found = histograms(engine, [r.id for r in valid])
        hists = [(labels[r.id], found[r.id]) for r in valid if r.id in found]
        explained = breakdown(engine, canonical, res, form, device)
        layers = layer_table(engine, canonical, res, form, device)
        return render_template("model.html", model=canonical, resolution=res, form=form, batch=batch, device=device,
                               runs=runs, resolutions=resolutions, distribution=charts.distributions(hists),
                               explained=explained, breakdown_chart=charts.breakdown(explained), layers=layers,
                               outliers=layers.outliers(), delegation=delegation(engine, canonical, res, form),
                               precision=precision_coverage(engine, canonical, res, form), hists=len(hists))

    @app.get("/run/<int:run_id>")
    def run(run_id: int):
        with Session(engine) as session:
            found = session.get(Run, run_id)
            if found is None:
                abort(404, f"no run {run_id} in this database")
            host = found.host
            ops = sorted(found.op_profiles, key=lambda o: -o.total_ms)[:40]
            session.expunge_all()
        ordered = in_order(engine, run_id)
        series_query = {k: getattr(found, k) for k in SERIES_KEY}
        return render_template("run.html", run=found, host=host, ops=ops, samples=charts.samples(ordered),
                               ordered=ordered, series_query=series_query)

    @app.get("/history")
    def history_page():
        if all(request.args.get(k) for k in SERIES_KEY):
            key = {k: (_int(k, 0) if k in ("host_id", "resolution", "batch", "threads") else request.args[k])
                   for k in SERIES_KEY}
            found = history(engine, **key)
            if found.series is None:
                abort(404, "no valid run of that model spec on that target and host")
            return render_template("history.html", found=found, chart=charts.history(found))
        model_filter = request.args.get("model") or None
        if model_filter:
            try:
                model_filter = canonical_model(model_filter)
            except ValueError as exc:
                abort(404, str(exc))
        return render_template("series.html", series=series(engine, model=model_filter), model=model_filter or "")

    @app.get("/lab")
    def lab_page():
        return render_template("lab.html", hosts=lab(engine))

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


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"
