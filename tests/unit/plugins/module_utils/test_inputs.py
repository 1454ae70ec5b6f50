"""Role inputs judged on the controller (plugins/module_utils/inputs.py): each role's rules with
its shipped defaults (accepted) and with bad values (named: the variable, the value, what is
accepted)."""
import pathlib
import re

import pytest
import yaml

from ansible_collections.llmfleet.deepseek.plugins.module_utils import inputs

ROOT = pathlib.Path(__file__).resolve().parents[4]
# What the templated defaults render to on a host outside llmfleet_offline.
RENDERED = {
    "gpu_tuning_wheelhouse": "", "trtllm_service_wheelhouse": "", "trtllm_service_image_archive": "",
    "trtllm_service_model_src": "", "monitoring_dcgm_exporter_image_archive": "",
    "monitoring_sources": [], "monitoring_listen_address": "127.0.0.1", "monitoring_edge": True,
    "monitoring_edge_status_port": 8099, "monitoring_edge_access_log": "/var/log/nginx/llmfleet-access.log",
    "monitoring_probe_instances": [], "monitoring_drain_file": "/var/lib/llmfleet/edge/drain",
    "monitoring_dcgm_exporter": True, "monitoring_prometheus": False,
    "nginx_tls_server_names": ["gpu-a01"], "nginx_tls_internal_ca_dir": "/root/.local/share/llmfleet/edge-ca",
    "nginx_tls_upstreams": [], "nginx_tls_drain_file": "/var/lib/llmfleet/edge/drain",
    "nginx_tls_access_log": "/var/log/nginx/llmfleet-access.log", "nginx_tls_status_port": 8099,
    "nvidia_container_toolkit_source": "nvidia_repo", "trtllm_service_node_address": "10.0.0.1",
    "firewall_monitoring_sources": [],
    # The listening ports: fleet_defaults' llmfleet_ports.
    "nginx_tls_https_port": 443, "nginx_tls_http_port": 80, "monitoring_node_exporter_port": 9100,
    "monitoring_nginx_exporter_port": 9113, "monitoring_mtail_port": 3903, "monitoring_dcgm_exporter_port": 9400,
    "firewall_edge_ports": [443, 80], "firewall_monitoring_ports": [9100, 9400, 9113, 3903],
}
H100 = {
    "index": 0, "uuid": "GPU-00000000-0000-4000-8000-000000000000",
    "power_limit_min_w": 200, "power_limit_max_w": 700, "power_limit_default_w": 700,
    "default_application_clocks": {"memory": 2619, "graphics": 1980},
    "supported_memory_clocks": [2619, 1593],
    "supported_graphics_clocks": {"2619": [1980, 1500, 345], "1593": [1500, 345]},
    "max_clocks": {"graphics": 1980, "sm": 1980, "memory": 2619},
}
GPU_NVML = {"present": True, "count": 1, "nvml_available": True, "gpus": [H100], "architectures": ["hopper"]}
GPU_PCI_ONLY = {"present": True, "count": 2, "nvml_available": False, "nvml_reason": "the NVIDIA driver is not loaded",
                "gpus": [], "architectures": []}


# What every inventory sets where no default can: the model trtllm_service serves.
SITE = {"trtllm_service": {"trtllm_service_model_name": "deepseek-r1", "trtllm_service_model_revision": "2025-05-28-fp8",
                           "trtllm_service_model_src": "/mnt/models/deepseek-r1/2025-05-28-fp8"}}


def defaults(role, **over):
    values = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    for name, value in list(values.items()):
        if name in RENDERED:
            values[name] = RENDERED[name]
    values.update(SITE.get(role, {}))
    if role == "gpu_tuning":
        values["gpu_tuning_profiles"]["power_capped"]["power_limit"] = 0
    values.update(over)
    return values


def spec(role):
    return yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]


def judge(role, context=None, **over):
    return inputs.input_problems(role, defaults(role, **over), spec(role), dict({"host": "gpu-a01"}, **(context or {})))


@pytest.mark.parametrize("role", sorted(r for r in inputs.ROLES if (ROOT / "roles" / r / "defaults" / "main.yml").exists()))
def test_the_shipped_defaults_are_accepted(role):
    result = judge(role)
    assert result["problems"] == [] and result["types_ok"] is True


# -- argument specs ------------------------------------------------------------------------------
@pytest.mark.parametrize("role, over, message", [
    ("trtllm_service", {"trtllm_service_install_mode": "docker"},
     "value of trtllm_service_install_mode must be one of: preinstalled, venv, container, got: docker"),
    ("ubuntu_base", {"ubuntu_base_time_sync": "sometimes"}, "ubuntu_base_time_sync"),
    ("gpu_tuning", {"gpu_tuning_power_cap_w": "lots"}, "gpu_tuning_power_cap_w"),
    ("nginx_tls", {"nginx_tls_api_keys": "key"}, "nginx_tls_api_keys"),
    ("trtllm_service", {"trtllm_service_kv_cache_free_gpu_memory_fraction": "most"},
     "trtllm_service_kv_cache_free_gpu_memory_fraction' is of type str and we were unable to convert to float"),
])
def test_the_argument_spec_is_judged_first_and_alone(role, over, message):
    result = judge(role, **over)
    assert result["types_ok"] is False
    assert any(message in p for p in result["problems"]), result


