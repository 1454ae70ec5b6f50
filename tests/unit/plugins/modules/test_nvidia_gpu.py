"""nvidia_gpu (desired GPU settings) against the FAKE NVML binding (tests/unit/fakes/fake_pynvml.py)."""
import json

import pytest
import yaml

from ansible_collections.llmfleet.deepseek.plugins.module_utils import gpu_settings
from ansible_collections.llmfleet.deepseek.plugins.modules import nvidia_gpu
from fakes.fake_pynvml import FakePynvml, NVML_ERROR_DRIVER_NOT_LOADED, h100
from module_runner import loader_for, run_module


@pytest.fixture
def run(monkeypatch, tmp_path):
    state_file = tmp_path / "state" / "nvidia-gpu-state.json"

    def _run(args, lib, check=False, diff=False):
        args = dict(args, state_file=str(state_file), _ansible_check_mode=check, _ansible_diff=diff)
        done = run_module(monkeypatch, nvidia_gpu, args,
                          lambda module: nvidia_gpu.GpuSettings(module, loader=loader_for(lib)))
        done.state_file = state_file
        return done

    return _run


MAX_PERF = {"persistence_mode": True, "application_clocks": {"memory": 2619, "graphics": 1980},
            "power_limit": 700, "compute_mode": "default"}


def test_settings_the_gpu_already_has_change_nothing(run):
    lib = FakePynvml()
    done = run(MAX_PERF, lib)
    assert not done.failed
    assert done.result["changed"] is False and done.result["changes"] == 0
    assert done.result["gpus"] == [{"index": 0, "uuid": "GPU-00000000-0000-4000-8000-000000000000", "changes": {}}]
    assert lib.setters_called() == []


def test_defaults_keywords_match_a_default_gpu(run):
    lib = FakePynvml()
    done = run({"application_clocks": "default", "power_limit": "default", "locked_clocks": "reset"}, lib)
    assert done.result["changed"] is False and lib.setters_called() == []


@pytest.mark.parametrize("args, setter, before, after", [
    ({"persistence_mode": False}, "nvmlDeviceSetPersistenceMode", True, False),
    ({"compute_mode": "exclusive_process"}, "nvmlDeviceSetComputeMode", "default", "exclusive_process"),
    ({"power_limit": 500}, "nvmlDeviceSetPowerManagementLimit", 700, 500),
    ({"application_clocks": {"memory": 1593, "graphics": 1500}}, "nvmlDeviceSetApplicationsClocks",
     {"memory": 2619, "graphics": 1980}, {"memory": 1593, "graphics": 1500}),
])
def test_each_setting_changes_when_different_and_reads_back(run, args, setter, before, after):
    lib = FakePynvml()
    done = run(args, lib)
    assert not done.failed, done.result
    key = list(args)[0]
    assert done.result["changed"] is True and done.result["changes"] == 1
    assert done.result["gpus"][0]["changes"] == {key: {"before": before, "after": after}}
    assert lib.setters_called() == [setter]
    again = run(args, lib)  # idempotent: the second run finds the GPU as asked
    assert again.result["changed"] is False


def test_back_to_default_clocks_and_power_use_the_gpu_defaults(run):
    gpu = h100(0, app_clocks={0: 1500, 2: 1593}, power_limit=500000)
    lib = FakePynvml(gpus=[gpu])
    done = run({"application_clocks": "default", "power_limit": "default"}, lib)
    assert done.result["gpus"][0]["changes"] == {
        "power_limit": {"before": 500, "after": 700},
        "application_clocks": {"before": {"memory": 1593, "graphics": 1500}, "after": {"memory": 2619, "graphics": 1980}},
    }
    # Defaults are restored with NVML's reset, not pinned as explicit clocks.
    assert lib.setters_called() == ["nvmlDeviceSetPowerManagementLimit", "nvmlDeviceResetApplicationsClocks"]


def test_locked_clocks_are_recorded_because_nvml_cannot_read_them(run):
    lib = FakePynvml()
    done = run({"locked_clocks": {"min": 1755, "max": 1980}}, lib)
    assert done.result["gpus"][0]["changes"] == {"locked_clocks": {"before": None, "after": {"min": 1755, "max": 1980}}}
    assert lib.gpus[0]["locked"] == (1755, 1980)
    assert json.loads(done.state_file.read_text()) == {lib.gpus[0]["uuid"]: {"min": 1755, "max": 1980}}
    assert run({"locked_clocks": {"min": 1755, "max": 1980}}, lib).result["changed"] is False
    reset = run({"locked_clocks": "reset"}, lib)
    assert reset.result["gpus"][0]["changes"]["locked_clocks"] == {"before": {"min": 1755, "max": 1980}, "after": None}
    assert lib.gpus[0]["locked"] is None and json.loads(done.state_file.read_text()) == {}


