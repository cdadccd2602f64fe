"""The lab as the database knows it: every host that stored runs, the agents that ran them (a lab run records
its agent's name), what each host has run (per target: runs, valid runs, the latest status) and when each was
last seen. Counted in SQL."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..store import Host, Run


@dataclass
class TargetUse:
    target: str
    device: str
    runs: int
    valid: int
    last: datetime
    last_status: str


@dataclass
class LabHost:
    host: dict  # the host's stored facts
    origin: str  # measured | imported | published (a host only papers or logs describe)
    runs: int = 0  # whole models
    layer_runs: int = 0  # layers timed alone (`harness layers`)
    last: datetime | None = None
    agents: list[str] = field(default_factory=list)
    targets: list[TargetUse] = field(default_factory=list)


def lab(engine) -> list[LabHost]:
    """Every host, the most recently seen first."""
    ok = func.sum(case((Run.status == "ok", 1), else_=0))
    with Session(engine) as session:
        hosts = {h.id: h for h in session.scalars(select(Host))}
        found: dict[int, LabHost] = {}
        # a host's origin: measured if this harness timed anything there, else imported, else published
        origin = func.min(case((Run.published.is_(True), 2), (Run.imported.is_(True), 1), else_=0))
        layers = func.sum(case((Run.layer.is_not(None), 1), else_=0))
        per_host = session.execute(select(Run.host_id, func.count(Run.id), layers, func.max(Run.started_at), origin)
                                   .group_by(Run.host_id)).all()
        for host_id, runs, layer_runs, last, least in per_host:
            found[host_id] = LabHost({c.key: getattr(hosts[host_id], c.key) for c in Host.__table__.columns}, ("measured", "imported", "published")[least],
                                     runs - int(layer_runs or 0), int(layer_runs or 0), last)
        agent = Run.environment["agent"].as_string()
        for host_id, name in session.execute(select(Run.host_id, agent).where(agent.is_not(None)).distinct()):
            found[host_id].agents.append(name)
        latest = select(func.max(Run.id)).where(Run.layer.is_(None)).group_by(Run.host_id, Run.target)
        last_status = {(h, t): s for h, t, s in session.execute(
            select(Run.host_id, Run.target, Run.status).where(Run.id.in_(latest)))}
        for host_id, target, device, runs, valid, last in session.execute(
                select(Run.host_id, Run.target, func.max(Run.device), func.count(Run.id), ok, func.max(Run.started_at))
                .where(Run.layer.is_(None)).group_by(Run.host_id, Run.target).order_by(Run.target)):
            found[host_id].targets.append(TargetUse(target, device, runs, int(valid or 0), last,
                                                    last_status.get((host_id, target), "")))
    for entry in found.values():
        entry.agents.sort()
    return sorted(found.values(), key=lambda h: (h.origin != "measured", -(h.last.timestamp() if h.last else 0)))
