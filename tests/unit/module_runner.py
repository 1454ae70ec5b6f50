"""Runs a module of this collection in-process for unit tests: the module's options go in through
ansible-core's patch_module_args, exit_json/fail_json come back as an `Exited` exception."""
from ansible.module_utils.testing import patch_module_args


class Exited(Exception):
    """What the module returned: `result` (the dict) and whether it `failed`."""

    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


def run_module(monkeypatch, module_file, args, make_runner):
    """Build module_file's AnsibleModule from `args`, run make_runner(module).run(), return Exited."""

    def exit_json(self, **kwargs):
        raise Exited(kwargs, False)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise Exited(kwargs, True)

    monkeypatch.setattr(module_file.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(module_file.AnsibleModule, "fail_json", fail_json)
    with patch_module_args(args):
        module = module_file.build_module()
        try:
            module.exit_json(**make_runner(module).run())
        except Exited as done:
            return done
    raise AssertionError("the module neither exited nor failed")


def loader_for(lib):
    """An NVML loader returning `lib`, or raising ImportError when lib is None (no nvidia-ml-py)."""

    def loader():
        if lib is None:
            raise ImportError("No module named 'pynvml'")
        return lib

    return loader
