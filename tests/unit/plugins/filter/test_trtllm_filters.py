"""The filters the service role uses on the controller: they pass through to trtllm.py and refuse
inputs of the wrong kind with the filter's name."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmfleet.deepseek.plugins.filter import trtllm as filters

GPU = {"present": True, "count": 1, "driver_version": "580.1", "gpus": [{"memory_total_mib": 81559}]}


def test_filters_are_registered():
    assert set(filters.FilterModule().filters()) == {"trtllm_fit_problems", "trtllm_option_problems", "trtllm_serve_problems",
                                                     "trtllm_default_instance", "trtllm_flag_words", "trtllm_batch_problems"}


def test_fit_passes_through():
    assert filters.trtllm_fit_problems({"tp_size": 1, "weights_gib": 15}, GPU, "gpu-1") == []
    assert filters.trtllm_fit_problems({"tp_size": 2}, GPU, "gpu-1") == ["gpu-1: 1 instance(s) x 2 GPUs = 2 GPUs needed, the host has 1"]


@pytest.mark.parametrize("plan, gpu", [("tp8", GPU), ({"tp_size": 1}, None), ({"tp_size": "x"}, GPU)])
def test_fit_refuses_bad_input(plan, gpu):
    with pytest.raises(AnsibleFilterError, match="trtllm_fit_problems"):
        filters.trtllm_fit_problems(plan, gpu)


def test_options_refuse_a_non_dict():
    with pytest.raises(AnsibleFilterError, match="my_var must be a dict, got list"):
        filters.trtllm_option_problems([], ["a"], "my_var")
    assert filters.trtllm_option_problems({"b": 1}, ["a"], "my_var") == ["my_var: unknown key b"]


def test_serve_problems_filter():
    assert set(filters.FilterModule().filters()) >= {"trtllm_serve_problems"}
    out = filters.trtllm_serve_problems({"--tp_size": 8}, {"zzz_unknown": 1}, "main-2026")
    assert out == {"problems": ["extra_llm_api_options: unknown key zzz_unknown"], "warnings": []}
    with pytest.raises(AnsibleFilterError, match="unknown option set 1.2 \\(known: main-2026\\)"):
        filters.trtllm_serve_problems({}, {}, "1.2")
    with pytest.raises(AnsibleFilterError, match="extra_llm_api_options must be a dict, got list"):
        filters.trtllm_serve_problems({}, [], "main-2026")


def test_default_instances():
    assert [filters.trtllm_default_instance(i, 2, 8000) for i in range(2)] == [
        {"name": "0", "port": 8000, "gpus": [0, 1]}, {"name": "1", "port": 8001, "gpus": [2, 3]}]


def test_flag_words():
    assert filters.trtllm_flag_words({"key": "trust_remote_code", "value": True}) == ["--trust_remote_code"]
    assert filters.trtllm_flag_words({"key": "--max_batch_size", "value": 64}) == ["--max_batch_size", "64"]
    with pytest.raises(AnsibleFilterError, match="--chat_template has a value with whitespace"):
        filters.trtllm_flag_words({"key": "chat_template", "value": "a b"})


def test_batch_names_the_hosts_of_the_instance_outside_it():
    assert filters.trtllm_batch_problems(["gpu-b01", "gpu-b02"], ["gpu-b01"], 2) == [
        "the hosts of this instance roll together, but gpu-b02 are not in this batch (gpu-b01): run them in one play and make "
        "llmfleet_serve_serial a multiple of 2 (e.g. [2, 50%]) with the hosts of an instance next to each other in the inventory"]
    assert filters.trtllm_batch_problems(["gpu-b01", "gpu-b02"], ["gpu-b02", "gpu-b01", "gpu-c01"], 2) == []
    # an instance on one host has nothing to roll together
    assert filters.trtllm_batch_problems(["gpu-b01", "gpu-b02"], ["gpu-b01"], 1) == []
    assert filters.trtllm_batch_problems([], ["gpu-b01"], 2) == []
    with pytest.raises(AnsibleFilterError, match="trtllm_batch_problems"):
        filters.trtllm_batch_problems(["gpu-b01"], ["gpu-b01"], "two")