# -- ubuntu_base ---------------------------------------------------------------------------------
@pytest.mark.parametrize("over, message", [
    ({"ubuntu_base_hold_patterns": ["^linux-("]}, "ubuntu_base_hold_patterns: '^linux-(' is not a regular expression (missing ), unterminated subpattern"),
    ({"ubuntu_base_hold_patterns": ["*nvidia"]}, "ubuntu_base_hold_patterns: '*nvidia' is not a regular expression (nothing to repeat"),
    ({"ubuntu_base_hold_patterns": [""]}, "give a non-empty regular expression"),
    ({"ubuntu_base_unattended_upgrades_blacklist": ["^nvidia-[", "ok"]}, "ubuntu_base_unattended_upgrades_blacklist: '^nvidia-[' is not a regular expression"),
    ({"ubuntu_base_unattended_upgrades_blacklist": ['^a"b']}, "cannot hold a double quote"),
    ({"ubuntu_base_apt_mirror": "deb.debian.org/debian"},
     "ubuntu_base_apt_mirror: 'deb.debian.org/debian' is not a URL; give an http://, https:// or file:// URL, or empty"),
    ({"ubuntu_base_apt_proxy": "file:///x"}, "ubuntu_base_apt_proxy: 'file:///x' is not a URL; give an http:// or https:// URL"),
    ({"ubuntu_base_apt_mirror": "http:///ubuntu"}, "ubuntu_base_apt_mirror: 'http:///ubuntu' is not a URL"),
    ({"ubuntu_base_apt_cache_valid_time": -1}, "ubuntu_base_apt_cache_valid_time: -1 is not accepted; give seconds, 0 or more"),
    ({"ubuntu_base_ntp_servers": ["ntp1 iburst"]}, "ubuntu_base_ntp_servers: 'ntp1 iburst' is not accepted; give host names or IP addresses"),
    ({"ubuntu_base_packages_extra": ["Vim"]}, "ubuntu_base_packages_extra: 'Vim' is not accepted; give Debian package names"),
    ({"ubuntu_base_apt_components": ["main universe"]}, "ubuntu_base_apt_components: 'main universe' is not accepted"),
    ({"ubuntu_base_sysctl_extra": {"vm.swappiness": True}}, 'refused {"vm.swappiness": true}'),
    ({"ubuntu_base_sysctl_extra": {"vm.swappiness": [10]}}, 'refused {"vm.swappiness": [10]}'),
    ({"ubuntu_base_limits_nofile": 0}, "ubuntu_base_limits_nofile: 0 is not accepted; give 'unlimited' or a number above 0"),
    ({"ubuntu_base_limits_memlock": "lots"}, "ubuntu_base_limits_memlock: 'lots' is not accepted"),
    ({"ubuntu_base_service_user": "Root"}, "ubuntu_base_service_user: 'Root' is not a POSIX name"),
    ({"ubuntu_base_service_home": "var/lib/llmfleet"}, "ubuntu_base_service_home: 'var/lib/llmfleet' is not accepted; give an absolute path"),
    ({"ubuntu_base_service_user_groups": ["video", "Render"]}, "ubuntu_base_service_user_groups: 'Render' is not accepted"),
])
def test_ubuntu_base_refuses(over, message):
    problems = judge("ubuntu_base", **over)["problems"]
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize("over", [
    {"ubuntu_base_hold_patterns": []},
    {"ubuntu_base_hold_patterns": ["^linux-image-[0-9.]+-[0-9]+-generic$"]},
    {"ubuntu_base_apt_proxy": "http://cache.site.internal:3142"},
    {"ubuntu_base_apt_mirror": "file:///srv/mirror"},
    {"ubuntu_base_apt_security_mirror": "https://mirror.site.internal/ubuntu"},
    {"ubuntu_base_ntp_servers": ["10.0.0.1", "ntp.site.internal", "fd00::1"]},
    {"ubuntu_base_packages_extra": ["htop", "nvtop=3.0.2-1", "libstdc++6"]},
    {"ubuntu_base_limits_nofile": "unlimited", "ubuntu_base_limits_memlock": 0},
    {"ubuntu_base_manage_sysctl": False, "ubuntu_base_sysctl_extra": {"vm.swappiness": True}},
])
def test_ubuntu_base_accepts(over):
    assert judge("ubuntu_base", **over)["problems"] == []


# -- gpu_tuning ----------------------------------------------------------------------------------
@pytest.mark.parametrize("over, message", [
    ({"gpu_tuning_locked_clocks": {"min": 2000, "max": 1000}},
     "gpu_tuning_locked_clocks: {'min': 2000, 'max': 1000} is not accepted; min 2000 MHz is above max 1000 MHz"),
    ({"gpu_tuning_power_limit": 0}, "gpu_tuning_power_limit: 0 is not accepted; give watts above 0, or 'default'"),
    ({"gpu_tuning_power_limit": -300}, "gpu_tuning_power_limit: -300 is not accepted"),
    ({"gpu_tuning_power_limit": "lots"}, "gpu_tuning_power_limit: 'lots' is not accepted; give watts as an integer, or 'default'"),
    ({"gpu_tuning_application_clocks": {"memory": 2619}}, "gpu_tuning_application_clocks: {'memory': 2619} is not accepted"),
    ({"gpu_tuning_application_clocks": {"memory": -1, "graphics": 1980}}, "clocks are MHz above 0 (memory)"),
    ({"gpu_tuning_compute_mode": "exclusive_thread"}, "gpu_tuning_compute_mode: 'exclusive_thread' is not accepted; give one of default"),
    ({"gpu_tuning_gpus": ["GPU0"]}, "gpu_tuning_gpus: 'GPU0' is not a GPU index (0, 1, ...) or a GPU uuid"),
    ({"gpu_tuning_gpus": ["0", "0"]}, "gpu_tuning_gpus: 0 named more than once"),
    ({"gpu_tuning_profile": "turbo"}, "gpu_tuning_profile: profile 'turbo' does not exist. Accepted: one of"),
    ({"gpu_tuning_profile": "power_capped"}, "power_capped needs gpu_tuning_power_cap_w > 0"),
    ({"gpu_tuning_power_cap_w": -5}, "gpu_tuning_power_cap_w: -5 is not accepted; give watts, 0 or more"),
    ({"gpu_tuning_profiles": {"none": {}, "mine": {"power_limt": 500}}}, "profile 'mine' has unknown settings power_limt"),
    ({"gpu_tuning_profile": "mine", "gpu_tuning_profiles": {"mine": {"locked_clocks": {"min": 9, "max": 1}}}},
     "gpu_tuning_profiles.mine.locked_clocks: {'min': 9, 'max': 1} is not accepted; min 9 MHz is above max 1 MHz"),
    ({"gpu_tuning_venv": "opt/nvml"}, "gpu_tuning_venv: 'opt/nvml' is not accepted; give an absolute path"),
    ({"gpu_tuning_pip_index_url": "pypi.site.internal"}, "gpu_tuning_pip_index_url: 'pypi.site.internal' is not a URL"),
    ({"gpu_tuning_nvml_version": 13.58}, "gpu_tuning_nvml_version: 13.58 is not a version of nvidia-ml-py"),
])
def test_gpu_tuning_refuses_without_a_gpu(over, message):
    """Judged without any GPU fact: the same on a GPU-less host and before NVML answers."""
    for gpu in (None, {"present": False, "count": 0, "gpus": []}, GPU_PCI_ONLY):
        problems = judge("gpu_tuning", {"gpu": gpu}, **over)["problems"]
        assert len(problems) == 1 and message in problems[0], (gpu, problems)


def test_gpu_tuning_offline_needs_a_wheelhouse():
    problems = judge("gpu_tuning", {"offline": True})["problems"]
    assert problems and "llmfleet_offline is true and gpu_tuning_wheelhouse is empty" in problems[0]
    assert judge("gpu_tuning", {"offline": True}, gpu_tuning_wheelhouse="/srv/bundle/wheels")["problems"] == []


