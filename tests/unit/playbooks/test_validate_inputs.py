"""site.yml's first play judges the inputs of every role a host will run, on the controller
(playbooks/tasks/validate_inputs.yml): run by ansible-playbook against hosts that cannot be
reached (TEST-NET-1 addresses over ssh with a one-second timeout), so a task that touched a host
would show as unreachable. Each host carries one bad value and must fail naming the variable,
the value and what is accepted; the good hosts pass."""
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = """- hosts: all
  gather_facts: false
  vars_files: [%(root)s/playbooks/vars/site.yml]
  roles: [llmfleet.deepseek.fleet_defaults]
  tasks:
    - ansible.builtin.import_tasks: %(root)s/playbooks/tasks/validate_inputs.yml
      tags: [always]
    - name: Show whose inputs were judged
      ansible.builtin.debug:
        msg: "checked on {{ inventory_hostname }}: {{ llmfleet_inputs_checked | join(',') }}"
      tags: [always]
"""
H100 = {
    "index": 0, "uuid": "GPU-00000000-0000-4000-8000-000000000000", "memory_total_mib": 81559,
    "architecture": "hopper", "power_limit_min_w": 200, "power_limit_max_w": 700, "power_limit_default_w": 700,
    "default_application_clocks": {"memory": 2619, "graphics": 1980}, "supported_memory_clocks": [2619, 1593],
    "supported_graphics_clocks": {"2619": [1980, 1500, 345], "1593": [1500, 345]},
    "max_clocks": {"graphics": 1980, "sm": 1980, "memory": 2619},
}
NO_GPU = {"present": False, "count": 0, "nvml_available": False, "nvml_reason": "no driver", "driver_version": None,
          "gpus": [], "architectures": [], "fabric_manager_needed": False}
ONE_H100 = {"present": True, "count": 1, "nvml_available": True, "nvml_reason": "", "driver_version": "580.95.05",
            "gpus": [H100], "architectures": ["hopper"], "fabric_manager_needed": False}
# What a lab host sets (inventories/lab): good inputs for every role of gpu_nodes.
GOOD = {
    "llmfleet_require_gpu": False, "llmfleet_gpu": NO_GPU,
    "trtllm_service_model_name": "lab-stand-in", "trtllm_service_model_revision": "r1",
    "trtllm_service_model_src": "/srv/llmfleet-stand-in/r1",
    "trtllm_service_instances": [{"name": "0", "port": 8000, "gpus": []}],
    "nginx_tls_api_keys": {"lab": "lab-only-key-0123456789abcdef0123456789abcdef"},
    "nginx_tls_certificate_source": "internal_ca", "nginx_tls_internal_ca_dir": "/nonexistent/edge-ca",
    "nvidia_container_toolkit_repo_key_checksum": "sha256:" + "0" * 64,
    "gpu_tuning_profile": "max_performance",
    "firewall_ssh_sources": ["10.98.10.0/24"],
}
GPU_HOST = dict(GOOD, llmfleet_require_gpu=True, llmfleet_gpu=ONE_H100,
                trtllm_service_instances=[{"name": "0", "port": 8000, "gpus": [0]}])
