"""The drift recorder's pieces that need no playbook: how diffs become text, how results of loops,
handlers and no_log tasks are recorded (the end-to-end run is tests/unit/playbooks/test_drift_report.py)."""
from unittest import mock

from ansible.playbook.handler import Handler

from ansible_collections.llmfleet.deepseek.plugins.callback import drift


def test_text_before_and_after_become_a_unified_diff_with_the_modules_headers():
    out = drift.diffs({"diff": {"before": "a\nb\n", "after": "a\nc\n", "before_header": "/etc/x", "after_header": "/etc/x"}}, 0)
    assert out[0]["header"] == "/etc/x"
    assert out[0]["diff"].splitlines()[:2] == ["--- /etc/x", "+++ /etc/x"]
    assert "-b" in out[0]["diff"].splitlines() and "+c" in out[0]["diff"].splitlines()


def test_structured_values_are_compared_as_sorted_json():
    out = drift.diffs({"diff": [{"before": {"power_limit_w": 700, "persistence": False}, "after": {"persistence": True, "power_limit_w": 700}}]}, 0)
    assert '-  "persistence": false,' in out[0]["diff"] and '+  "persistence": true,' in out[0]["diff"]
    assert out[0]["before"].startswith("{\n") and out[0]["header"] == ""


def test_a_prepared_diff_is_kept_as_the_module_wrote_it_and_long_texts_are_cut():
    out = drift.diffs({"diff": {"prepared": "x" * 50}}, 20)
    assert out[0]["diff"].startswith("x" * 20) and "[... 30 more characters not kept]" in out[0]["diff"]
    assert drift.diffs({"diff": {}}, 0) == [] and drift.diffs({}, 0) == []


def _recorder(check=True):
    cb = drift.CallbackModule()
    cb.check = check
    cb.get_option = lambda name: 20000
    return cb


def _task(name="T", role=None, cls=mock.MagicMock):
    task = mock.MagicMock(spec=Handler) if cls is Handler else mock.MagicMock()
    task.get_name.return_value = name
    task.action = "ansible.builtin.copy"
    task._role = None
    if role:
        task._role = mock.MagicMock()
        task._role.get_name.return_value = role
    return task


def test_loop_items_are_recorded_one_by_one_and_unchanged_items_not_at_all():
    cb = _recorder()
    cb.record("h", _task(role="ubuntu_base"), {"changed": True, "results": [
        {"changed": True, "_ansible_item_label": "a", "diff": {"before": "1\n", "after": "2\n"}},
        {"changed": False, "item": "b"}]})
    changes = cb.hosts["h"]["changes"]
    assert len(changes) == 1 and changes[0]["item"] == "a" and changes[0]["role"] == "ubuntu_base"


def test_handlers_are_kept_apart_and_no_log_values_are_not_kept():
    cb = _recorder()
    cb.record("h", _task("Restart nginx", cls=Handler), {"changed": True})
    cb.record("h", _task("Write the key map"), {"changed": True, "censored": "the output has been hidden"})
    assert [c["task"] for c in cb.hosts["h"]["handlers"]] == ["Restart nginx"]
    change = cb.hosts["h"]["changes"][0]
    assert change["diffs"] == [] and "no_log" in change["note"]


def test_outside_check_mode_nothing_is_recorded():
    cb = _recorder(check=False)
    cb.record("h", _task(), {"changed": True, "diff": {"before": "1", "after": "2"}})
    assert cb.hosts == {}


def test_the_record_is_published_as_the_controllers_facts_at_each_play():
    cb = _recorder()
    cb.record("h", _task(), {"changed": True, "diff": {"before": "1\n", "after": "2\n"}})
    play = mock.MagicMock()
    cb.v2_playbook_on_play_start(play)
    host, facts = play.get_variable_manager.return_value.set_nonpersistent_facts.call_args.args
    assert host == "localhost" and facts["llmfleet_drift_recorder"] == drift.FORMAT
    assert facts["llmfleet_drift_run"]["hosts"]["h"]["changes"][0]["diffs"][0]["after"] == "2\n"


def test_a_failure_the_play_rescued_does_not_make_the_host_failed():
    cb = _recorder()
    result = mock.MagicMock()
    result._host.get_name.return_value = "h"
    result._task = _task("Roll the instance")
    result._result = {"msg": "did not become ready"}
    cb.v2_runner_on_failed(result)
    assert cb.hosts["h"]["status"] == "failed"
    result._result = {"changed": False}
    cb.v2_runner_on_ok(result)
    assert cb.hosts["h"]["status"] == "ok" and cb.hosts["h"]["failures"][0]["rescued"] is True
