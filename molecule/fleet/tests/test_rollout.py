"""A new model revision rolled over the fleet by site.yml's serve play (serial [1, 25%]: a canary,
then batches, of one host each on three hosts; max_fail_percentage 0). The revision serves on the
canary and is broken on the second host only: that host fails its health gate (the service role's
readiness wait), is rolled back and still serves the old revision, the rollout stops, and the third
host is never touched. Then the fleet goes back to r1. Runs after test_fleet.py (whose remediation
run shows batches of llmfleet_serve_serial) and before test_two_node.py."""
import os
import re
import subprocess

import testinfra

SCENARIO = os.environ["LLMFLEET_SCENARIO_DIR"]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ["fleet-node-1", "fleet-node-2", "fleet-node-3"]
SERVE_PLAY = "PLAY [Serve the model behind the TLS edge, a canary host first]"
EDGE_PROBE = """python3 -c '
import http.client, ssl
c = http.client.HTTPSConnection("127.0.0.1", 443, context=ssl._create_unverified_context(), timeout=5)
c.request("GET", "/v1/models", headers={"Authorization": "Bearer fleet-test-0123456789abcdef0123456789abcdef"})
r = c.getresponse()
print(r.status, r.read().decode().strip())
'"""


def _node(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def _site(*args):
    cmd = ["ansible-playbook", "-i", INVENTORY, os.path.join(SCENARIO, "converge.yml")] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)


def _batches(out):
    """The hosts of each batch of the serve play, in order (each batch prints the play's header)."""
    parts = out.split(SERVE_PLAY)[1:]
    batches = []
    for part in parts:
        part = re.split(r"\nPLAY \[|\nPLAY RECAP", part)[0]
        batches.append(sorted(set(re.findall(r"(fleet-node-\d)", part))))
    return batches


def _current(name):
    return _node(name).check_output("readlink /srv/llmfleet/models/stand-in/current")


def test_a_revision_broken_on_one_host_stops_the_rollout_there():
    # r2: the release on the canary and the third host, a release that never becomes ready on the
    # second (stand-in revisions of molecule/_shared/stand_in.yml).
    for name in HOSTS:
        source = "r-never-ready" if name == "fleet-node-2" else "r1"
        _node(name).run_expect([0], "rm -rf /srv/llmfleet-stand-in/r2 && cp -a /srv/llmfleet-stand-in/%s /srv/llmfleet-stand-in/r2" % source)
    run = _site("-e", '{"trtllm_service_model_revision": "r2", "trtllm_service_model_src": "/srv/llmfleet-stand-in/r2",'
                ' "trtllm_service_ready_timeout": 5}', "--tags", "trtllm_service")
    everything = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, everything[-4000:]
    # The canary took the release and serves it.
    assert _current("fleet-node-1") == "r2"
    assert _node("fleet-node-1").check_output(EDGE_PROBE).startswith("200 ")
    # The second host failed its health gate, went back to r1 and serves it.
    assert "did not become ready on fleet-node-2" in everything and "rolled back to r1, which is serving again" in everything
    assert _current("fleet-node-2") == "r1"
    assert _node("fleet-node-2").check_output(EDGE_PROBE).startswith("200 ")
    # The rollout stopped: the third host's batch never started.
    assert _batches(run.stdout) == [["fleet-node-1"], ["fleet-node-2"]], _batches(run.stdout)
    assert _current("fleet-node-3") == "r1"
    assert not _node("fleet-node-3").file("/srv/llmfleet/models/stand-in/r2").exists


def test_the_fleet_goes_back_to_the_old_revision():
    run = _site("--tags", "trtllm_service")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    recap = dict(re.findall(r"^(fleet-node-\d)\s+:\s+ok=\d+\s+changed=(\d+)", run.stdout, re.M))
    # Only the canary was on r2; the others already serve r1.
    assert int(recap["fleet-node-1"]) > 0 and recap["fleet-node-3"] == "0", recap
    for name in HOSTS:
        assert _current(name) == "r1"
        assert _node(name).check_output(EDGE_PROBE).startswith("200 ")
