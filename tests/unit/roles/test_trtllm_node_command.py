"""trtllm_service's node command (the forced command of the head's key on a worker of a
multi-node instance): only OpenMPI's orted runs, without a shell, with node.env as its
environment. (molecule/fleet runs it for real under mpirun.)"""
import pathlib
import runpy

import jinja2
import pytest

TEMPLATE = pathlib.Path(__file__).resolve().parents[3] / "roles" / "trtllm_service" / "templates" / "node" / "node-command.py.j2"
ORTED = ('( test ! -r ./.profile || . ./.profile;  orted -mca ess "env" -mca orte_hnp_uri "761004032.0;tcp://10.0.0.1:45523"'
         ' -mca plm_rsh_args "-F /etc/llmfleet/trtllm/node/ssh_config" --tree-spawn )')


@pytest.fixture()
def command(tmp_path, monkeypatch):
    env_file = tmp_path / "node.env"
    env_file.write_text("# managed\nCUDA_VISIBLE_DEVICES=0,1\nHOME=%s\nOMPI_MCA_plm_rsh_args=-F /x/ssh_config\n" % tmp_path)
    script = tmp_path / "node-command.py"
    # Rendered as Ansible's template module does (trim_blocks): the shebang is the first line.
    text = jinja2.Environment(trim_blocks=True).from_string(TEMPLATE.read_text()).render(
        ansible_managed="managed", __trtllm_service_node_dir=str(tmp_path))
    assert text.startswith("#!/usr/bin/python3\n")
    script.write_text(text)
    calls = []

    def fake_execve(path, argv, env):
        calls.append((path, argv, env))
        raise SystemExit(0)

    def run(original):
        monkeypatch.setenv("SSH_ORIGINAL_COMMAND", original)
        monkeypatch.setattr("os.execve", fake_execve)
        with pytest.raises(SystemExit) as exited:
            runpy.run_path(str(script), run_name="__main__")
        return exited.value.code, calls

    return run


def test_orted_runs_without_a_shell_with_the_node_environment(command, tmp_path):
    code, calls = command(ORTED)
    assert code == 0
    path, argv, env = calls[0]
    assert path == "/usr/bin/orted"
    assert argv == ["orted", "-mca", "ess", "env", "-mca", "orte_hnp_uri", "761004032.0;tcp://10.0.0.1:45523",
                    "-mca", "plm_rsh_args", "-F /etc/llmfleet/trtllm/node/ssh_config", "--tree-spawn"]
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["HOME"] == str(tmp_path)
    assert env["OMPI_MCA_plm_rsh_args"] == "-F /x/ssh_config"
    assert env["PATH"].startswith("/usr/local/sbin:") and "SSH_ORIGINAL_COMMAND" not in env


@pytest.mark.parametrize("original", [
    "id",
    "",
    "orted; rm -rf /",
    "/tmp/orted -mca ess env",
    "( test ! -r ./.profile || . ./.profile;  sh -c id )",
    "PATH=/usr/bin:$PATH ; export PATH ; orted -mca ess env",
    'orted "unbalanced',
])
def test_anything_else_is_refused(command, capsys, original):
    code, calls = command(original)
    assert code == 126 and calls == []
    assert "llmfleet-trtllm-node-command: refused:" in capsys.readouterr().err
