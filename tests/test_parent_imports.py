"""The processes that only name, plan and store never load torch: `harness run`'s parent holds no 600 MB beside
the worker it times in, and every command starts in about a second instead of three."""
from __future__ import annotations

import json
import subprocess
import sys

# A whole `harness run` in one process, its worker replaced by one that dies at once (the run is stored as
# crashed): planning, the memory check (sized in a process of its own), the sweep and storing all happen here.
SWEEP = """
import json, sys
from typer.testing import CliRunner
from harness.cli import app
from harness.measure import child
child.WORKER = [sys.executable, "-c", "import sys; sys.exit(1)"]
db, cache = sys.argv[1], sys.argv[2]
result = CliRunner().invoke(app, ["run", "--device", "cpu", "--model", "t8", "--backend", "onnxruntime",
                                  "--backend", "torch", "--db", f"sqlite:///{db}", "--cache", cache])
print(json.dumps({"exit": result.exit_code, "output": result.output, "torch": "torch" in sys.modules,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm", "onnx"))}))
"""


def run_python(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_and_naming_models_loads_no_torch():
    found = run_python("import json, sys; import harness.cli, fastvit; from harness.spec import ModelSpec; "
                       "spec = ModelSpec('sa12', 384); v = fastvit.get_variant('d2.2.6.2-w64.128.256.512-r3-mmaa'); "
                       "print(json.dumps({'torch': 'torch' in sys.modules, 'variant': v.name}))")
    assert found == {"torch": False, "variant": "d2.2.6.2-w64.128.256.512-r3-mmaa"}


def test_the_torch_parts_of_fastvit_load_when_first_used():
    found = run_python("import json, sys, fastvit; before = 'torch' in sys.modules; m = fastvit.create_model('t8'); "
                       "print(json.dumps({'before': before, 'after': 'torch' in sys.modules, "
                       "'type': type(m).__name__}))")
    assert found == {"before": False, "after": True, "type": "FastViT"}


def test_a_sweeps_parent_never_loads_torch(tmp_path):
    found = run_python(SWEEP, str(tmp_path / "results.db"), str(tmp_path / "cache"))
    assert found["exit"] == 1, found["output"]  # both runs crashed with their worker, and were stored
    assert found["output"].count("crashed") >= 2 or "2 failed" in found["output"], found["output"]
    assert not found["torch"] and not found["loaded"], found["loaded"]
    # the memory check's answer was kept: the next sweep of the same spec starts no sizing process
    assert len(list((tmp_path / "cache" / "largest-tensor").glob("*.json"))) == 1