def test_check_mode_reports_exactly_and_sets_nothing(run):
    lib = FakePynvml(gpus=[h100(0), h100(1)])
    args = {"persistence_mode": False, "power_limit": 450, "locked_clocks": {"min": 1500, "max": 1800},
            "compute_mode": "prohibited", "application_clocks": {"memory": 1593, "graphics": 1410}}
    done = run(args, lib, check=True)
    assert done.result["changed"] is True and done.result["changes"] == 10
    assert lib.setters_called() == []
    assert not done.state_file.exists()
    assert lib.gpus[0]["power_limit"] == 700000 and lib.gpus[1]["persistence"] == 1


def test_diff_shows_only_what_changes_per_gpu(run):
    lib = FakePynvml(gpus=[h100(0), h100(1, power_limit=600000)])
    done = run({"power_limit": 600, "persistence_mode": True}, lib, check=True, diff=True)
    assert done.result["diff"] == [{
        "before_header": "GPU 0 (GPU-00000000-0000-4000-8000-000000000000)",
        "after_header": "GPU 0 (GPU-00000000-0000-4000-8000-000000000000)",
        "before": {"power_limit": 700}, "after": {"power_limit": 600},
    }]


def test_selection_changes_only_the_selected_gpus(run):
    lib = FakePynvml(gpus=[h100(i) for i in range(4)])
    done = run({"gpus": ["2", "GPU-00000000-0000-4000-8000-000000000003"], "power_limit": 400}, lib)
    assert [g["index"] for g in done.result["gpus"]] == [2, 3]
    assert [g["power_limit"] for g in lib.gpus] == [700000, 700000, 400000, 400000]


@pytest.mark.parametrize("args, message", [
    ({"power_limit": 900}, "GPU 1 (GPU-00000000-0000-4000-8000-000000000001): power_limit 900 W is outside what it accepts (200-700 W)"),
    ({"application_clocks": {"memory": 3000, "graphics": 1980}},
     "GPU 1 (GPU-00000000-0000-4000-8000-000000000001): application_clocks memory 3000 MHz is not supported; supported: 2619, 1593"),
    ({"application_clocks": {"memory": 2619, "graphics": 1981}},
     "application_clocks graphics 1981 MHz is not supported at memory 2619 MHz; supported: 345-1980 MHz"),
    ({"locked_clocks": {"min": 1900, "max": 1990}}, "locked_clocks 1900-1990 MHz is not accepted; min <= max, both within 345-1980 MHz"),
    ({"locked_clocks": {"min": 300, "max": 1800}}, "locked_clocks 300-1800 MHz is not accepted"),
])
def test_a_request_one_gpu_cannot_take_changes_no_gpu(run, args, message):
    # GPU 0 could take most of these; GPU 1 could not, so neither is touched.
    lib = FakePynvml(gpus=[h100(0, power_constraints=[200000, 1000000]), h100(1)])
    done = run(dict(args, persistence_mode=False), lib)
    assert done.failed
    assert done.result["msg"].startswith("nothing was changed on any GPU: ")
    assert message in done.result["msg"]
    assert lib.setters_called() == []


@pytest.mark.parametrize("args, message", [
    ({"power_limit": "lots"}, "power_limit: 'lots' is not accepted; give watts as an integer, or 'default'"),
    ({"power_limit": True}, "power_limit: True is not accepted"),
    ({"application_clocks": {"memory": 2619}}, "application_clocks: {'memory': 2619} is not accepted; give {memory: MHz, graphics: MHz} or 'default'"),
    ({"application_clocks": "fast"}, "application_clocks: 'fast' is not accepted"),
    ({"locked_clocks": "unlock"}, "locked_clocks: 'unlock' is not accepted; give {min: MHz, max: MHz} or 'reset'"),
])
def test_malformed_options_fail_before_nvml_starts(run, args, message):
    lib = FakePynvml()
    done = run(args, lib)
    assert done.failed and done.result["msg"].startswith(message)
    assert lib.calls == []


def test_unknown_uuid_names_what_exists(run):
    lib = FakePynvml()
    missing = "GPU-0000dead-0000-4000-8000-000000000000"
    done = run({"gpus": [missing], "power_limit": 500}, lib)
    assert done.failed and done.result["msg"].startswith("gpus: no GPU %s on this host; it has 1 GPU(s)" % missing)
    assert lib.setters_called() == []


