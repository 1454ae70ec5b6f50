"""A new model revision rolled over the fleet by site.yml's serve play (serial [1, 25%]: a canary,
then batches; max_fail_percentage 0): a release that never becomes ready fails the canary's health
gate (the service role's readiness wait); the canary is rolled back and serves the old revision,
the rollout stops, and the other host is never touched. Runs after test_fleet.py (whose
remediation run shows the canary, then batches of llmfleet_serve_serial) and before
test_two_node.py."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)
from scenario import node as _node  # noqa: E402

HOSTS = ["fleet-node-1", "fleet-node-2"]
SERVE_PLAY = "PLAY [Serve the model behind the TLS edge, a canary host first]"
EDGE_PROBE = scenario.edge_probe(key="fleet-test-0123456789abcdef0123456789abcdef")


def _site(*args):
    return scenario.playbook("converge.yml", *args)


def test_a_release_that_never_becomes_ready_stops_after_the_canary():
    bad = '{"trtllm_service_model_revision": "r-never-ready", "trtllm_service_model_src": "/srv/llmfleet-stand-in/r-never-ready",' \
          ' "trtllm_service_ready_timeout": 5}'
    run = _site("-e", bad, "--tags", "trtllm_service")
    out = " ".join(run.stdout.split())
    everything = scenario.flat(run)  # (the failure's message is on stderr)
    assert run.returncode != 0
    assert "did not become ready on fleet-node-1" in everything and "rolled back to r1, which is serving again" in everything
    assert "NO MORE HOSTS LEFT" in out
    serve_play = out[out.index(SERVE_PLAY):]
    assert "fleet-node-2" not in serve_play[:serve_play.index("PLAY RECAP")], serve_play[:3000]
    for name in HOSTS:
        node = _node(name)
        assert node.check_output("readlink /srv/llmfleet/models/stand-in/current") == "r1"
        assert node.check_output(EDGE_PROBE).startswith("200 ")
    assert not _node("fleet-node-2").file("/srv/llmfleet/models/stand-in/r-never-ready").exists