@pytest.mark.parametrize("over, message", [
    ({"gpu_tuning_power_limit": 900},
     "GPU 0 (GPU-00000000-0000-4000-8000-000000000000): gpu_tuning_power_limit 900 W is outside what it accepts (200-700 W)"),
    ({"gpu_tuning_locked_clocks": {"min": 100, "max": 1000}}, "gpu_tuning_locked_clocks 100-1000 MHz is not accepted; min <= max, both within 345-1980 MHz"),
    ({"gpu_tuning_application_clocks": {"memory": 1593, "graphics": 1980}}, "graphics 1980 MHz is not supported at memory 1593 MHz"),
    ({"gpu_tuning_gpus": ["1"], "gpu_tuning_power_limit": 500}, "gpu_tuning_gpus: no GPU 1 on gpu-a01; it has 1 GPU(s)"),
    ({"gpu_tuning_profile": "power_capped", "gpu_tuning_power_cap_w": 150},
     "gpu_tuning_profiles.power_capped.power_limit 150 W is outside what it accepts (200-700 W)"),
])
def test_gpu_tuning_judges_values_against_the_gpus_nvml_read(over, message):
    values = defaults("gpu_tuning", **over)
    if values["gpu_tuning_profile"] == "power_capped":
        values["gpu_tuning_profiles"]["power_capped"]["power_limit"] = values["gpu_tuning_power_cap_w"]
    result = inputs.input_problems("gpu_tuning", values, spec("gpu_tuning"), {"host": "gpu-a01", "gpu": GPU_NVML})
    assert len(result["problems"]) == 1 and message in result["problems"][0], result


def test_gpu_tuning_says_when_the_gpus_are_not_known():
    result = judge("gpu_tuning", {"gpu": GPU_PCI_ONLY}, gpu_tuning_power_limit=900, gpu_tuning_gpus=["0"])
    assert result["problems"] == []
    assert result["notes"] == ["gpu_tuning on gpu-a01: the values were checked for form only, not against the GPUs: "
                               "NVML does not answer yet (the NVIDIA driver is not loaded); nvidia_gpu checks them "
                               "against each GPU before any change."]
    # An index beyond the GPUs on the PCI bus is refused all the same.
    result = judge("gpu_tuning", {"gpu": GPU_PCI_ONLY}, gpu_tuning_power_limit=500, gpu_tuning_gpus=["2"])
    assert result["problems"] == ["gpu_tuning_gpus: no GPU 2 on gpu-a01; it has 2 GPU(s) on its PCI bus: indices 0-1"]
    assert "llmfleet_gpu is not known here" in judge("gpu_tuning", {"gpu": None}, gpu_tuning_power_limit=500)["notes"][0]
    assert judge("gpu_tuning", {"gpu": None})["notes"] == []  # nothing asked for: nothing to say


@pytest.mark.parametrize("over", [
    {"gpu_tuning_profile": "max_performance"},
    {"gpu_tuning_power_limit": 500, "gpu_tuning_locked_clocks": {"min": 1500, "max": 1980}},
    {"gpu_tuning_gpus": ["0", "GPU-00000000-0000-4000-8000-000000000000"], "gpu_tuning_compute_mode": "prohibited"},
    {"gpu_tuning_application_clocks": {"memory": 1593, "graphics": 1500}, "gpu_tuning_persistence_mode": False},
])
def test_gpu_tuning_accepts(over):
    result = judge("gpu_tuning", {"gpu": GPU_NVML}, **over)
    assert result["problems"] == [] and result["notes"] == []


# -- trtllm_service ------------------------------------------------------------------------------
MANIFEST = "%s  config.json\n%s *model-00001.safetensors\n" % ("a" * 64, "b" * 64)


@pytest.mark.parametrize("over, message", [
    ({"trtllm_service_kv_cache_free_gpu_memory_fraction": 1.5},
     "trtllm_service_kv_cache_free_gpu_memory_fraction: 1.5 is not accepted; give the share of GPU memory left after the weights"),
    ({"trtllm_service_kv_cache_free_gpu_memory_fraction": -0.1}, "trtllm_service_kv_cache_free_gpu_memory_fraction: -0.1 is not accepted"),
    ({"trtllm_service_model_revision": "main"}, "trtllm_service_model_revision: 'main' names something that moves"),
    ({"trtllm_service_model_revision": "HEAD"}, "trtllm_service_model_revision: 'HEAD' names something that moves"),
    ({"trtllm_service_model_revision": "Master"}, "'Master' names something that moves"),
    ({"trtllm_service_model_revision": "latest"}, "give an immutable revision: a commit (40 hex digits)"),
    ({"trtllm_service_model_manifest": "config.json\nweights.bin\n"},
     "trtllm_service_model_manifest: 2 line(s) are not \"<sha256, 64 lower-case hex>  <relative path>\""),
    ({"trtllm_service_model_manifest": "%s  /etc/passwd\n" % ("a" * 64)}, "line 1 '%s  /etc/passwd'" % ("a" * 64)),
    ({"trtllm_service_model_manifest": "%s  ../x\n" % ("a" * 64)}, "no absolute path, no .."),
    ({"trtllm_service_model_manifest": MANIFEST + MANIFEST}, "config.json, model-00001.safetensors listed more than once"),
    ({"trtllm_service_model_manifest": "\n \n"}, "trtllm_service_model_manifest: the manifest has no entries"),
    ({"trtllm_service_tp_size": -1}, "trtllm_service_tp_size: -1 is not accepted"),
    ({"trtllm_service_model_weights_gib": -3}, "trtllm_service_model_weights_gib: -3 is not accepted"),
    ({"trtllm_service_base_port": 80}, "trtllm_service_base_port: 80 is not accepted; give a whole number from 1024 to 65535"),
    ({"trtllm_service_ready_timeout": 0}, "trtllm_service_ready_timeout: 0 is not accepted; give seconds, at least 1"),
    ({"trtllm_service_drain_seconds": -1}, "trtllm_service_drain_seconds: -1 is not accepted"),
    ({"trtllm_service_min_driver_branch": 5}, "trtllm_service_min_driver_branch: 5 is not accepted; give a driver branch"),
    ({"trtllm_service_models_dir": "srv/models"}, "trtllm_service_models_dir: 'srv/models' is not accepted; give an absolute path"),
    ({"trtllm_service_venvs_dir": "/opt/llm fleet"}, "trtllm_service_venvs_dir: '/opt/llm fleet' is not accepted"),
    ({"trtllm_service_model_http_ca": "ca.pem"}, "trtllm_service_model_http_ca: 'ca.pem' is not accepted"),
    ({"trtllm_service_user": "trt llm"}, "trtllm_service_user: 'trt llm' is not a POSIX name"),
    ({"trtllm_service_model_http_headers": {"Authorization": "Bearer x\ny"}},
     "trtllm_service_model_http_headers: Authorization are not header name -> text"),
    ({"trtllm_service_environment": {"NCCL-DEBUG": "INFO"}}, "trtllm_service_environment: has entries that are not NAME -> one-line value"),
    ({"trtllm_service_container_options": ["read-only"]}, "trtllm_service_container_options: 'read-only' is not an engine option"),
    ({"trtllm_service_instances": [{"name": "0", "port": 8000, "gpus": [-1]}]}, "trtllm_service_instances: entry 0"),
    ({"trtllm_service_instances": [{"name": "0", "port": 8000}]}, "needs gpus, a list of GPU indices"),
])
def test_trtllm_service_refuses(over, message):
    problems = judge("trtllm_service", **over)["problems"]
    assert len(problems) == 1 and message in problems[0], problems


