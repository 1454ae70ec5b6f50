"""Renders the monitoring role's templates through Ansible itself (the role's own validation
first), for the tests of the rules, the scrape configuration, the edge's mtail program and the
probe. promtool and mtail come from Debian's packages (`make tools`)."""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "monitoring"
HERE = pathlib.Path(__file__).resolve().parent
TOOLS = ROOT / ".cache" / "tools" / "bin"
PROMTOOL = str(TOOLS / "promtool")
MTAIL = str(TOOLS / "mtail")

INVENTORY = {
    "llmfleet": {
        "children": {
            "gpu_nodes": {"hosts": {
                "node-1": {"ansible_host": "10.0.0.11"},
                "node-2": {"ansible_host": "10.0.0.12", "llmfleet_edge": False},
                "lab-1": {"ansible_host": "10.0.0.13", "llmfleet_require_gpu": False,
                          "llmfleet_monitoring_address": "192.0.2.13"},
            }},
            "monitoring_servers": {"hosts": {"mon-1": {"ansible_host": "10.0.0.20"}}},
        },
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "llmfleet_monitoring_sources": ["10.0.0.20"]},
    }
}


def run_playbook(tmp, extra_vars=None, limit=None, inventory=None):
    inv = tmp / "inventory.yml"
    inv.write_text(yaml.safe_dump(inventory or INVENTORY))
    out = tmp / "out"
    ev = {"out_dir": str(out), "role_dir": str(ROLE)}
    ev.update(extra_vars or {})
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.default",
               ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"), ANSIBLE_FACT_CACHING="memory",
               ANSIBLE_STRATEGY="linear", PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inv),
           str(HERE / "render.yml"), "-e", json.dumps(ev)]
    if limit:
        cmd += ["--limit", limit]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, out


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """The files of every host with the role's defaults (and two published instances)."""
    tmp = tmp_path_factory.mktemp("monitoring-defaults")
    proc, out = run_playbook(tmp, {"llmfleet_inference_upstreams": [
        {"name": "a", "port": 8000, "gpus": [0]}, {"name": "b", "port": 8001, "gpus": [1]}]})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return out


def promtool(*args, cwd=None, stdin=None):
    return subprocess.run([PROMTOOL, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120,
                          check=False)
