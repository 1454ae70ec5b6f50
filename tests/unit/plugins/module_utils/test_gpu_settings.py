"""GPU settings requests judged without a GPU (plugins/module_utils/gpu_settings.py): the module
and the gpu_tuning role share these functions."""
import pytest

from ansible_collections.llmfleet.deepseek.plugins.module_utils import gpu_settings as gs

UUID0 = "GPU-00000000-0000-4000-8000-000000000000"


def h100_facts(index=0, **over):
    facts = {
        "index": index, "uuid": "GPU-00000000-0000-4000-8000-%012d" % index,
        "power_limit_min_w": 200, "power_limit_max_w": 700, "power_limit_default_w": 700,
        "default_application_clocks": {"memory": 2619, "graphics": 1980},
        "supported_memory_clocks": [2619, 1593],
        "supported_graphics_clocks": {"2619": [1980, 1500, 345], "1593": [1500, 345]},
        "max_clocks": {"graphics": 1980, "sm": 1980, "memory": 2619},
    }
    facts.update(over)
    return facts


@pytest.mark.parametrize("params, expected", [
    ({"power_limit": 500}, {"power_limit": 500}),
    ({"power_limit": "500"}, {"power_limit": 500}),
    ({"power_limit": 500.0}, {"power_limit": 500}),
    ({"power_limit": "default"}, {"power_limit": "default"}),
    ({"locked_clocks": {"min": 1000, "max": 1000}}, {"locked_clocks": {"min": 1000, "max": 1000}}),
    ({"locked_clocks": "reset"}, {"locked_clocks": "reset"}),
    ({"application_clocks": {"memory": "2619", "graphics": 1980}}, {"application_clocks": {"memory": 2619, "graphics": 1980}}),
    ({"persistence_mode": "yes", "compute_mode": "prohibited"}, {"persistence_mode": True, "compute_mode": "prohibited"}),
    ({"power_limit": None, "compute_mode": None}, {}),
])
def test_good_requests_parse(params, expected):
    assert gs.parse_request(params) == (expected, [])


@pytest.mark.parametrize("params, message", [
    ({"locked_clocks": {"min": 2000, "max": 1000}}, "min 2000 MHz is above max 1000 MHz"),
    ({"power_limit": 0}, "power_limit: 0 is not accepted; give watts above 0, or 'default'"),
    ({"power_limit": -250}, "power_limit: -250 is not accepted; give watts above 0"),
    ({"power_limit": 450.5}, "power_limit: 450.5 is not accepted; give watts as an integer"),
    ({"power_limit": True}, "power_limit: True is not accepted"),
    ({"application_clocks": {"memory": 0, "graphics": 1980}}, "clocks are MHz above 0 (memory)"),
    ({"application_clocks": {"memory": 2619}}, "give {memory: MHz, graphics: MHz} or 'default'"),
    ({"locked_clocks": "unlock"}, "give {min: MHz, max: MHz} or 'reset'"),
    ({"locked_clocks": {"min": -1, "max": 0}}, "clocks are MHz above 0 (max, min)"),
    ({"compute_mode": "exclusive"}, "compute_mode: 'exclusive' is not accepted; give one of default, exclusive_process, prohibited"),
    ({"persistence_mode": "maybe"}, "persistence_mode: 'maybe' is not accepted; give true or false"),
])
def test_bad_requests_are_named(params, message):
    request, problems = gs.parse_request(params)
    assert len(problems) == 1 and message in problems[0], problems
    assert list(params)[0] not in request


def test_labels_name_the_variable():
    problems = gs.parse_request({"locked_clocks": {"min": 3, "max": 2}}, {"locked_clocks": "gpu_tuning_locked_clocks"})[1]
    assert problems[0].startswith("gpu_tuning_locked_clocks: ")


@pytest.mark.parametrize("selectors, message", [
    (["GPU0"], "'GPU0' is not a GPU index"),
    (["GPU-00000000-0000-4000-8000-00000000000"], "is not a GPU index"),
    (["x", "GPU0"], "'x', 'GPU0' are not a GPU index"),
    (["MIG-4f1c9a3e-7d2b-5e8f-9a1c-2b3d4e5f6a7b"], "is a MIG device; give the parent GPU's index or uuid"),
    (["\u0663"], "is not a GPU index"),
    (["0", "-1"], "'-1' is not"),
    (["GPU-123"], "'GPU-123' is not"),
    (["0", "0"], "0 named more than once"),
    ([UUID0, UUID0], "named more than once"),
    (["1", "01"], "1 named more than once"),
    ("0", "is not a list"),
    ([True], "True is not"),
])
def test_bad_selectors(selectors, message):
    problems = gs.selector_problems(selectors, "gpu_tuning_gpus")
    assert problems and message in " ".join(problems), problems
    assert all(p.startswith("gpu_tuning_gpus: ") for p in problems)


@pytest.mark.parametrize("selectors", [[], None, ["0", "7", UUID0], [3]])
def test_good_selectors(selectors):
    assert gs.selector_problems(selectors) == []


@pytest.mark.parametrize("selectors, parsed", [
    ([" 1", "07", 3], ["1", "7", "3"]),
    (["gpu-" + UUID0[4:].upper()], [UUID0]),
    (["GPU-ABCDEF01-0000-4000-8000-00000000000A"], ["GPU-abcdef01-0000-4000-8000-00000000000a"]),
])
def test_selectors_are_read_as_nvml_names_the_gpus(selectors, parsed):
    """Any case, leading zeros and blanks: one rule for nvidia_gpu, nvidia_gpu_info and gpu_tuning."""
    assert gs.parse_selectors(selectors) == (parsed, [])


