"""The controller side of the lab: find the agents, plan each one's jobs on that agent, send the jobs
(each bound to its agent by the agent's machine resource, never re-run elsewhere: another machine is
another device), and store every result here as it arrives, with the agent's host facts."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backends import BACKENDS

from ..measure.environment import git_revision
from ..measure.sweep import Repeats, SweepOutcome, store_result
from ..protocol import Job, RunResult, job_to_json
from ..store import start_sweep
from . import tasks
from .agent import MACHINE, TARGET

CONNECT_TIMEOUT_S = 5.0
POLL_S = 0.5


class ClusterError(RuntimeError):
    """The cluster cannot do what was asked; the message is one sentence saying why."""


@dataclass
class Agent:
    name: str
    address: str
    targets: list[str] = field(default_factory=list)
    host: dict = field(default_factory=dict)


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S):
    """A Dask client of the scheduler at `address`; ClusterError within `timeout_s` when it is not there."""
    from distributed import Client

    try:
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the lab's scheduler at {address} ({type(exc).__name__}); start it with "
                           "`harness scheduler` and check the address") from None


def _connected(client) -> dict[str, Agent]:
    """The harness agents connected now, by name (its machine resource), without host facts."""
    found = {}
    # Asked of the scheduler each time: client.scheduler_info() returns a cache that the client's own
    # background refresh overwrites with no workers, which once made every agent look gone mid-sweep.
    identity = client.sync(client.scheduler.identity, n_workers=-1)
    for address, worker in identity["workers"].items():
        resources = worker.get("resources", {})
        machine = [r for r in resources if r.startswith(MACHINE)]
        if machine:  # else a plain Dask worker, not a harness agent
            name = machine[0][len(MACHINE):]
            found[name] = Agent(name, address, sorted(r[len(TARGET):] for r in resources if r.startswith(TARGET)))
    return dict(sorted(found.items()))


def agents(client, names: list[str] | None = None) -> dict[str, Agent]:
    """The connected agents (all, or those named), each with its advertised targets and host facts."""
    found = _connected(client)
    if not found:
        raise ClusterError("no harness agent is connected to the scheduler; start one on each machine with "
                           "`harness agent --scheduler ADDRESS`")
    if names:
        unknown = [n for n in names if n not in found]
        if unknown:
            raise ClusterError(f"no agent named {', '.join(unknown)}; connected: {', '.join(sorted(found))}")
        found = {n: found[n] for n in names}
    facts = client.run(tasks.agent_host_facts, workers=[a.address for a in found.values()])
    for agent in found.values():
        agent.host = facts[agent.address]
    return found


def plan(client, found: dict[str, Agent], device: str, backends: list[str] | None, precision: str,
         delegate: str, compile_mode: str | None = None) -> dict[str, tuple[list, list]]:
    """Each agent's (targets to run, [(target, reason skipped)]) for `device`, decided on that agent;
    ClusterError naming what each agent has when none has the device."""
    by_address = client.run(tasks.plan_here, device, backends, precision, delegate, compile_mode,
                            workers=[a.address for a in found.values()])
    planned = {a.name: by_address[a.address] for a in found.values()}
    if not any(targets for targets, _ in planned.values()):
        have = "; ".join(f"{a.name}: {', '.join(a.targets) or 'no target'}" for a in found.values())
        raise ClusterError(f"no agent has an available target on device {device!r} ({have})")
    return planned


def statuses(client, found: dict[str, Agent]) -> dict[str, list]:
    """Every agent's target list with availability and reasons (`harness devices --cluster`)."""
    by_address = client.run(tasks.status_here, workers=[a.address for a in found.values()])
    return {a.name: by_address[a.address] for a in found.values()}


def _lost(agent: Agent, why: str) -> RunResult:
    return RunResult(status="crashed", error=f"agent {agent.name} lost{why}",
                     environment={"agent": agent.name, "recorded_by": "controller"})


