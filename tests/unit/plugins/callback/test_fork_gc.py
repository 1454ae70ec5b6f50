"""The fork_gc callback: a forked child freezes the heap it inherited; the controller does not."""
import gc
import os

from ansible_collections.llmfleet.deepseek.plugins.callback import fork_gc


def _child_freeze_count():
    """Fork; the child reports gc.get_freeze_count() (capped at 255) as its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os._exit(min(gc.get_freeze_count(), 255))
    status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_freezes_what_it_inherited_and_the_parent_keeps_collecting():
    cb = fork_gc.CallbackModule()
    assert cb.CALLBACK_NEEDS_ENABLED and cb.CALLBACK_TYPE == "aggregate"
    assert fork_gc._REGISTERED == [True]
    kept = [[index] for index in range(10)]  # tracked objects the child inherits
    parent_before = gc.get_freeze_count()
    assert _child_freeze_count() > 0
    assert gc.get_freeze_count() == parent_before  # the controller's generations are untouched
    assert gc.isenabled()
    del kept


def test_the_hook_is_registered_once_however_often_the_plugin_loads():
    fork_gc.CallbackModule()
    fork_gc.CallbackModule()
    assert fork_gc.register() is False
    assert fork_gc._REGISTERED == [True]