def test_repeats_are_read_once_where_allowed():
    assert gs.parse_selectors(["0", "00", UUID0, UUID0.lower()], repeats=True) == (["0", UUID0], [])


def test_select_against_known_gpus():
    gpus = [h100_facts(0), h100_facts(1)]
    chosen, problems = gs.select(["1", UUID0], gpus, "gpu_tuning_gpus", "gpu-a01")
    assert [g["index"] for g in chosen] == [1, 0] and problems == []
    chosen, problems = gs.select(["2"], gpus, "gpu_tuning_gpus", "gpu-a01")
    assert problems == ["gpu_tuning_gpus: no GPU 2 on gpu-a01; it has 2 GPU(s): indices 0-1, uuids "
                        "GPU-00000000-0000-4000-8000-000000000000, GPU-00000000-0000-4000-8000-000000000001"]
    assert gs.select([], gpus)[0] == gpus


@pytest.mark.parametrize("request_, message", [
    ({"power_limit": 900}, "GPU 0 (%s): power_limit 900 W is outside what it accepts (200-700 W)" % UUID0),
    ({"application_clocks": {"memory": 3000, "graphics": 1980}}, "memory 3000 MHz is not supported; supported: 2619, 1593"),
    ({"application_clocks": {"memory": 1593, "graphics": 1980}}, "graphics 1980 MHz is not supported at memory 1593 MHz"),
    ({"locked_clocks": {"min": 300, "max": 1980}}, "locked_clocks 300-1980 MHz is not accepted; min <= max, both within 345-1980 MHz"),
])
def test_a_gpu_refuses_what_it_cannot_take(request_, message):
    want, problems = gs.desired_for(h100_facts(), request_)
    assert want == {} and len(problems) == 1 and message in problems[0], problems


def test_defaults_resolve_to_the_gpu_values():
    want, problems = gs.desired_for(h100_facts(), {"power_limit": "default", "application_clocks": "default",
                                                   "locked_clocks": "reset", "compute_mode": "default"})
    assert problems == []
    assert want == {"power_limit": 700, "application_clocks": {"memory": 2619, "graphics": 1980},
                    "locked_clocks": None, "compute_mode": "default"}


def test_a_gpu_without_power_constraints_says_so():
    problems = gs.desired_for(h100_facts(power_limit_min_w=None), {"power_limit": 300}, {"power_limit": "gpu_tuning_power_limit"})[1]
    assert "gpu_tuning_power_limit cannot be managed here" in problems[0]


def test_against_gpus_selects_then_judges_each():
    gpus = [h100_facts(0), h100_facts(1, power_limit_max_w=400)]
    assert gs.against_gpus({"power_limit": 500}, ["0"], gpus) == []
    assert gs.against_gpus({"power_limit": 500}, [], gpus) == [
        "GPU 1 (GPU-00000000-0000-4000-8000-000000000001): power_limit 500 W is outside what it accepts (200-400 W)"]
    assert gs.against_gpus({}, ["5"], gpus, variable="gpu_tuning_gpus", host="h")[0].startswith("gpu_tuning_gpus: no GPU 5 on h")


def test_judge_says_everything_at_once_selectors_first():
    request, selectors, problems = gs.judge({"gpus": ["01", "x"], "power_limit": 0, "compute_mode": "default"})
    assert request == {"compute_mode": "default"} and selectors == ["1"]
    assert problems[0].startswith("gpus: 'x' is not") and problems[1].startswith("power_limit: 0 is not accepted")


# -- the desired-state document --------------------------------------------------------------
GOOD_DOC = {"format": 1, "persistence_daemon": False,
            "options": {"gpus": ["0"], "state_file": "/var/lib/llmfleet/nvidia-gpu-state.json",
                        "persistence_mode": True, "power_limit": 500}}


def test_a_good_document_has_no_problem():
    assert gs.document_problems(GOOD_DOC) == []
    assert gs.document_problems({"format": 1, "options": {}}) == []


@pytest.mark.parametrize("doc, message", [
    ([], "the document is list, not a JSON object"),
    (dict(GOOD_DOC, format=2), "format: 2 is not accepted; this code reads format 1"),
    (dict(GOOD_DOC, extra=1), "unknown keys extra"),
    (dict(GOOD_DOC, persistence_daemon="yes"), "persistence_daemon: 'yes' is not accepted"),
    (dict(GOOD_DOC, options=None), "options: None is not accepted"),
    (dict(GOOD_DOC, options={"power_limt": 500}), "options: unknown power_limt; options are gpus, state_file, persistence_mode"),
    (dict(GOOD_DOC, options={"state_file": "state.json"}), "options.state_file: 'state.json' is not accepted"),
    (dict(GOOD_DOC, options={"locked_clocks": {"min": 2, "max": 1}}), "locked_clocks: {'min': 2, 'max': 1} is not accepted; min 2 MHz"),
    (dict(GOOD_DOC, options={"gpus": ["GPU0"]}), "gpus: 'GPU0' is not a GPU index"),
])
def test_a_document_that_cannot_be_applied_is_named(doc, message):
    problems = gs.document_problems(doc)
    assert problems and message in "; ".join(problems), problems


def test_read_document_names_the_file(tmp_path):
    path = tmp_path / "gpu-settings.json"
    assert gs.read_document(str(path))[1][0].startswith("%s cannot be read" % path)
    path.write_text("{")
    assert gs.read_document(str(path))[1][0].startswith("%s is not JSON" % path)
    path.write_text('{"format": 1, "options": {"power_limit": 0}}')
    assert gs.read_document(str(path))[1] == ["%s: power_limit: 0 is not accepted; give watts above 0, or 'default'" % path]