@pytest.mark.parametrize("args, message", [
    ({"locked_clocks": {"min": 2000, "max": 1000}},
     "locked_clocks: {'min': 2000, 'max': 1000} is not accepted; min 2000 MHz is above max 1000 MHz"),
    ({"power_limit": 0}, "power_limit: 0 is not accepted; give watts above 0, or 'default'"),
    ({"power_limit": "-300"}, "power_limit: '-300' is not accepted; give watts above 0"),
    ({"application_clocks": {"memory": 0, "graphics": 1980}}, "clocks are MHz above 0 (memory)"),
    ({"locked_clocks": {"min": -5, "max": 1000}}, "clocks are MHz above 0 (min)"),
    ({"gpus": ["GPU0"]}, "gpus: 'GPU0' is not a GPU index (0, 1, ...) or a GPU uuid"),
    ({"gpus": ["0", "gpu-5b9c"]}, "gpus: 'gpu-5b9c' is not a GPU index"),
    ({"gpus": ["1", "1"]}, "gpus: 1 named more than once"),
])
@pytest.mark.parametrize("lib", [
    FakePynvml(),
    FakePynvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED),
    None,
], ids=["gpu", "no-driver", "no-nvidia-ml-py"])
def test_values_no_gpu_could_take_get_their_own_message_on_every_host(run, args, message, lib):
    """Judged before NVML starts: the same message on a GPU host, on a host whose driver is not
    loaded, and on a host without nvidia-ml-py - never 'NVML unavailable'."""
    done = run(dict({"power_limit": 500}, **args), lib)
    assert done.failed
    assert message in done.result["msg"], done.result["msg"]
    assert "NVML" not in done.result["msg"] and "nvidia-ml-py" not in done.result["msg"]
    if lib is not None:
        assert lib.calls == []


def test_every_problem_is_named_at_once(run):
    done = run({"gpus": ["x"], "power_limit": 0, "locked_clocks": {"min": 3, "max": 2}}, FakePynvml())
    assert done.failed
    for part in ("gpus: 'x'", "power_limit: 0", "min 3 MHz is above max 2 MHz"):
        assert part in done.result["msg"]


def test_well_formed_values_still_reach_the_gpu_checks(run):
    """A uuid and a float that is a whole number are accepted."""
    lib = FakePynvml()
    done = run({"gpus": ["GPU-00000000-0000-4000-8000-000000000000"], "power_limit": 500.0}, lib)
    assert not done.failed, done.result
    assert done.result["gpus"][0]["changes"] == {"power_limit": {"before": 700, "after": 500}}


def test_a_gpu_that_does_not_take_the_value_fails_the_read_back(run):
    lib = FakePynvml(gpus=[h100(0, ignored={"nvmlDeviceSetPowerManagementLimit"})])
    done = run({"power_limit": 500}, lib)
    assert done.failed and done.result["changed"] is True
    assert done.result["msg"] == ("GPU 0 (GPU-00000000-0000-4000-8000-000000000000) did not take the settings: "
                                  "power_limit reads 700, not 500")


def test_permission_refused_is_a_clear_message_naming_what_was_applied(run):
    lib = FakePynvml(gpus=[h100(0), h100(1, refused={"nvmlDeviceSetPowerManagementLimit"})])
    done = run({"power_limit": 500}, lib)
    assert done.failed and done.result["changed"] is True
    assert done.result["msg"] == (
        "GPU 1 (GPU-00000000-0000-4000-8000-000000000001): setting power_limit to 500 failed: "
        "Insufficient Permissions (NVML code 4) - NVML refuses it to this user (run as root). "
        "Applied before the failure: GPU 0 power_limit")


def test_missing_library(run):
    done = run({"power_limit": 500}, None)
    assert done.failed and "nvidia-ml-py" in done.result["msg"]


def test_driver_not_loaded(run):
    done = run({"power_limit": 500}, FakePynvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED))
    assert done.failed
    assert done.result["msg"].startswith("NVML is unavailable on this host: the NVIDIA driver is not loaded")


def test_the_options_are_gpu_settings_own():
    """One table: the module's options (documented and accepted) are the desired-state document's
    (gpu_settings.OPTIONS), so a new setting needs no second list here."""
    assert set(yaml.safe_load(nvidia_gpu.DOCUMENTATION)["options"]) == set(gpu_settings.OPTIONS)


def test_a_uuid_in_upper_case_names_the_gpu(run):
    lib = FakePynvml(gpus=[h100(0, uuid="GPU-abcdef01-0000-4000-8000-00000000000a")])
    done = run({"gpus": ["GPU-ABCDEF01-0000-4000-8000-00000000000A"], "power_limit": 500}, lib, check=True)
    assert not done.failed, done.result
    assert done.result["gpus"][0]["uuid"] == "GPU-abcdef01-0000-4000-8000-00000000000a"
