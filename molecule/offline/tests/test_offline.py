"""The air-gapped flow, seen from outside: a node with no network converged from the bundle, apt
reading nothing else, the bundle refused when one byte of it changes, settings that would reach
outside named before any change, and a rebuild of the bundle that reuses what is there."""
import os
import re
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

BUNDLES = os.environ["LLMFLEET_BUNDLES"]          # on the controller; /mnt/bundles on the node
BUNDLE = os.path.join(BUNDLES, "llmfleet-debian-bookworm")
testinfra_hosts = ["offline-node"]

EDGE_PROBE = scenario.edge_probe(key="offline-test-0123456789abcdef0123456789abcdef")


def _site(*args):
    return scenario.playbook("converge.yml", "--limit", "offline-node", *args)


def test_the_node_has_no_route_out(host):
    # Only the loopback interface, no route at all: nothing on it can reach any other address.
    assert host.check_output("ls /sys/class/net") == "lo"
    assert host.file("/proc/net/route").content_string.strip().count("\n") == 0
    probe = host.run("python3 -c 'import socket; socket.create_connection((\"172.17.0.1\", 3142), timeout=3)'")
    assert probe.rc != 0 and "Network is unreachable" in probe.stderr


def test_apt_reads_only_the_bundle(host):
    uris = host.check_output("apt-get indextargets --format '$(URI)'").split()
    assert uris and all(uri.startswith("file:/mnt/bundles/llmfleet-debian-bookworm/apt/") for uri in uris), uris
    sources = host.check_output("ls /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null || true")
    active = [name for name in sources.split() if name.endswith((".list", ".sources")) and ":" not in name]
    assert active == ["llmfleet-bundle.sources"], sources
    text = host.file("/etc/apt/sources.list.d/llmfleet-bundle.sources").content_string
    fields = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert "Signed-By: /etc/llmfleet/bundle-key.gpg" in fields and not [f for f in fields if "trusted" in f.lower()], text
    # What was there before is kept, moved aside.
    assert host.file("/etc/apt/sources.list.llmfleet-offline").exists or \
        host.file("/etc/apt/sources.list.d/debian.sources.llmfleet-offline").exists


def test_what_the_roles_installed_came_from_the_bundle(host):
    policy = host.check_output("apt-cache policy nginx nvidia-smi chrony")
    assert policy.count("*** ") == 3, policy
    assert "deb.debian.org" not in policy and policy.count("file:/mnt/bundles/llmfleet-debian-bookworm/apt") >= 3
    nvml = host.check_output("/opt/llmfleet/nvml/bin/pip show nvidia-ml-py")
    assert re.search(r"^Version: \S+", nvml, re.M)
    # The model revision is the bundle's copy (the node has no other source for it).
    served = host.file("/srv/llmfleet/models/stand-in/r1/config.json").content_string
    with open(os.path.join(BUNDLE, "models/stand-in/r1/config.json")) as handle:
        assert served == handle.read()
    out = host.check_output(EDGE_PROBE)
    assert out.startswith("200 ") and "/srv/llmfleet/models/stand-in/current" in out


@pytest.fixture(scope="module")
def tampered():
    """Copies of the bundle beside it (the node sees them under /mnt/bundles), one byte changed."""
    made = {}
    for name, pattern in (("deb", r"^apt/pool/.*/?nginx[^/]*\.deb$"), ("wheel", r"^wheels/nvidia_ml_py-.*\.whl$")):
        copy = os.path.join(BUNDLES, "tampered-" + name)
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(BUNDLE, copy, symlinks=True)
        with open(os.path.join(copy, "MANIFEST.sha256")) as handle:
            listed = [line.split("  ", 1)[1].strip() for line in handle]
        matching = [rel for rel in listed if re.search(pattern, rel)]
        assert matching, "the bundle lists no file like %s" % pattern
        rel = matching[0]
        with open(os.path.join(copy, rel), "r+b") as handle:
            handle.seek(100)
            byte = handle.read(1)
            handle.seek(100)
            handle.write(bytes([byte[0] ^ 0x01]))
        made[name] = ("/mnt/bundles/tampered-" + name, rel)
    yield made
    for name in made:
        shutil.rmtree(os.path.join(BUNDLES, "tampered-" + name), ignore_errors=True)


@pytest.mark.parametrize("kind", ["deb", "wheel"])
def test_a_bundle_with_one_changed_byte_is_refused_before_anything_is_installed(host, tampered, kind):
    src, rel = tampered[kind]
    before = host.file("/etc/apt/sources.list.d/llmfleet-bundle.sources").content_string
    run = _site("-e", '{"offline_repo_src": "%s"}' % src)
    everything = scenario.flat(run)
    assert run.returncode != 0, everything
    assert "is refused, nothing was installed from it: %s altered" % rel in everything
    # The run stopped at the verification: no role after it ran, apt still reads the good bundle.
    # (site.yml's first play judged the roles' inputs on the controller; after it, no role ran.)
    after_play1 = run.stdout.split("PLAY [Prepare the base operating system", 1)[-1]
    assert "PLAY [Prepare the base operating system" in run.stdout, run.stdout
    assert "TASK [ubuntu_base" not in after_play1 and "TASK [gpu_tuning" not in after_play1
    assert "changed=0" in run.stdout and not re.search(r"changed=[1-9]", run.stdout)
    assert host.file("/etc/apt/sources.list.d/llmfleet-bundle.sources").content_string == before


def test_settings_that_reach_outside_are_named_before_any_change():
    bad = ('{"ubuntu_base_apt_mirror": "http://deb.debian.org/debian", "trtllm_service_model_source": "http",'
           ' "trtllm_service_model_src": "https://huggingface.co/deepseek-ai/DeepSeek-R1", "nvidia_driver_source": "cuda_repo"}')
    run = _site("-e", bad)
    everything = scenario.flat(run)
    assert run.returncode != 0
    assert "llmfleet_offline is true, but 3 setting(s) would reach outside the site:" in everything
    for named in ("ubuntu_base_apt_mirror http://deb.debian.org/debian",
                  "trtllm_service_model_src https://huggingface.co/deepseek-ai/DeepSeek-R1",
                  "nvidia_driver_source cuda_repo (NVIDIA's CUDA repository"):
        assert named in everything
    assert "TASK [offline_repo" not in run.stdout and not re.search(r"changed=[1-9]", run.stdout)


def test_rebuilding_the_bundle_with_the_same_inputs_reuses_and_rechecks_it():
    with open(os.path.join(BUNDLE, "MANIFEST.sha256")) as handle:
        manifest = handle.read()
    run = scenario.playbook(os.path.join(scenario.project_dir(), "playbooks", "bundle.yml"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"offline-builder\s*:.*changed=0 ", run.stdout), run.stdout[-3000:]
    assert "Check the bundle as a target will" in run.stdout
    with open(os.path.join(BUNDLE, "MANIFEST.sha256")) as handle:
        assert handle.read() == manifest
