"""Every preset of roles/trtllm_service/vars/main.yml passes the option check of the pinned
option set and fits the hardware its name says (and the one-node ones do not fit less)."""
import pathlib

import pytest
import yaml

from ansible_collections.llmfleet.deepseek.plugins.module_utils import trtllm, trtllm_options

VARS = pathlib.Path(__file__).resolve().parents[3] / "roles" / "trtllm_service" / "vars" / "main.yml"
PRESETS = yaml.safe_load(VARS.read_text())["__trtllm_service_presets"]
OWNED = yaml.safe_load(VARS.read_text())["__trtllm_service_owned_flags"]
H200 = 143771
H100 = 81559
# preset -> (GPUs per host, MiB per GPU) it is meant for
HARDWARE = {
    "deepseek-r1-fp8-8xh200": (8, H200),
    "deepseek-r1-fp8-16xh100-2nodes": (8, H100),
    "deepseek-r1-w4a8-8xh100": (8, H100),
    "deepseek-r1-distill-qwen-7b-1gpu": (1, H100),
    "deepseek-r1-distill-qwen-32b-1gpu": (1, H100),
    "deepseek-r1-distill-llama-70b-2gpu": (2, H100),
}


def host(count, mib):
    return {"present": True, "count": count, "driver_version": "580.159.04",
            "gpus": [{"index": i, "memory_total_mib": mib} for i in range(count)]}


def plan(preset):
    return {"tp_size": preset["tp_size"], "pp_size": preset["pp_size"], "ep_size": preset["ep_size"],
            "nodes": preset.get("nodes", 1), "weights_gib": preset["weights_gib"],
            "kv_fraction": preset["kv_cache_free_gpu_memory_fraction"], "min_driver_branch": 575}


def test_every_preset_is_described_here():
    assert sorted(PRESETS) == sorted(HARDWARE)


@pytest.mark.parametrize("name", sorted(HARDWARE))
def test_the_preset_passes_the_option_check(name):
    problems, _warnings = trtllm.serve_problems(PRESETS[name]["flags"], PRESETS[name]["extra_llm_api_options"],
                                                trtllm_options.OPTION_SETS["main-2026"], owned_flags=OWNED)
    assert problems == []


@pytest.mark.parametrize("name", sorted(HARDWARE))
def test_the_preset_fits_its_hardware(name):
    count, mib = HARDWARE[name]
    assert trtllm.fit_problems(plan(PRESETS[name]), host(count, mib), name) == []


def test_r1_fp8_on_one_node_of_h100_does_not_fit_but_on_two_it_does():
    one_node = dict(plan(PRESETS["deepseek-r1-fp8-16xh100-2nodes"]), nodes=1, tp_size=8, ep_size=8)
    assert "do not fit in 573 GiB" in " ".join(trtllm.fit_problems(one_node, host(8, H100)))
    assert trtllm.fit_problems(plan(PRESETS["deepseek-r1-fp8-16xh100-2nodes"]), host(8, H100)) == []
