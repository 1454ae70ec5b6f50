"""c_locale: commands whose output is parsed run in the C locale (a FAKE module records the call)."""
from ansible_collections.llmfleet.deepseek.plugins.module_utils import c_locale


class FakeModule:
    def __init__(self):
        self.calls = []

    def run_command(self, args, **kwargs):
        self.calls.append((args, kwargs))
        return 0, "out", "err"


def test_the_command_gets_lang_and_lc_all_c_and_its_other_arguments():
    module = FakeModule()
    assert c_locale.run(module, ["dkms", "status"], data="x", check_rc=False) == (0, "out", "err")
    assert module.calls == [(["dkms", "status"], {"environ_update": {"LANG": "C", "LC_ALL": "C"}, "data": "x",
                                                  "check_rc": False})]


def test_a_callers_environment_is_added_and_the_shared_one_stays_as_it_is():
    module = FakeModule()
    c_locale.run(module, ["gpgv"], environ_update={"GNUPGHOME": "/tmp/x", "LANG": "de_DE.UTF-8"})
    assert module.calls[0][1]["environ_update"] == {"LANG": "de_DE.UTF-8", "LC_ALL": "C", "GNUPGHOME": "/tmp/x"}
    assert c_locale.ENV == {"LANG": "C", "LC_ALL": "C"}