def test_a_ref_moves_and_is_no_directory_name():
    problems = judge("trtllm_service", trtllm_service_model_revision="refs/heads/release-1")["problems"]
    assert len(problems) == 2 and "'refs/heads/release-1' names something that moves" in problems[0], problems
    assert problems[1] == "trtllm_service_model_revision refs/heads/release-1 must match %s" % inputs.TRTLLM_NAME


def test_a_header_value_is_never_shown():
    problems = judge("trtllm_service", trtllm_service_model_http_headers={"X-Token": "secret\n"})["problems"]
    assert problems and "secret" not in problems[0]


@pytest.mark.parametrize("over", [
    {"trtllm_service_kv_cache_free_gpu_memory_fraction": 1},
    {"trtllm_service_kv_cache_free_gpu_memory_fraction": 0.05},
    {"trtllm_service_kv_cache_free_gpu_memory_fraction": 0},
    {"trtllm_service_model_revision": "2025-05-28-fp8"},
    {"trtllm_service_model_revision": "0123456789abcdef0123456789abcdef01234567"},
    {"trtllm_service_model_revision": "main-2025-05-28"},
    {"trtllm_service_model_revision": "v1.0"},
    {"trtllm_service_model_manifest": MANIFEST},
    {"trtllm_service_instances": [{"name": "0", "port": 8000, "gpus": []}, {"name": "1", "port": 8001, "gpus": [0, "1"]}]},
    {"trtllm_service_environment": {"NCCL_DEBUG": "INFO", "TLLM_LOG_LEVEL": 1}},
    {"trtllm_service_model_http_headers": {"Authorization": "Bearer abc"}},
])
def test_trtllm_service_accepts(over):
    assert judge("trtllm_service", **over)["problems"] == []


@pytest.mark.parametrize("revision", ["", None, "r1", "mainline", "2025-05-28", "deadbeef"])
def test_revision_names_that_do_not_move(revision):
    assert inputs.revision_problem(revision) is None


# The rules the role's assert used to hold in Jinja, given what its validate_inputs.yml passes:
# the serving plan vars/main.yml derives, the preset names, the flags it owns, what the inventory
# says of the other hosts of a multi-node instance. Worded as they always were (grep-able).
TRTLLM_VARS = yaml.safe_load((ROOT / "roles" / "trtllm_service" / "vars" / "main.yml").read_text())
DIGEST = "sha256:" + "0" * 64
IMAGE = "nvcr.io/nvidia/tensorrt-llm/release:1.2.0@" + DIGEST
PAIR = {"trtllm_service_node_hosts": ["gpu-a01", "gpu-a02"], "trtllm_service_node_address": "10.0.0.1",
        "trtllm_service_node_interface": "ens1f0"}


def served(context=None, plan=None, **over):
    """trtllm_service judged as validate_inputs.yml calls it: one instance on GPU 0 unless said, on a
    lab host without a GPU (the fit skipped) unless the context gives one (ON_H100)."""
    values = defaults("trtllm_service", **over)
    plan = dict({"tp_size": 1, "pp_size": 1, "ep_size": 0, "nodes": 1,
                 "instances": values["trtllm_service_instances"] or [{"name": "0", "port": 8000, "gpus": [0]}],
                 "weights_gib": 0.0, "kv_fraction": 0.9, "flags": values["trtllm_service_flags"],
                 "extra_llm_api_options": values["trtllm_service_extra_llm_api_options"]}, **(plan or {}))
    context = dict({"host": "gpu-a01", "gpu": NO_GPU, "require_gpu": False, "offline": False,
                    "presets": list(TRTLLM_VARS["__trtllm_service_presets"]),
                    "owned_flags": TRTLLM_VARS["__trtllm_service_owned_flags"], "plan": plan,
                    "node_revisions": {"gpu-a01": None, "gpu-a02": None}}, **(context or {}))
    return inputs.input_problems("trtllm_service", values, spec("trtllm_service"), context)


NAME_RE = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TWO_NODES = {"nodes": 2, "tp_size": 2}
NO_GPU = {"present": False, "count": 0, "gpus": []}
ON_H100 = {"gpu": GPU_NVML, "require_gpu": True}
SKIPPED = "trtllm_service: the fit check is skipped on gpu-a01: it has no NVIDIA GPU and llmfleet_require_gpu is false."


