"""The filters of plugins/filter/inputs.py: thin wrappers over module_utils/inputs.py."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.deepseek.plugins.filter import inputs as f

FILTERS = f.FilterModule().filters()


def test_the_filters_are_registered():
    assert set(FILTERS) == {"input_problems", "gpu_tuning_settings", "site_roles_to_check", "model_manifest_problems",
                            "site_roles", "site_roles_by_group"}


def test_input_problems_returns_problems_notes_and_types():
    spec = {"gpu_tuning_power_cap_w": {"type": "int"}}
    result = FILTERS["input_problems"]({"gpu_tuning_power_cap_w": "x"}, "gpu_tuning", spec)
    assert result["types_ok"] is False and "gpu_tuning_power_cap_w" in result["problems"][0]


@pytest.mark.parametrize("values, role, spec, message", [
    ([], "gpu_tuning", None, "the variables must be a dict"),
    ({}, "gpu_tuning", [], "the argument spec must be a dict"),
    ({}, "no_such_role", None, "no input rules for role no_such_role"),
])
def test_input_problems_refuses_what_is_not_a_role_s_variables(values, role, spec, message):
    with pytest.raises(AnsibleFilterError, match=message):
        FILTERS["input_problems"](values, role, spec)


def test_values_are_read_as_plain_data():
    class Tagged(str):
        pass
    manifest = Tagged("%s  a\n" % ("0" * 64))
    result = FILTERS["input_problems"]({"trtllm_service_model_manifest": manifest, "trtllm_service_model_revision": Tagged("main")},
                                       "trtllm_service")
    assert any("'main' names something that moves" in p for p in result["problems"])


def test_gpu_tuning_settings_overrides_the_profile_with_what_is_set():
    profiles = {"none": {}, "max": {"power_limit": "default", "compute_mode": "default"}}
    assert FILTERS["gpu_tuning_settings"](profiles, "max", {"power_limit": 500, "compute_mode": None}) == {
        "power_limit": 500, "compute_mode": "default"}
    assert FILTERS["gpu_tuning_settings"](profiles, "none", {"persistence_mode": None}) == {}
    with pytest.raises(AnsibleFilterError, match="no profile turbo"):
        FILTERS["gpu_tuning_settings"](profiles, "turbo", {})


def test_model_manifest_problems_names_the_file():
    problems = FILTERS["model_manifest_problems"]("weights.bin\n", "the manifest of m r1 (/srv/m/r1/SHA256SUMS)")
    assert problems[0].startswith("the manifest of m r1 (/srv/m/r1/SHA256SUMS): 1 line(s) are not")
    assert FILTERS["model_manifest_problems"]("%s  weights.bin\n" % ("f" * 64)) == []


def test_site_roles_to_check():
    assert FILTERS["site_roles_to_check"](["offline_repo", "ubuntu_base", "nginx_tls"], ["nginx_tls"], [], ["offline_repo"]) == [
        "offline_repo", "nginx_tls"]
    assert FILTERS["site_roles_to_check"](["ubuntu_base"], None, None) == ["ubuntu_base"]


def test_the_context_is_read_only_when_the_types_are_right():
    class Broken(dict):
        def items(self):
            raise AssertionError("the context was read")
    result = FILTERS["input_problems"]({"trtllm_service_nodes": "x"}, "trtllm_service", {"trtllm_service_nodes": {"type": "int"}},
                                       Broken(plan={}))
    assert result["types_ok"] is False


def test_site_roles():
    entries = [{"role": "ubuntu_base", "group": "llmfleet"},
               {"role": "cuda_toolkit", "group": "gpu_nodes", "switch": "llmfleet_cuda_toolkit"}]
    assert FILTERS["site_roles"](entries, {"llmfleet_cuda_toolkit": False}, ["llmfleet", "gpu_nodes"]) == ["ubuntu_base"]
    assert FILTERS["site_roles"](entries, {"llmfleet_cuda_toolkit": True}, ["gpu_nodes"]) == ["cuda_toolkit"]
    assert FILTERS["site_roles_by_group"](entries, {"llmfleet_cuda_toolkit": True}) == {
        "llmfleet": ["ubuntu_base"], "gpu_nodes": ["cuda_toolkit"]}
    with pytest.raises(AnsibleFilterError, match="site_roles: llmfleet_site_role_list entry 0"):
        FILTERS["site_roles"]([{"role": "x"}], {}, [])
    with pytest.raises(AnsibleFilterError, match="the switches must be a dict"):
        FILTERS["site_roles"](entries, ["llmfleet_cuda_toolkit"], [])
