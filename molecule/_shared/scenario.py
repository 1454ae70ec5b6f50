"""What the Molecule scenarios' testinfra tests share: the scenario's directory and inventory (from
the environment Molecule's verifier runs pytest in), a host of the inventory, a playbook of the
scenario run with ansible-playbook, its output with the whitespace folded, its PLAY RECAP, and the
probe an instance runs against its own TLS edge.

A plain module, not a conftest.py: the verifier runs pytest in the scenario directory on the test
files alone, so pytest's rootdir (and the last directory it reads conftest.py files from) is the
scenario, never molecule/. Each test file puts this directory on sys.path itself (one line)."""
import json
import os
import re
import subprocess

import testinfra

# Ansible's colours, when a run has them (Molecule asks for them when its own output is a terminal).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# One host's line of the PLAY RECAP: "name : ok=3 changed=1 unreachable=0 failed=0 skipped=2 ...".
_RECAP_LINE = re.compile(r"^(\S+)\s+:\s+(ok=.*)$", re.M)
_RECAP_FIELD = re.compile(r"(\w+)=(\d+)")
# A GET from the instance to its own edge (certificate not checked: the test looks at the answer),
# one line a request: "<status> <body>", or "<path> key|nokey <status> <body>" when labelled.
_EDGE_PROBE = """python3 -c '
import http.client, ssl
ctx = ssl._create_unverified_context()
for path, key in %s:
    c = http.client.HTTPSConnection("127.0.0.1", 443, context=ctx, timeout=5)
    c.request("GET", path, headers={"Authorization": "Bearer " + key} if key else {})
    r = c.getresponse()
    print(%sr.status, r.read().decode().strip())
'"""


def scenario_dir():
    """The scenario's directory (molecule.yml's verifier env: LLMFLEET_SCENARIO_DIR)."""
    return os.environ["LLMFLEET_SCENARIO_DIR"]


def project_dir():
    """The repository (the collection's root), two levels above the scenario."""
    return os.path.abspath(os.path.join(scenario_dir(), "..", ".."))


def inventory():
    """The inventory Molecule wrote for the scenario's instances."""
    return os.environ["MOLECULE_INVENTORY_FILE"]


def ephemeral_dir():
    """Molecule's scratch directory for the scenario (removed with the instances)."""
    return os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


def node(name):
    """The testinfra host `name` of the scenario's inventory (for a test that is not run once per
    host by the `host` fixture, or that looks at another host)."""
    return testinfra.get_host("ansible://" + name, ansible_inventory=inventory())


def extra_vars(*values):
    """-e arguments, one per value: a string as it is, anything else as JSON."""
    args = []
    for value in values:
        args += ["-e", value if isinstance(value, str) else json.dumps(value)]
    return args


def playbook(name, *args, timeout=900, env=None):
    """ansible-playbook on the scenario's inventory: `name` relative to the scenario directory (or
    an absolute path), then `args`. The CompletedProcess, with text stdout and stderr; a failed run
    is returned, not raised. `env`: the whole environment (None: this process's)."""
    cmd = ["ansible-playbook", "-i", inventory(), os.path.join(scenario_dir(), name)] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def flat(run):
    """stdout and stderr of a run with every run of whitespace folded to one space (Ansible wraps
    long messages)."""
    return " ".join((run.stdout + run.stderr).split())


def uncolored(text):
    """text without Ansible's colour codes."""
    return _ANSI.sub("", text)


def recap(run):
    """{host: {"ok": n, "changed": n, "unreachable": n, "failed": n, "skipped": n, ...}} from the
    PLAY RECAP in a run's stdout, the hosts in the order the recap lists them."""
    out = {}
    for name, fields in _RECAP_LINE.findall(uncolored(run.stdout)):
        out[name] = {key: int(value) for key, value in _RECAP_FIELD.findall(fields)}
    return out


def edge_probe(path="/v1/models", key=""):
    """The command an instance runs to GET `path` from its own edge (https://127.0.0.1), with
    `key` as a bearer token (none if empty). It prints "<status> <body>"."""
    return _EDGE_PROBE % (json.dumps([[path, key]]), "")


def edge_probes(*requests):
    """One command for several (path, key) GETs as edge_probe makes them, one line each:
    "<path> key <status> <body>" ("nokey" for a request without a key)."""
    return _EDGE_PROBE % (json.dumps([list(request) for request in requests]), 'path, "key" if key else "nokey", ')