# host: (its variables over GOOD, what its failure must say)
BAD = {
    "bad-kv": ({"trtllm_service_kv_cache_free_gpu_memory_fraction": 1.5},
               "trtllm_service_kv_cache_free_gpu_memory_fraction: 1.5 is not accepted; give the share of GPU memory "
               "left after the weights for the KV cache, above 0 and at most 1"),
    "bad-clocks": ({"gpu_tuning_locked_clocks": {"min": 2000, "max": 1000}},
                   "gpu_tuning on bad-clocks: gpu_tuning_locked_clocks: {'min': 2000, 'max': 1000} is not accepted; "
                   "min 2000 MHz is above max 1000 MHz"),
    "bad-power": ({"gpu_tuning_power_limit": 0}, "gpu_tuning_power_limit: 0 is not accepted; give watts above 0"),
    "bad-gpus": ({"gpu_tuning_gpus": ["GPU0"]}, "gpu_tuning_gpus: 'GPU0' is not a GPU index (0, 1, ...) or a GPU uuid"),
    "bad-hold": ({"ubuntu_base_hold_patterns": ["^linux-(image"]},
                 "ubuntu_base on bad-hold: ubuntu_base_hold_patterns: '^linux-(image' is not a regular expression"),
    "bad-revision": ({"trtllm_service_model_revision": "main"},
                     "trtllm_service_model_revision: 'main' names something that moves (a branch or a ref)"),
    "bad-manifest": ({"trtllm_service_model_manifest": "config.json\nmodel.safetensors\n"},
                     "trtllm_service_model_manifest: 2 line(s) are not \"<sha256, 64 lower-case hex>  <relative path>\""),
    "bad-mode": ({"trtllm_service_install_mode": "docker"},
                 "value of trtllm_service_install_mode must be one of: preinstalled, venv, container, got: docker"),
    "bad-edge": ({"nginx_tls_upstream_fail_timeout": 0}, "nginx_tls_upstream_fail_timeout: 0 is not accepted; give seconds, at least 1"),
    "bad-toolkit": ({"nvidia_container_toolkit_cdi_spec": "nvidia.yaml"},
                    "nvidia_container_toolkit_cdi_spec: 'nvidia.yaml' is not accepted; give an absolute path"),
    # (The firewall role, owned elsewhere, names the module option, not the variable.)
    "bad-firewall": ({"firewall_ssh_port": 70000}, "70000"),
    # Against the GPU NVML read on the host (llmfleet_gpu): a limit the H100 does not accept.
    "bad-gpu-limit": (dict(GPU_HOST, gpu_tuning_power_limit=900),
                      "GPU 0 (GPU-00000000-0000-4000-8000-000000000000): gpu_tuning_power_limit 900 W is outside what "
                      "it accepts (200-700 W)"),
    "bad-open-module": (dict(GPU_HOST, nvidia_driver_kernel_module="open",
                             llmfleet_gpu=dict(ONE_H100, architectures=["volta"])),
                        "nvidia_driver_kernel_module: 'open' is not accepted on bad-open-module: its GPUs are older than Turing"),
}
GOOD_HOSTS = {"good-lab": GOOD, "good-gpu": GPU_HOST}
NOWHERE = {"ansible_connection": "ssh", "ansible_host": "192.0.2.1", "ansible_user": "nobody",
           "ansible_ssh_common_args": "-o ConnectTimeout=1 -o BatchMode=yes", "ansible_python_interpreter": sys.executable}


