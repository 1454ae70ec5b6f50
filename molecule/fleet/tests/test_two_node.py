"""One trtllm-serve instance over both hosts (the two-node layout, molecule/fleet/two_node.yml):
fleet-node-1 is the head, fleet-node-2 holds rank 1. Runs after test_fleet.py and test_rollout.py (the hosts serve
single-node instances of r1 then) and turns them into one MPI world with Debian's real OpenMPI
over the node sshd; the server and the launcher are TEST DOUBLES (no model, no GPU, no NCCL)."""
import os
import re
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)
from scenario import node as _node  # noqa: E402

HEAD, WORKER = "fleet-node-1", "fleet-node-2"
NODE_UNIT = "llmfleet-trtllm-node.service"
PROBE = """python3 -c '
import urllib.request
try:
    print(urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=2).status)
except Exception as exc:
    print("down", exc)
'"""
EDGE_PROBE = scenario.edge_probe(key="fleet-test-0123456789abcdef0123456789abcdef")


def _two_node(*args):
    return scenario.playbook("two_node.yml", *args, timeout=600)


def _recap_changed(run):
    """changed= of each host in the PLAY RECAP, in its order."""
    return [counts["changed"] for counts in scenario.recap(run).values()]


def _rank_pids(worker):
    # ("[l]" keeps pgrep from matching the shell that runs it.)
    out = worker.run("pgrep -f '[l]lmapi_launch.py'").stdout.split()
    return sorted(int(pid) for pid in out)


@pytest.fixture(scope="module")
def check_first():
    """--check --diff while both hosts still serve single-node instances."""
    return _two_node("--check", "--diff")


@pytest.fixture(scope="module")
def runs(check_first):
    first = _two_node()
    second = _two_node()
    check = _two_node("--check", "--diff")
    return first, second, check


def test_check_mode_says_what_it_would_do_and_changes_nothing(check_first):
    assert check_first.returncode == 0, check_first.stdout + check_first.stderr
    assert any(_recap_changed(check_first)), check_first.stdout
    head, worker = _node(HEAD), _node(WORKER)
    assert "mpirun" not in head.file("/etc/systemd/system/llmfleet-trtllm@.service").content_string
    assert not worker.file("/etc/systemd/system/" + NODE_UNIT).exists
    assert worker.service("llmfleet-trtllm@0.service").is_running


def test_two_hosts_converge_then_change_nothing(runs):
    first, second, check = runs
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr
    assert second.returncode == 0 and _recap_changed(second) == [0, 0], second.stdout[-4000:]
    assert check.returncode == 0 and _recap_changed(check) == [0, 0], check.stdout[-4000:]
    print("two-node converge: %s" % " ".join(first.stdout.split("PLAY RECAP")[-1].split()))