@pytest.mark.parametrize("over, context, plan, message", [
    # the model
    ({"trtllm_service_model_name": ""}, {}, {},
     "trtllm_service_model_name is empty (the model to serve; in site.yml llmfleet_model_service false leaves the service out)"),
    ({"trtllm_service_model_name": "deepseek r1"}, {}, {}, "trtllm_service_model_name deepseek r1 must match " + NAME_RE),
    ({"trtllm_service_model_revision": ""}, {}, {}, "trtllm_service_model_revision is empty"),
    ({"trtllm_service_model_revision": "current"}, {}, {}, "trtllm_service_model_revision current must match " + NAME_RE),
    ({"trtllm_service_model_revision": "2025/05"}, {}, {}, "trtllm_service_model_revision 2025/05 must match " + NAME_RE),
    ({"trtllm_service_model_src": ""}, {}, {},
     "trtllm_service_model_src is empty (a directory on the host, or with trtllm_service_model_source http the revision URL)"),
    ({"trtllm_service_model_src": "models/r1"}, {}, {},
     "trtllm_service_model_src models/r1 must be an absolute path (trtllm_service_model_source path)"),
    ({"trtllm_service_model_source": "http", "trtllm_service_model_src": "ftp://models/r1"}, {}, {},
     "trtllm_service_model_src ftp://models/r1 must be an http:// or https:// URL (trtllm_service_model_source http)"),
    # venv
    ({"trtllm_service_install_mode": "venv", "trtllm_service_version": "latest"}, {}, {},
     "trtllm_service_version latest must be a tensorrt-llm version such as 1.2.1 (trtllm_service_install_mode venv)"),
    ({"trtllm_service_install_mode": "venv", "trtllm_service_version": "1.2.1", "trtllm_service_wheelhouse": "wheels"}, {}, {},
     "trtllm_service_wheelhouse wheels must be an absolute path"),
    ({"trtllm_service_install_mode": "venv", "trtllm_service_version": "1.2.1", "trtllm_service_pip_index_url": "pypi.example"}, {}, {},
     "trtllm_service_pip_index_url pypi.example must be an http:// or https:// URL"),
    ({"trtllm_service_install_mode": "venv", "trtllm_service_version": "1.2.1"}, {"offline": True}, {},
     "llmfleet_offline is true and trtllm_service_wheelhouse is empty: pip would read an index "
     "(offline_repo publishes the wheelhouse of the bundle)"),
    # container
    ({"trtllm_service_install_mode": "container", "trtllm_service_image": IMAGE}, {"offline": True}, {},
     "llmfleet_offline is true and trtllm_service_image_archive is empty: the image would be pulled (offline_repo publishes the bundle)"),
    ({"trtllm_service_install_mode": "container"}, {}, {},
     "trtllm_service_image or trtllm_service_image_id is needed (trtllm_service_install_mode container)"),
    ({"trtllm_service_install_mode": "container", "trtllm_service_image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0"}, {}, {},
     "trtllm_service_image nvcr.io/nvidia/tensorrt-llm/release:1.2.0 must be pinned by digest: REPOSITORY[:TAG]@sha256:<64 hex>"),
    ({"trtllm_service_install_mode": "container", "trtllm_service_image_id": "0" * 64}, {}, {},
     "trtllm_service_image_id %s must be sha256:<64 hex> (the image ID that docker image inspect reports)" % ("0" * 64)),
    ({"trtllm_service_install_mode": "container", "trtllm_service_image": IMAGE, "trtllm_service_image_archive": "/b/i.tar"}, {}, {},
     "trtllm_service_image_archive needs trtllm_service_image_id (an archive loads with its ID; its digest is not kept)"),
    ({"trtllm_service_install_mode": "container", "trtllm_service_image_id": DIGEST, "trtllm_service_image_archive": "i.tar"}, {}, {},
     "trtllm_service_image_archive i.tar must be an absolute path"),
    ({"trtllm_service_install_mode": "container", "trtllm_service_image": IMAGE, "trtllm_service_image_archive_sha256": "ABC"}, {}, {},
     "trtllm_service_image_archive_sha256 ABC must be 64 hex digits"),
    ({"trtllm_service_container_engine_bin": "docker"}, {}, {}, "trtllm_service_container_engine_bin docker must be an absolute path"),
    # preset, executable
    ({"trtllm_service_preset": "deepseek-r1-fp8"}, {}, {},
     "trtllm_service_preset deepseek-r1-fp8 is not one of " + ", ".join(TRTLLM_VARS["__trtllm_service_presets"])),
    ({"trtllm_service_bin": "trtllm-serve"}, {}, {}, "trtllm_service_bin trtllm-serve must be an absolute path"),
    # instances (the names are counted without case, as before)
    ({"trtllm_service_instances": [{"name": "a", "port": 8000, "gpus": []}, {"name": "A", "port": 8001, "gpus": []}]}, {}, {},
     'trtllm_service_instances: names must be unique and match %s, ports unique and 1024-65535: [{"name": "a", "port": 8000, '
     '"gpus": []}, {"name": "A", "port": 8001, "gpus": []}]' % NAME_RE),
    ({"trtllm_service_instances": [{"name": "a b", "port": 8000, "gpus": []}]}, {}, {}, "trtllm_service_instances: names must be unique"),
    ({"trtllm_service_instances": [{"name": "a", "port": 80, "gpus": []}]}, {}, {}, "ports unique and 1024-65535"),
    ({"trtllm_service_instances": [{"name": "a", "port": 70000, "gpus": []}]}, {}, {}, "ports unique and 1024-65535"),
    ({"trtllm_service_instances": [{"name": "a", "port": 8000, "gpus": []}, {"name": "b", "port": 8000, "gpus": []}]}, {}, {},
     "ports unique and 1024-65535"),
    ({}, {}, {"instances": []}, "trtllm_service_instances is empty and the host has no GPU for the default layout"),
    ({"trtllm_service_keep_revisions": -1}, {}, {}, "trtllm_service_keep_revisions -1 must be 0 or more"),
    # flags and options (trtllm.serve_problems), the fit (trtllm.fit_problems)
    ({"trtllm_service_flags": {"port": 9000}}, {}, {"flags": {"port": 9000}},
     "trtllm_service_flags: --port is set by the role (from its own variables); remove it"),
    ({}, {}, {"extra_llm_api_options": {"enable_attention_db": True}},
     "trtllm_service_extra_llm_api_options: unknown key enable_attention_db (did you mean enable_attention_dp?)"),
    ({}, {"require_gpu": True}, {}, "gpu-a01: no GPU (llmfleet_gpu.present is false); the plan needs 1 per host"),
    ({}, ON_H100, {"instances": [{"name": "0", "port": 8000, "gpus": [1]}]}, "gpu-a01: instance 0 uses GPU 1; this host has GPUs 0-0"),
    ({}, dict(ON_H100, gpu=dict(GPU_NVML, driver_version="550.54.15")), {},
     "gpu-a01: driver 550.54.15 is older than branch 575, which this TensorRT-LLM needs"),
    # an instance over several hosts
    (dict(PAIR, trtllm_service_node_hosts=["gpu-a01"]), {}, TWO_NODES,
     'trtllm_service_node_hosts ["gpu-a01"] must name the 2 hosts of this instance (trtllm_service_nodes or the preset), '
     "the head first, once each, this host among them"),
    (dict(PAIR, trtllm_service_node_hosts=["gpu-a01", "GPU-A01"]), {"node_revisions": {"gpu-a01": None, "GPU-A01": None}}, TWO_NODES,
     'trtllm_service_node_hosts ["gpu-a01", "GPU-A01"] must name the 2 hosts'),
    (dict(PAIR, trtllm_service_node_hosts=["gpu-a02", "gpu-a03"]), {"node_revisions": {"gpu-a02": None, "gpu-a03": None}}, TWO_NODES,
     'trtllm_service_node_hosts ["gpu-a02", "gpu-a03"] must name the 2 hosts'),
    (PAIR, {"node_revisions": {"gpu-a01": None}}, TWO_NODES, "trtllm_service_node_hosts gpu-a02 are not in the inventory"),
    (PAIR, {"node_revisions": {"gpu-a01": "r1", "gpu-a02": "r2"}}, TWO_NODES,
     "trtllm_service_model_revision differs between the hosts of this instance (trtllm_service_node_hosts): set it for their group"),
    (dict(PAIR, trtllm_service_node_address="gpu-a01.fabric"), {}, TWO_NODES,
     "trtllm_service_node_address gpu-a01.fabric must be an IP address on the fabric network (the other hosts reach this one there)"),
    (dict(PAIR, trtllm_service_node_interface=""), {}, TWO_NODES,
     'trtllm_service_node_interface "" must name the fabric network interface (e.g. ens1f0; NCCL, Gloo and MPI use it)'),
    (dict(PAIR, trtllm_service_node_interface="ens 1"), {}, TWO_NODES, 'trtllm_service_node_interface "ens 1" must name'),
    (dict(PAIR, trtllm_service_node_port=22), {}, TWO_NODES,
     "trtllm_service_node_port 22 must be 1024-65535 (the node sshd runs unprivileged)"),
    (dict(PAIR, trtllm_service_install_mode="container", trtllm_service_image=IMAGE), {}, TWO_NODES,
     "trtllm_service_install_mode container cannot span hosts (the ranks are started through the node sshd): use venv or preinstalled"),
    (PAIR, {}, dict(TWO_NODES, instances=[{"name": "0", "port": 8000, "gpus": [0]}, {"name": "1", "port": 8001, "gpus": [0]}]),
     "an instance over 2 hosts is one per host: trtllm_service_instances has 2"),
    (dict(PAIR, trtllm_service_mpirun_bin="mpirun"), {}, TWO_NODES, "trtllm_service_mpirun_bin mpirun must be an absolute path"),
    (dict(PAIR, trtllm_service_llmapi_launch_bin="trtllm-llmapi-launch"), {}, TWO_NODES,
     "trtllm_service_llmapi_launch_bin trtllm-llmapi-launch must be an absolute path"),
])
def test_trtllm_service_refuses_a_plan(over, context, plan, message):
    problems = served(context, plan, **over)["problems"]
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize("over, context, plan", [
    ({"trtllm_service_model_source": "http", "trtllm_service_model_src": "https://models.example/deepseek-r1/r1"}, {}, {}),
    ({"trtllm_service_model_revision": "0123456789abcdef0123456789abcdef01234567"}, {}, {}),
    ({"trtllm_service_install_mode": "venv", "trtllm_service_version": "1.2.0rc1", "trtllm_service_wheelhouse": "/srv/wheels",
      "trtllm_service_pip_index_url": "https://pypi.example/simple"}, {"offline": True}, {}),
    ({"trtllm_service_install_mode": "container", "trtllm_service_image": IMAGE}, {}, {}),
    ({"trtllm_service_install_mode": "container", "trtllm_service_image_id": DIGEST, "trtllm_service_image_archive": "/b/i.tar",
      "trtllm_service_image_archive_sha256": "f" * 64, "trtllm_service_container_engine_bin": "/usr/bin/podman"},
     {"offline": True}, {}),
    ({"trtllm_service_preset": "deepseek-r1-distill-qwen-7b-1gpu"}, {}, {}),
    ({"trtllm_service_instances": [{"name": "0", "port": 8000, "gpus": [0]}, {"name": "spare", "port": 65535, "gpus": []}]}, {}, {}),
    ({"trtllm_service_keep_revisions": 0}, {}, {}),
    ({"trtllm_service_flags": {"max_batch_size": 64}}, {}, {"flags": {"max_batch_size": 64}}),
    (PAIR, {"node_revisions": {"gpu-a01": "r1", "gpu-a02": "r1"}}, TWO_NODES),
    (dict(PAIR, trtllm_service_node_address="fd00::1", trtllm_service_install_mode="venv", trtllm_service_version="1.2.1",
          trtllm_service_llmapi_launch_bin="/opt/trtllm/bin/trtllm-llmapi-launch"), {"node_revisions": {"gpu-a01": "r1", "gpu-a02": None}},
     TWO_NODES),
    # a node host list left over on a one-host instance is not judged
    ({"trtllm_service_node_hosts": ["elsewhere"], "trtllm_service_node_interface": ""}, {"node_revisions": {}}, {}),
])
def test_trtllm_service_accepts_a_plan(over, context, plan):
    result = served(context, plan, **over)
    assert result["problems"] == [] and result["notes"] == [SKIPPED], result


