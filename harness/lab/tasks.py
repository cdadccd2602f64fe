"""What runs on an agent, as Dask tasks: plan its targets, time one job in a child process exactly as
a local sweep does, list its devices. Jobs and results cross the wire as the versioned protocol's
JSON, so an agent of another harness revision refuses a job it cannot read instead of guessing."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..protocol import job_from_json

# Set by harness.lab.agent when the agent starts: its name and its artifact cache (artifacts are
# exported and cached where they run: TensorRT engines and Core ML models are built per machine).
AGENT = {"name": None, "cache": None}


def agent_host_facts() -> dict:
    from ..measure.environment import host_facts

    facts = host_facts()
    return {**facts, "hostname": AGENT["name"] or facts["hostname"]}


def available_targets() -> list[str]:
    """Names of the targets this machine can run now (what `harness devices` lists as available)."""
    from ..measure.targets import target_status

    return [target.name for target, reason in target_status() if reason is None]


def plan_here(device: str, backends: list[str] | None, precision: str, delegate: str,
              compile_mode: str | None = None) -> tuple[list, list]:
    """devices.plan_targets on this agent: ([target], [(target, reason)])."""
    from ..measure.targets import plan_targets

    return plan_targets(device, backends, precision, delegate, compile_mode)


def status_here() -> list:
    from ..measure.targets import target_status

    return target_status()


def measure_here(job_json: str) -> tuple[str, dict]:
    """Time one job in a child process on this agent; (result JSON, the host the run belongs to: this agent,
    or the farm's device an AI Hub job ran on, whose token and job ledger are this agent's)."""
    from ..measure.child import measure_in_child
    from ..measure.farm import FARM_TIMEOUT_S, device_host, is_farm
    from ..measure.sweep import timeout_for

    job = job_from_json(job_json)
    cache = AGENT["cache"] or job.cache_dir
    Path(cache).mkdir(parents=True, exist_ok=True)
    job = dataclasses.replace(job, cache_dir=str(Path(cache).resolve()))
    farm = is_farm(job.target.device)
    result = measure_in_child(job, FARM_TIMEOUT_S if farm else timeout_for(job.policy))
    result.environment["agent"] = AGENT["name"]
    result.environment["agent_pid"] = os.getpid()
    return result.to_json(), device_host(job.target.device) if farm else agent_host_facts()