def run(tmp_path, hosts, *args, monitoring=None):
    (tmp_path / "pb.yml").write_text(PLAYBOOK % {"root": ROOT})
    inventory = {"llmfleet": {"children": {"gpu_nodes": {"hosts": dict((h, dict(NOWHERE, **v)) for h, v in hosts.items())}}}}
    if monitoring:
        inventory["llmfleet"]["hosts"] = dict((h, dict(NOWHERE, **v)) for h, v in monitoring.items())
    (tmp_path / "inv.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_HOST_KEY_CHECKING="False")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    done = subprocess.run([ansible, "-i", str(tmp_path / "inv.json"), str(tmp_path / "pb.yml")] + list(args),
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr


def recap(out):
    return dict((m.group(1), dict(ok=int(m.group(2)), unreachable=int(m.group(4)), failed=int(m.group(5))))
                for m in re.finditer(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M))


def failure_of(host, out):
    """The message of the task that failed on `host` (JSON result lines)."""
    marker = "fatal: [%s]: FAILED! => " % host
    if marker not in out:
        return None
    return json.JSONDecoder().raw_decode(out, out.index(marker) + len(marker))[0]["msg"]


def test_bad_inputs_fail_their_host_on_the_controller_naming_the_variable(tmp_path):
    hosts = dict((h, dict(GOOD, **case[0])) for h, case in BAD.items())
    hosts.update(GOOD_HOSTS)
    monitoring = {"mon-bad": {"llmfleet_monitoring": True, "monitoring_probe_interval": 1, "llmfleet_gpu": NO_GPU}}
    rc, out = run(tmp_path, hosts, monitoring=monitoring)
    assert rc != 0
    stats = recap(out)
    assert set(stats) == set(hosts) | {"mon-bad"}, out[-3000:]
    assert all(s["unreachable"] == 0 for s in stats.values()), "a task reached for a host:\n" + out[-3000:]
    for host, (_over, message) in BAD.items():
        msg = failure_of(host, out)
        assert msg is not None and stats[host]["failed"] == 1, (host, out[-3000:])
        assert message in msg, (host, msg)
    assert "monitoring_probe_interval 1 is not a number of seconds from 5 to 3600" in failure_of("mon-bad", out)
    for host in GOOD_HOSTS:
        assert stats[host]["failed"] == 0, (host, failure_of(host, out))
        assert ("checked on %s: ubuntu_base,firewall,nvidia_driver,nvidia_container_toolkit,gpu_tuning,trtllm_service,nginx_tls"
                % host) in out
    # GPU values are judged against llmfleet_gpu where it is known; the lab host says why the fit is not.
    assert "trtllm_service: the fit check is skipped on good-lab: it has no NVIDIA GPU" in out
    assert "the fit check is skipped on good-gpu" not in out


def test_a_host_whose_gpus_nvml_has_not_read_says_so(tmp_path):
    pci_only = dict(NO_GPU, present=True, count=8, nvml_reason="the NVIDIA driver is not loaded")
    rc, out = run(tmp_path, {"fresh-gpu": dict(GOOD, llmfleet_gpu=pci_only, gpu_tuning_power_limit=900,
                                               trtllm_service_instances=[{"name": "0", "port": 8000, "gpus": [0]}])})
    assert rc == 0, out[-3000:]
    assert ("gpu_tuning on fresh-gpu: the values were checked for form only, not against the GPUs: NVML does not answer "
            "yet (the NVIDIA driver is not loaded); nvidia_gpu checks them against each GPU before any change.") in " ".join(out.split())


@pytest.mark.parametrize("args, checked", [
    (["--tags", "nginx_tls"], "nginx_tls"),
    (["--tags", "gpu_tuning:apply,ubuntu_base"], "ubuntu_base,gpu_tuning"),
    (["--skip-tags", "trtllm_service"], "ubuntu_base,firewall,nvidia_driver,nvidia_container_toolkit,gpu_tuning,nginx_tls"),
])
def test_only_the_roles_the_tags_leave_are_judged(tmp_path, args, checked):
    """A --tags run judges the roles it runs: a bad value of a role it leaves out does not stop it."""
    rc, out = run(tmp_path, {"h": dict(GOOD, trtllm_service_model_revision="main")}, *args)
    assert rc == 0, out[-3000:]
    assert "checked on h: %s" % checked in out


def test_offline_hosts_are_judged_with_the_bundle_offline_repo_will_publish(tmp_path):
    """Defaults that point into the verified bundle (published in play 2) are judged with a stand-in."""
    key = tmp_path / "bundle-key.gpg"
    key.write_text("key")
    offline = dict(GOOD, llmfleet_offline=True, offline_repo_src="/mnt/bundle", offline_repo_key=str(key),
                   nvidia_container_toolkit_repo_key_checksum="", trtllm_service_model_src=None)
    offline.pop("trtllm_service_model_src")
    rc, out = run(tmp_path, {"offline-1": offline})
    assert rc == 0, out[-3000:]
    assert "checked on offline-1: offline_repo,ubuntu_base,firewall" in out
    rc, out = run(tmp_path, {"offline-2": dict(offline, offline_repo_src="mnt/bundle")})
    assert rc != 0 and "offline_repo_src \"mnt/bundle\" must be an absolute path" in failure_of("offline-2", out)


@pytest.mark.parametrize("inventory, extra", [
    ("lab", {"llmfleet_gpu": NO_GPU}),
    # The example's placeholders filled in (the key's checksum, the vault), on first-run GPU hosts.
    ("example", {"llmfleet_gpu": dict(NO_GPU, present=True, count=8, nvml_reason="no driver yet"),
                 "nvidia_container_toolkit_repo_key_checksum": "sha256:" + "0" * 64,
                 "vault_llmfleet_api_keys": {"team-a": "0123456789abcdef0123456789abcdef0123"}}),
    # The offline example leaves the edge's keys and certificate to the site: filled in here.
    ("offline", {"llmfleet_gpu": dict(NO_GPU, present=True, count=8, nvml_reason="no driver yet"),
                 "nginx_tls_api_keys": {"team-a": "0123456789abcdef0123456789abcdef0123"},
                 "nginx_tls_certificate_source": "internal_ca", "nginx_tls_internal_ca_dir": "/nonexistent/ca"}),
])
def test_the_shipped_inventories_pass(tmp_path, inventory, extra):
    key = tmp_path / "bundle-key.gpg"
    key.write_text("key")
    (tmp_path / "pb.yml").write_text(PLAYBOOK.replace("hosts: all", "hosts: llmfleet") % {"root": ROOT})
    extra = dict(extra, offline_repo_key=str(key), ansible_host="192.0.2.1",
                 **dict((k, v) for k, v in NOWHERE.items() if k != "ansible_host"))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_HOST_KEY_CHECKING="False")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    done = subprocess.run([ansible, "-i", os.path.join(ROOT, "inventories", inventory), "-e", json.dumps(extra),
                           str(tmp_path / "pb.yml")], capture_output=True, text=True, env=env, timeout=300, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    stats = recap(out)
    assert stats and all(s["failed"] == 0 and s["unreachable"] == 0 for s in stats.values()), out[-3000:]


def test_a_bad_serving_batch_stops_every_host_in_play_1(tmp_path):
    """llmfleet_serve_batch is a play keyword of the serving play (play 5): judged once, in play 1."""
    rc, out = run(tmp_path, {"h1": GOOD, "h2": GOOD}, "-e", "llmfleet_serve_batch=0")
    assert rc != 0
    assert ("site.yml: llmfleet_serve_batch: '0' is not accepted; give a number of hosts (1 or more) or a share like "
            "\"25%\" (1% to 100%). Nothing was changed.") in (failure_of("h1", out) or failure_of("h2", out))
    assert "checked on" not in out
