"""The fit check and the option check of trtllm.py, on the deployments the presets describe."""
import pytest

from ansible_collections.llmfleet.deepseek.plugins.module_utils import trtllm

H200 = 143771  # MiB, NVIDIA H200 141 GB
H100 = 81559   # MiB, NVIDIA H100 80GB HBM3 (as the device reports it)


def host(count, mib, driver="580.95.05"):
    return {"present": True, "count": count, "driver_version": driver,
            "gpus": [{"index": i, "memory_total_mib": mib} for i in range(count)]}


R1_FP8 = {"tp_size": 8, "ep_size": 8, "weights_gib": 642, "kv_fraction": 0.95, "min_driver_branch": 575}


def test_r1_fp8_fits_eight_h200():
    assert trtllm.fit_problems(R1_FP8, host(8, H200)) == []


def test_r1_fp8_does_not_fit_eight_h100_and_says_by_how_much():
    problems = trtllm.fit_problems(R1_FP8, host(8, H100), "gpu-07")
    assert problems == ["gpu-07: instance 0: weights 642 GiB do not fit in 573 GiB of GPU memory"
                        " (8 x 80 GiB, 10% kept for the runtime)"]


def test_r1_fp8_fits_sixteen_h100_over_two_nodes():
    plan = dict(R1_FP8, tp_size=8, pp_size=2, nodes=2)
    assert trtllm.fit_problems(plan, host(8, H100)) == []


def test_w4a8_fits_eight_h100():
    assert trtllm.fit_problems({"tp_size": 8, "ep_size": 8, "weights_gib": 340, "kv_fraction": 0.9}, host(8, H100)) == []


def test_distills_one_instance_per_gpu():
    plan = {"tp_size": 1, "weights_gib": 15.3, "kv_fraction": 0.9}
    assert trtllm.instance_gpus(plan, 8) == [[i] for i in range(8)]
    assert trtllm.fit_problems(plan, host(8, H100)) == []


def test_seventy_b_distill_in_bf16_leaves_no_kv_cache_on_one_h100():
    problems = trtllm.fit_problems({"tp_size": 1, "weights_gib": 131.4}, host(1, H100))
    assert problems and "do not fit in 72 GiB" in problems[0]


def test_kv_cache_too_small_is_named_with_the_numbers():
    problems = trtllm.fit_problems({"tp_size": 1, "weights_gib": 70, "kv_fraction": 0.5, "min_kv_cache_gib": 4}, host(1, H100))
    assert len(problems) == 1
    assert "0.8 GiB would be left for the KV cache (fraction 0.50 of 1.7 GiB free); at least 4.0 GiB" in problems[0]


def test_too_few_gpus():
    assert trtllm.fit_problems({"tp_size": 8}, host(4, H100), "gpu-01") == [
        "gpu-01: 1 instance(s) x 8 GPUs = 8 GPUs needed, the host has 4"]
    assert trtllm.fit_problems({"tp_size": 1, "instance_count": 6}, host(4, H100), "gpu-01") == [
        "gpu-01: 6 instance(s) x 1 GPUs = 6 GPUs needed, the host has 4"]


@pytest.mark.parametrize("plan, expected", [
    ({"tp_size": 8, "ep_size": 3}, "ep_size 3 must divide tp_size 8"),
    ({"tp_size": 2, "instances": [[0, 1], [1, 2]]}, "GPU 1 is in instances 0 and 1"),
    ({"tp_size": 2, "instances": [[0, 9]]}, "instance 0 uses GPU 9; this host has GPUs 0-7"),
    ({"tp_size": 4, "instances": [[0, 1]]}, "instance 0 has 2 GPUs [0, 1]; tp_size 4 x pp_size 1 over 1 node(s) needs 4 per host"),
    ({"tp_size": 4, "pp_size": 3, "nodes": 8}, "12 GPUs cannot be split evenly over 8 nodes"),
    ({"tp_size": 0}, "must be at least 1"),
])
def test_misfits_name_the_numbers(plan, expected):
    problems = trtllm.fit_problems(plan, host(8, H100))
    assert any(expected in p for p in problems), problems