def test_one_world_over_two_hosts(runs):
    head, worker = _node(HEAD), _node(WORKER)
    # The head runs mpirun in its sandboxed instance; rank 0 serves through the edge.
    main_pid = head.check_output("systemctl show -p MainPID --value llmfleet-trtllm@0.service")
    assert head.check_output("cat /proc/%s/comm" % main_pid) == "mpirun"
    assert head.check_output(EDGE_PROBE).startswith("200 ")
    # The worker gave up its own instance; rank 1 runs in its node unit as the service user,
    # with the node's environment (from node.env through the node command).
    assert not worker.service("llmfleet-trtllm@0.service").is_running
    assert not worker.service("llmfleet-trtllm@0.service").is_enabled
    assert worker.service(NODE_UNIT).is_running and worker.service(NODE_UNIT).is_enabled
    pids = _rank_pids(worker)
    assert len(pids) == 1, pids
    assert NODE_UNIT in worker.check_output("cat /proc/%d/cgroup" % pids[0])
    assert worker.check_output("ps -o user= -p %d" % pids[0]) == "trtllm"
    log = head.check_output("journalctl -u llmfleet-trtllm@0.service --no-pager -o cat")
    assert "worker rank 1 of 2 on %s, model /srv/llmfleet/models/stand-in/current (/srv/llmfleet/models/stand-in/r1)" % (
        worker.check_output("hostname")) in log
    # The node sshd: on the fabric address only, the head's key only, and only orted behind it.
    address = worker.check_output("awk '/^ListenAddress/ {print $2}' /etc/llmfleet/trtllm/node/sshd_config")
    assert worker.socket("tcp://%s" % address).is_listening
    assert not worker.socket("tcp://0.0.0.0:2222").is_listening
    keys = worker.check_output("grep -v '^#' /etc/llmfleet/trtllm/node/authorized_keys")
    assert keys.startswith('restrict,from="%s",command="/usr/local/bin/llmfleet-trtllm-node-command" ssh-ed25519 ' % (
        head.check_output("grep -v '^#' /etc/llmfleet/trtllm/node/hostfile | head -1 | cut -d' ' -f1")))
    shell = head.run("cd / && setpriv --reuid trtllm --regid trtllm --clear-groups ssh -F /etc/llmfleet/trtllm/node/ssh_config "
                     "%s id" % address.rsplit(":", 1)[0])
    assert shell.rc == 126 and "refused: only orted may run here, not 'id'" in shell.stderr, shell.stderr
    # Exposure as shipped (PrivateUsers=yes; containers here cannot run it) and as run here.
    for name, unit, path in ((HEAD, "llmfleet-trtllm@0.service", "/etc/systemd/system/llmfleet-trtllm@.service"),
                             (WORKER, NODE_UNIT, "/etc/systemd/system/" + NODE_UNIT)):
        node = _node(name)
        copy = "/run/llmfleet-score-" + unit
        node.check_output("sed 's/^PrivateUsers=no$/PrivateUsers=yes/' %s > %s" % (path, copy))
        scores = [float(re.search(r"Overall exposure level for \S+: ([\d.]+)", node.check_output(cmd)).group(1))
                  for cmd in ("systemd-analyze security --offline=true %s" % copy, "systemd-analyze security --no-pager %s" % unit)]
        print("%s %s: exposure %.1f as shipped, %.1f as run here (PrivateUsers=no)" % (name, unit, scores[0], scores[1]))
        assert scores[0] <= 1.5 and scores[1] <= 1.5, scores


def test_a_killed_worker_rank_restarts_the_world(runs):
    head, worker = _node(HEAD), _node(WORKER)
    before = _rank_pids(worker)
    worker.run("pkill -9 -f '[l]lmapi_launch.py'")
    started = time.monotonic()
    seen_down = False
    while time.monotonic() - started < 60:
        status = head.check_output(PROBE)
        seen_down = seen_down or status != "200"
        if seen_down and status == "200" and _rank_pids(worker) and _rank_pids(worker) != before:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    print("worker rank killed -> world restarted and ready in %.1f s" % elapsed)
    assert seen_down and elapsed < 45, elapsed
    assert head.check_output(EDGE_PROBE).startswith("200 ")


def test_a_revision_that_never_becomes_ready_rolls_back_both_hosts(runs):
    """The last test: the head rolls both hosts back to r1, serves again, and both hosts fail."""
    bad = '{"trtllm_service_model_revision": "r-never-ready", "trtllm_service_model_src": "/srv/llmfleet-stand-in/r-never-ready",' \
          ' "trtllm_service_ready_timeout": 5}'
    started = time.monotonic()
    run = _two_node("-e", bad)
    print("two-node rollback run: %.1f s" % (time.monotonic() - started))
    everything = scenario.flat(run)
    assert run.returncode != 0
    assert "did not become ready on fleet-node-1" in everything and "rolled back to r1, which is serving again" in everything
    assert "trtllm_service on fleet-node-2: the head fleet-node-1 failed" in everything
    for name in (HEAD, WORKER):
        assert _node(name).check_output("readlink /srv/llmfleet/models/stand-in/current") == "r1"
    assert _node(HEAD).check_output(EDGE_PROBE).startswith("200 ")
    assert len(_rank_pids(_node(WORKER))) == 1