def test_the_fit_is_judged_on_a_host_with_a_gpu_or_where_one_is_required_else_skipped_saying_so():
    assert served(ON_H100) == {"problems": [], "notes": [], "types_ok": True}
    assert served({"require_gpu": False}) == {"problems": [], "notes": [SKIPPED], "types_ok": True}
    assert served({"require_gpu": True})["notes"] == []


def test_every_problem_at_once_in_the_role_s_order():
    problems = served({"offline": True}, None, trtllm_service_model_name="", trtllm_service_install_mode="container",
                      trtllm_service_bin="serve", trtllm_service_keep_revisions=-1)["problems"]
    assert [p.split(" ")[0] for p in problems] == [
        "trtllm_service_model_name", "llmfleet_offline", "trtllm_service_image", "trtllm_service_bin", "trtllm_service_keep_revisions"]


def test_the_plan_is_read_only_when_the_types_are_right():
    """What vars/main.yml derives assumes the types (a node count "x" would divide by zero there)."""
    def plan():
        raise AssertionError("the context was read")
    result = inputs.input_problems("trtllm_service", defaults("trtllm_service", trtllm_service_nodes="x"), spec("trtllm_service"), plan)
    assert result["types_ok"] is False and "trtllm_service_nodes" in result["problems"][0]


def test_without_a_plan_only_the_variables_are_judged():
    assert judge("trtllm_service", trtllm_service_model_name="")["problems"] == [
        "trtllm_service_model_name is empty (the model to serve; in site.yml llmfleet_model_service false leaves the service out)"]