def test_no_gpu_is_a_misfit():
    problems = trtllm.fit_problems({"tp_size": 1}, {"present": False, "count": 0, "gpus": []}, "edge-1")
    assert problems == ["edge-1: no GPU (llmfleet_gpu.present is false); the plan needs 1 per host"]


def test_old_driver_branch():
    problems = trtllm.fit_problems(R1_FP8, host(8, H200, driver="570.172.08"))
    assert problems == ["this host: driver 570.172.08 is older than branch 575, which this TensorRT-LLM needs"]


def test_unknown_options_name_the_key_and_a_guess():
    known = ["cuda_graph_config", "kv_cache_config", "enable_attention_dp", "speculative_config"]
    problems = trtllm.option_problems({"use_cuda_graph": True, "kv_cache_config": {}, "zzz": 1}, known, "extra")
    assert problems == ["extra: unknown key use_cuda_graph (did you mean cuda_graph_config?)", "extra: unknown key zzz"]
    assert trtllm.option_problems({"--tp_siz": 8, "--port": 1}, ["tp_size", "port"], "flags", flags=True) == [
        "flags: unknown flag --tp_siz (did you mean tp_size?)"]


def _set():
    from ansible_collections.llmfleet.deepseek.plugins.module_utils import trtllm_options
    return trtllm_options.OPTION_SETS["main-2026"]


def test_option_set_has_what_deepseek_deployments_use():
    option_set = _set()
    flags = trtllm.known_flags(option_set)
    for flag in ("tp_size", "tensor_parallel_size", "pp_size", "ep_size", "kv_cache_free_gpu_memory_fraction",
                 "extra_llm_api_options", "config", "reasoning_parser", "trust_remote_code", "max_batch_size"):
        assert flag in flags
    for key in ("cuda_graph_config", "kv_cache_config", "speculative_config", "enable_attention_dp", "moe_config"):
        assert key in option_set["keys"]
    assert "use_cuda_graph" not in option_set["keys"]
    assert "free_gpu_memory_fraction" in option_set["kv_cache_config"]


def test_serve_problems_on_a_typical_r1_configuration():
    flags = {"--max_batch_size": 64, "max_num_tokens": 8192, "--reasoning_parser": "deepseek-r1"}
    options = {"enable_attention_dp": True, "cuda_graph_config": {"enable_padding": True, "batch_sizes": [1, 2, 4]},
               "kv_cache_config": {"free_gpu_memory_fraction": 0.9, "dtype": "fp8"},
               "speculative_config": {"decoding_type": "MTP", "num_nextn_predict_layers": 3}}
    assert trtllm.serve_problems(flags, options, _set()) == ([], [])


def test_serve_problems_name_every_mistake():
    flags = {"--port": 9000, "--max_batch_sise": 8}
    options = {"use_cuda_graph": True, "enable_attenton_dp": True, "backend": "pytorch",
               "kv_cache_config": {"free_gpu_mem_fraction": 0.9}, "cuda_graph_config": [1]}
    problems, warnings = trtllm.serve_problems(flags, options, _set(), owned_flags=("host", "port"),
                                               flags_variable="trtllm_service_flags",
                                               options_variable="trtllm_service_extra_llm_api_options")
    assert problems == [
        "trtllm_service_flags: --port is set by the role (from its own variables); remove it",
        "trtllm_service_flags: unknown flag --max_batch_sise (did you mean max_batch_size?)",
        "trtllm_service_extra_llm_api_options: use_cuda_graph was renamed to cuda_graph_config in this TensorRT-LLM",
        "trtllm_service_extra_llm_api_options: unknown key enable_attenton_dp (did you mean enable_attention_dp?)",
        "trtllm_service_extra_llm_api_options.kv_cache_config: unknown key free_gpu_mem_fraction"
        " (did you mean free_gpu_memory_fraction?)",
        "trtllm_service_extra_llm_api_options.cuda_graph_config must be a mapping",
    ]
    assert warnings == ["trtllm_service_extra_llm_api_options: backend is deprecated in this TensorRT-LLM"]


def test_extra_keys_extend_the_set():
    assert trtllm.serve_problems({}, {"a_new_release_key": 1}, _set(), extra_keys=["a_new_release_key"]) == ([], [])
