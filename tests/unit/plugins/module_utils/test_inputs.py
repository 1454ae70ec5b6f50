"""Role inputs judged on the controller (plugins/module_utils/inputs.py): each role's rules with
its shipped defaults (accepted) and with bad values (named: the variable, the value, what is
accepted)."""
import pathlib

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


def defaults(role, **over):
    values = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    for name, value in list(values.items()):
        if name in RENDERED:
            values[name] = RENDERED[name]
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
    ({"trtllm_service_model_revision": "refs/heads/release-1"}, "'refs/heads/release-1' names something that moves"),
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