# -- the other roles -----------------------------------------------------------------------------
@pytest.mark.parametrize("role, over, message", [
    ("nvidia_driver", {"nvidia_driver_cuda_repo_url": "developer.download.nvidia.com"},
     "nvidia_driver_cuda_repo_url: 'developer.download.nvidia.com' is not a URL"),
    ("nvidia_driver", {"nvidia_driver_cuda_repo_key_checksum": "abc"}, "nvidia_driver_cuda_repo_key_checksum: 'abc' is not accepted; give \"sha256:<64 hex>\""),
    ("nvidia_driver", {"nvidia_driver_ubuntu_kernel_flavour": "Generic HWE"}, "nvidia_driver_ubuntu_kernel_flavour: 'Generic HWE' is not a kernel flavour"),
    ("nvidia_driver", {"nvidia_driver_packages_extra": ["nvidia utils"]}, "nvidia_driver_packages_extra: 'nvidia utils' is not accepted"),
    ("nvidia_driver", {"nvidia_driver_secure_boot_signing_key": "mok.key", "nvidia_driver_secure_boot_signing_cert": "/var/lib/mok.der"},
     "nvidia_driver_secure_boot_signing_key: 'mok.key' is not accepted; give the absolute path"),
    ("nvidia_container_toolkit", {"nvidia_container_toolkit_docker_repo_url": "download.docker.com/linux"},
     "nvidia_container_toolkit_docker_repo_url: 'download.docker.com/linux' is not a URL"),
    ("nvidia_container_toolkit", {"nvidia_container_toolkit_cdi_spec": "nvidia.yaml"},
     "nvidia_container_toolkit_cdi_spec: 'nvidia.yaml' is not accepted; give an absolute path"),
    ("cuda_toolkit", {"cuda_toolkit_version": "12"}, 'cuda_toolkit_version: "12" is not a toolkit release'),
    ("cuda_toolkit", {"cuda_toolkit_version": 12.8}, 'cuda_toolkit_version: "12.8" is not a toolkit release'),
    ("nginx_tls", {"nginx_tls_upstream_fail_timeout": 0}, "nginx_tls_upstream_fail_timeout: 0 is not accepted; give seconds, at least 1"),
    ("nginx_tls", {"nginx_tls_upstream_max_fails": -1}, "nginx_tls_upstream_max_fails: -1 is not accepted"),
    ("nginx_tls", {"nginx_tls_internal_cert_ips": ["10.0.0.300"]}, "nginx_tls_internal_cert_ips: '10.0.0.300' is not accepted; give IP addresses"),
    ("nginx_tls", {"nginx_tls_certificate_source": "internal_ca", "nginx_tls_internal_cert_renew_days": 0}, "nginx_tls_internal_cert_renew_days: 0"),
    ("nginx_tls", {"nginx_tls_upstreams": [{"name": "0", "port": 8099}]}, "nginx_tls_status_port 8099 is not 0 or a loopback port"),
    ("nginx_tls", {"nginx_tls_upstreams": [{"name": "0", "port": "8000"}]}, "nginx_tls_upstreams: every entry needs a name and a port"),
    ("nginx_tls", {"nginx_tls_routes": []}, "nginx_tls_routes must be a non-empty list"),
    ("nginx_tls", {"nginx_tls_routes": ["/v1/models"]}, "Elements value for option 'nginx_tls_routes' is of type str"),
    ("nginx_tls", {"nginx_tls_routes": [{"path": "v1/models"}]}, "nginx_tls_routes[0].path 'v1/models' must be an exact path"),
    ("nginx_tls", {"nginx_tls_routes": [{"path": "/v1/../server_info"}]}, "nginx_tls_routes[0].path '/v1/../server_info' must be an exact path"),
    ("nginx_tls", {"nginx_tls_routes": [{"path": "/v1/models", "limit": 5}]}, "nginx_tls_routes[0]: unknown key(s) limit"),
    ("nginx_tls", {"nginx_tls_routes": [{"path": "/v1/models"}, {"path": "/v1/models"}]}, "nginx_tls_routes: each path once: /v1/models"),
    ("nginx_tls", {"nginx_tls_routes": [{"path": "/healthz"}]}, "nginx_tls_routes: /healthz is the edge's health route"),
    ("nginx_tls", {"nginx_tls_routes": [{"path": "/v1/models", "group": "catalog"}]},
     "nginx_tls_routes[0].group 'catalog' has no limits in nginx_tls_route_limits (groups there: none)"),
    ("nginx_tls", {"nginx_tls_route_limits": {"Catalog": {"burst": 1}}}, "nginx_tls_route_limits.Catalog: a group name is lower-case"),
    ("nginx_tls", {"nginx_tls_route_limits": {"catalog": {}}}, "nginx_tls_route_limits.catalog must name at least one of"),
    ("nginx_tls", {"nginx_tls_route_limits": {"catalog": {"rate": 5}}}, "nginx_tls_route_limits.catalog: unknown key(s) rate"),
    ("nginx_tls", {"nginx_tls_route_limits": {"catalog": {"rate_per_second": 0}}},
     "nginx_tls_route_limits.catalog.rate_per_second 0 must be a whole number, at least 1"),
    ("nginx_tls", {"nginx_tls_route_limits": {"catalog": {"burst": -1}}}, "nginx_tls_route_limits.catalog.burst -1 must be a whole number, at least 0"),
    ("nginx_tls", {"nginx_tls_route_limits": ["catalog"]}, "argument 'nginx_tls_route_limits' is of type list"),
    ("monitoring", {"monitoring_dcgm_exporter_interval_ms": 5}, "monitoring_dcgm_exporter_interval_ms: 5 is not accepted; give milliseconds, at least 100"),
    ("monitoring", {"monitoring_alert_drift_stale_hours": 0}, "monitoring_alert_drift_stale_hours: 0"),
    ("monitoring", {"monitoring_prometheus_listen_address": "localhost"}, "monitoring_prometheus_listen_address: 'localhost' is not an IPv4 address"),
    ("monitoring", {"monitoring_dcgm_exporter_image_archive_sha256": "ABC"}, "monitoring_dcgm_exporter_image_archive_sha256: 'ABC' is not accepted"),
])
def test_other_roles_refuse(role, over, message):
    problems = judge(role, **over)["problems"]
    assert len(problems) == 1 and message in problems[0], problems


def test_cuda_toolkit_offline_refuses_nvidia_repository():
    problems = judge("cuda_toolkit", {"offline": True}, cuda_toolkit_source="cuda_repo")["problems"]
    assert problems and "but llmfleet_offline is true" in problems[0]
    assert judge("cuda_toolkit", {"offline": True}, cuda_toolkit_source="auto")["problems"] == []


def test_open_kernel_modules_on_gpus_older_than_turing():
    old = {"present": True, "architectures": ["volta", "hopper"]}
    problems = judge("nvidia_driver", {"gpu": old}, nvidia_driver_kernel_module="open")["problems"]
    assert problems == ["nvidia_driver_kernel_module: 'open' is not accepted on gpu-a01: its GPUs are older than Turing "
                        "(volta), which the open kernel modules do not drive; give proprietary or auto"]
    assert judge("nvidia_driver", {"gpu": old}, nvidia_driver_kernel_module="auto")["problems"] == []
    assert judge("nvidia_driver", {"gpu": GPU_NVML}, nvidia_driver_kernel_module="open")["problems"] == []


def test_unknown_role_is_a_programming_error():
    with pytest.raises(ValueError):
        inputs.input_problems("nope", {})


# -- site.yml's choice of roles ------------------------------------------------------------------
ROLES = ["offline_repo", "ubuntu_base", "firewall", "nvidia_driver", "gpu_tuning", "trtllm_service", "nginx_tls"]


@pytest.mark.parametrize("run, skip, expected", [
    (["all"], [], ROLES),
    ([], [], ROLES),
    (["nginx_tls"], [], ["offline_repo", "nginx_tls"]),
    (["trtllm_service:model", "gpu_tuning"], [], ["offline_repo", "gpu_tuning", "trtllm_service"]),
    (["tagged"], [], ROLES),
    (["all"], ["firewall", "nginx_tls:config"], [r for r in ROLES if r != "firewall"]),
    (["untagged"], [], ["offline_repo"]),
])
def test_roles_to_check_follow_the_tags(run, skip, expected):
    assert inputs.roles_to_check(ROLES, run, skip, ("offline_repo",)) == expected