class VersionWatch:
    """Warn once per agent whose harness revision or runtime versions differ from the controller's;
    each run records its own either way (environment.git_revision, environment.versions)."""

    def __init__(self, warn: Callable[[str], None]):
        self.warn, self.revision, self.warned = warn, git_revision(), set()

    def check(self, agent: str, job: Job, result: RunResult) -> None:
        env = result.environment or {}
        theirs, ours = env.get("versions") or {}, BACKENDS[job.target.backend].versions()
        differ = {k: (v, ours[k]) for k, v in theirs.items() if ours.get(k) not in (None, "?", v)}
        if env.get("git_revision") and env["git_revision"] != self.revision and (agent, "rev") not in self.warned:
            self.warned.add((agent, "rev"))
            self.warn(f"agent {agent} runs harness revision {env['git_revision']} (this controller: {self.revision}); "
                      "each of its runs records it")
        if differ and (agent, job.target.backend) not in self.warned:
            self.warned.add((agent, job.target.backend))
            self.warn(f"agent {agent} runs {', '.join(f'{k} {a} (here {b})' for k, (a, b) in differ.items())}; "
                      "each of its runs records its versions")


def run_cluster_sweep(engine, client, found: dict[str, Agent], jobs: dict[str, list[Job]], command: str,
                      on_done: Callable[[str, Job, RunResult], None] = lambda agent, job, result: None,
                      warn: Callable[[str], None] = lambda message: None,
                      repeats: Repeats = Repeats()) -> SweepOutcome:
    """Send every agent its jobs (each held to that agent), `repeats` fresh processes each; store each
    result the moment it arrives. An agent that leaves mid-sweep: its unfinished jobs are stored
    crashed ("agent NAME lost") and the others go on."""
    outcome = SweepOutcome(start_sweep(engine, command))
    versions = VersionWatch(warn)
    pending: dict = {}  # future -> (agent name, job index)

    def submit(name: str, i: int) -> None:
        future = client.submit(tasks.measure_here, job_to_json(jobs[name][i]), resources={MACHINE + name: 1},
                               pure=False, retries=0)
        pending[future] = (name, i)

    def store(name: str, i: int, result: RunResult, host: dict) -> None:
        job = jobs[name][i]
        timed = outcome.record((name, i), store_result(engine, job, result, host, outcome.sweep_id), result)
        on_done(name, job, result)
        if timed and not repeats.settled(outcome.medians[(name, i)]):
            submit(name, i)

    status = "interrupted"
    try:
        for name, agent_jobs in jobs.items():
            for i in range(len(agent_jobs)):
                submit(name, i)
        while pending:
            done = [future for future in pending if future.done()]
            if not done:
                time.sleep(POLL_S)
            for future in done:
                name, i = pending.pop(future)
                if future.status == "finished":
                    result_json, host = future.result()
                    result = RunResult.from_json(result_json)
                    versions.check(name, jobs[name][i], result)
                    store(name, i, result, host)
                else:  # the task itself failed on the agent (or the agent died and Dask gave up)
                    exc = future.exception() if future.status == "error" else None
                    store(name, i, _lost(found[name], f": {type(exc).__name__}: {exc}" if exc else ""),
                          found[name].host)
            alive = _connected(client)
            for future, (name, i) in list(pending.items()):
                if name not in alive:
                    pending.pop(future)
                    future.cancel()
                    store(name, i, _lost(found[name], " (disconnected mid-sweep)"), found[name].host)
        status = "finished"
    finally:
        for future in pending:
            future.cancel()
        outcome.finish(engine, status)
    return outcome


def wait_for_agents(client, count: int, timeout_s: float) -> None:
    """Block until `count` agents are connected (tests, scripts that start agents then a sweep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(_connected(client)) >= count:
            return
        time.sleep(0.2)
    raise ClusterError(f"fewer than {count} agents connected within {timeout_s:g} s")