SITE_LIST = [
    {"role": "offline_repo", "group": "llmfleet", "switch": "llmfleet_offline", "always": True},
    {"role": "ubuntu_base", "group": "llmfleet"},
    {"role": "nvidia_driver", "group": "gpu_nodes", "gpu_steps": "nvidia_driver: ..."},
    {"role": "nginx_tls", "group": "gpu_nodes", "switch": "llmfleet_edge"},
    {"role": "monitoring", "group": "llmfleet", "switch": "llmfleet_monitoring"},
]
# fleet_defaults' defaults of these switches
SWITCHES = {"llmfleet_offline": False, "llmfleet_edge": True, "llmfleet_monitoring": False}


@pytest.mark.parametrize("switches, groups, expected", [
    ({}, ["llmfleet", "gpu_nodes"], ["ubuntu_base", "nvidia_driver", "nginx_tls"]),
    ({}, ["llmfleet"], ["ubuntu_base"]),
    ({}, [], []),
    ({"llmfleet_offline": True, "llmfleet_monitoring": True}, ["llmfleet", "gpu_nodes"],
     ["offline_repo", "ubuntu_base", "nvidia_driver", "nginx_tls", "monitoring"]),
    ({"llmfleet_edge": False}, ["llmfleet", "gpu_nodes"], ["ubuntu_base", "nvidia_driver"]),
    ({"llmfleet_edge": "no", "llmfleet_monitoring": "yes"}, ["gpu_nodes", "llmfleet"], ["ubuntu_base", "nvidia_driver", "monitoring"]),
])
def test_site_roles_follow_the_groups_and_the_switches_in_the_plays_order(switches, groups, expected):
    assert inputs.site_roles(SITE_LIST, dict(SWITCHES, **switches), groups) == expected


def test_site_roles_by_group():
    assert inputs.site_roles(SITE_LIST, dict(SWITCHES, llmfleet_monitoring=True)) == {
        "llmfleet": ["ubuntu_base", "monitoring"], "gpu_nodes": ["nvidia_driver", "nginx_tls"]}


@pytest.mark.parametrize("entries, switches, message", [
    ([{"role": "cuda_toolkit"}], {}, "llmfleet_site_role_list entry 0 {\"role\": \"cuda_toolkit\"} needs a role and a group"),
    ([{"role": "cuda_toolkit", "group": "gpu_nodes", "switch": "cuda_toolkit_enabled"}], {"cuda_toolkit_enabled": True},
     "cuda_toolkit has the switch 'cuda_toolkit_enabled'; give an llmfleet_* setting"),
    # the switch's default is fleet_defaults', not a second one here
    ([{"role": "cuda_toolkit", "group": "gpu_nodes", "switch": "llmfleet_cuda_toolkit", "default": False}], {"llmfleet_cuda_toolkit": True},
     "cuda_toolkit has unknown keys default"),
    ([{"role": "cuda_toolkit", "group": "gpu_nodes", "when": "x"}], {}, "cuda_toolkit has unknown keys when"),
    ([{"role": "a", "group": "g"}, {"role": "a", "group": "h"}], {}, "a is listed twice"),
    ([{"role": "cuda_toolkit", "group": "gpu_nodes", "switch": "llmfleet_cuda_toolkit"}], {},
     "llmfleet_cuda_toolkit without a value: fleet_defaults gives every switch its default"),
])
def test_site_role_list_mistakes_are_named(entries, switches, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        inputs.site_roles(entries, switches, ["gpu_nodes"])


# -- site.yml's own settings ---------------------------------------------------------------------
@pytest.mark.parametrize("values, message", [
    ({"llmfleet_serve_batch": 0}, "llmfleet_serve_batch: 0 is not accepted; give a number of hosts (1 or more) or a share like \"25%\""),
    ({"llmfleet_serve_batch": "quarter"}, "llmfleet_serve_batch: 'quarter' is not accepted"),
    ({"llmfleet_serve_batch": "150%"}, "llmfleet_serve_batch: '150%' is not accepted"),
    ({"llmfleet_serve_serial": [1, "0%"]}, "llmfleet_serve_serial: [1, \"0%\"] is not accepted; give a list of batches"),
    ({"llmfleet_serve_serial": []}, "llmfleet_serve_serial: [] is not accepted"),
    ({"llmfleet_serve_max_fail_percentage": 101}, "llmfleet_serve_max_fail_percentage: 101 is not accepted; give a percentage from 0 to 100"),
    ({"llmfleet_serve_max_fail_percentage": "some"}, "llmfleet_serve_max_fail_percentage: 'some' is not accepted"),
])
def test_site_settings_refused(values, message):
    problems = inputs.input_problems("site", dict({"llmfleet_serve_batch": None, "llmfleet_serve_serial": None,
                                                   "llmfleet_serve_max_fail_percentage": None}, **values))["problems"]
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize("values", [
    {},
    {"llmfleet_serve_batch": "25%", "llmfleet_serve_max_fail_percentage": 0},
    {"llmfleet_serve_batch": 2, "llmfleet_serve_serial": [2, "50%", 10]},
    {"llmfleet_serve_serial": "100%", "llmfleet_serve_max_fail_percentage": "12.5"},
])
def test_site_settings_accepted(values):
    assert inputs.input_problems("site", values)["problems"] == []


@pytest.mark.parametrize("role, over", [
    ("nvidia_container_toolkit", {"nvidia_container_toolkit_repo_url": "file:/srv/fixture-repo",
                                  "nvidia_container_toolkit_repo_key_url": "file:///srv/fixture-repo/gpgkey"}),
    ("nvidia_driver", {"nvidia_driver_cuda_repo_url": "file:///srv/cuda", "nvidia_driver_cuda_repo_key_url": "file:/srv/cuda/key.pub"}),
])
def test_local_repositories_are_urls_too(role, over):
    """apt reads file:/path and file:///path (a mounted or local repository: the Molecule
    scenarios' fixture repositories are such)."""
    assert judge(role, **over)["problems"] == []


@pytest.mark.parametrize("value", ["file:srv/repo", "file://host/srv/repo", "file:/srv/my repo"])
def test_file_urls_need_an_absolute_local_path(value):
    problems = judge("nvidia_container_toolkit", nvidia_container_toolkit_repo_url=value)["problems"]
    assert len(problems) == 1 and "is not a URL; give an http://, https:// or file:// URL" in problems[0], problems


def test_route_groups_with_limits_are_accepted():
    routes = [{"path": "/v1/chat/completions"}, {"path": "/v1/models", "group": "catalog"}]
    assert judge("nginx_tls", nginx_tls_routes=routes, nginx_tls_route_limits={"catalog": {"rate_per_second": 50, "burst": 0}})["problems"] == []
