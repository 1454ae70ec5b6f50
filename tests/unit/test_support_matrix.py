"""The support matrix (docs/support.yml) against the repository: every role and module has a row;
each Molecule scenario it names exists and really applies the role (or calls the module, or runs
the flow); each unit test and script it names exists and names the row; each claim about the GPU
machine is something scripts/device_check.sh runs; and README.md, docs/support.md and the pages
show exactly what scripts/support_matrix.py renders from it."""
import importlib.util
import pathlib
import re

import pytest
import yaml

from ansible_collections.llmfleet.deepseek.plugins.filter import os_vars

ROOT = pathlib.Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("support_matrix", ROOT / "scripts" / "support_matrix.py")
support = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(support)

DATA = support.load(ROOT)
ROWS = DATA["rows"]
DEVICE_SCRIPT = (ROOT / "scripts" / "device_check.sh").read_text()
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def _cells():
    for row in ROWS:
        for target, cell in row["targets"].items():
            yield row, target, cell


def _claims(kind):
    """(row, target, reference) for every piece of evidence of one kind."""
    return [(row, target, ref) for row, target, cell in _cells() for ref in support.evidence(cell, kind)]


def _ids(claims):
    return ["%s/%s/%s" % (row["name"], target, ref) for row, target, ref in claims]


def _read(paths):
    return "\n".join(p.read_text(errors="replace") for p in paths if p.is_file())


def _scenario_text(name):
    """The scenario's own files (playbooks, molecule.yml, verify tests)."""
    return _read(sorted((ROOT / "molecule" / name).rglob("*")))


_ROLE_REF = re.compile(r"(?:\brole:|include_role:\s*\n\s*name:|import_role:\s*\n\s*name:)\s*(?:llmfleet\.deepseek\.)?(\w+)")


def _site_roles():
    """site.yml's roles with the inventory switch that turns each on or off: {role: (var, default)},
    from site.yml's one list of roles (playbooks/vars/site.yml); each switch's default is
    fleet_defaults'."""
    site = yaml.safe_load((ROOT / "playbooks" / "vars" / "site.yml").read_text())
    shared = yaml.safe_load((ROOT / "roles" / "fleet_defaults" / "defaults" / "main.yml").read_text())
    return {item["role"]: ((item["switch"], bool(shared[item["switch"]])) if "switch" in item else None)
            for item in site["llmfleet_site_role_list"]}


def scenario_roles(name):
    """The roles a scenario applies: those its playbooks name, and site.yml's when it imports it,
    less those the scenario's variables switch off (or leave off, for the opt-in ones)."""
    text = _scenario_text(name)
    roles = {r for r in _ROLE_REF.findall(text) if r in ROLES}
    if "playbooks/site.yml" in text:
        for role, toggle in _site_roles().items():
            if toggle is None:
                roles.add(role)
                continue
            var, default = toggle
            said = re.findall(r"^\s*%s:\s*(true|false)\s*$" % var, text, re.M)
            if (said[-1] == "true") if said else default:
                roles.add(role)
    return roles


def scenario_corpus(name):
    """Everything a scenario runs: its files, the playbooks it imports, the tasks of its roles."""
    text = _scenario_text(name)
    paths = []
    if "playbooks/" in text:
        paths += sorted((ROOT / "playbooks").rglob("*.yml"))
    for role in scenario_roles(name):
        paths += sorted((ROOT / "roles" / role / "tasks").rglob("*.yml"))
    return text + "\n" + _read(paths)


def _subjects(row):
    """The strings that show a file is about this row."""
    if row["kind"] == "module":
        return [row["name"]]
    return row.get("match") or [row["name"]]


def test_the_data_keeps_its_own_rules():
    assert support.problems(DATA) == []


def test_the_targets_are_the_releases_the_roles_accept_and_the_gpu_machine():
    assert list(DATA["targets"]) == ["debian12", "ubuntu2204", "ubuntu2404", "gpu"]
    # Molecule's instances are Debian 12 (bookworm): so Molecule evidence belongs in that column only.
    assert "bookworm-systemd" in (ROOT / "scripts" / "testbed.sh").read_text()
    assert "Ubuntu 24.04" in DEVICE_SCRIPT


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_row_and_its_page(role):
    rows = [r for r in ROWS if r["kind"] == "role" and r["name"] == role]
    assert len(rows) == 1, "docs/support.yml: add one row for the role %s" % role
    assert rows[0]["page"] == "docs/roles/%s.md" % role


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_a_row_and_its_page(module):
    rows = [r for r in ROWS if r["kind"] == "module" and r["name"] == module]
    assert len(rows) == 1, "docs/support.yml: add one row for the module %s" % module
    assert rows[0]["page"] == "docs/modules/%s.md" % module


def test_no_row_names_a_role_or_module_that_does_not_exist():
    assert [r["name"] for r in ROWS if r["kind"] == "role" and r["name"] not in ROLES] == []
    assert [r["name"] for r in ROWS if r["kind"] == "module" and r["name"] not in MODULES] == []
    assert [r["page"] for r in ROWS if not (ROOT / r["page"]).is_file()] == []


def test_molecule_evidence_is_claimed_for_debian_12_only():
    assert [(c[0]["name"], c[1]) for c in _claims("molecule") if c[1] != "debian12"] == []


def test_gpu_machine_evidence_is_claimed_for_the_gpu_column_only():
    assert [(c[0]["name"], c[1]) for c in _claims("device") if c[1] != "gpu"] == []


@pytest.mark.parametrize("row,target,scenario", _claims("molecule"), ids=_ids(_claims("molecule")))
def test_each_scenario_named_exists_and_runs_the_row(row, target, scenario):
    assert scenario in SCENARIOS, "molecule/%s/molecule.yml does not exist" % scenario
    if row["kind"] == "role":
        assert row["name"] in scenario_roles(scenario), \
            "%s: the scenario %s does not apply the role (or switches it off)" % (target, scenario)
    elif row["kind"] == "module":
        assert re.search(r"llmfleet\.deepseek\.%s\b" % row["name"], scenario_corpus(scenario)), \
            "%s: nothing the scenario %s runs calls llmfleet.deepseek.%s" % (target, scenario, row["name"])
    else:
        text = _scenario_text(scenario)
        assert any(m in text for m in row["match"]), \
            "%s: the scenario %s shows none of %s" % (target, scenario, row["match"])


@pytest.mark.parametrize("row,target,path", _claims("unit"), ids=_ids(_claims("unit")))
def test_each_unit_test_named_exists_and_names_the_row(row, target, path):
    assert path.startswith("tests/unit/") and (ROOT / path).is_file(), path
    text = (ROOT / path).read_text() + path
    assert any(s in text for s in _subjects(row)), "%s names none of %s" % (path, _subjects(row))


@pytest.mark.parametrize("row,target,what", _claims("device"), ids=_ids(_claims("device")))
def test_each_gpu_machine_claim_is_run_by_the_device_script(row, target, what):
    assert what in DEVICE_SCRIPT, "scripts/device_check.sh does not run %r" % what
    if what.startswith("tests/device/"):
        text = (ROOT / what).read_text()
        if row["kind"] == "module":
            assert "llmfleet.deepseek.%s" % row["name"] in text, "%s does not call the module" % what
        else:
            assert any(s in text for s in _subjects(row)), "%s shows none of %s" % (what, _subjects(row))
    elif row["kind"] == "role":
        assert re.search(r"--tags %s(:|$)" % row["name"], what), "%r does not run the role %s" % (what, row["name"])
    else:
        assert any(s in what for s in _subjects(row)), "%r shows none of %s" % (what, _subjects(row))


@pytest.mark.parametrize("row,target,path", _claims("make"), ids=_ids(_claims("make")))
def test_each_script_named_is_run_by_make_test_and_names_the_row(row, target, path):
    assert (ROOT / path).is_file(), path
    assert path in (ROOT / "Makefile").read_text(), "the Makefile does not run %s" % path
    folder = (ROOT / path).parent
    text = _read(sorted(folder.glob((ROOT / path).stem + "*")))
    assert any(s in text for s in _subjects(row)), "%s names none of %s" % (path, _subjects(row))


@pytest.mark.parametrize("row,target,path", _claims("vars"), ids=_ids(_claims("vars")))
def test_each_vars_file_named_exists(row, target, path):
    assert (ROOT / path).is_file(), path
    assert path.startswith("roles/%s/vars/" % row["name"]), path


def test_every_scenario_and_device_playbook_is_in_the_matrix():
    named = {claim[2] for claim in _claims("molecule")}
    assert [s for s in SCENARIOS if s not in named] == [], "scenarios the matrix does not name"
    device = {claim[2] for claim in _claims("device")}
    playbooks = sorted("tests/device/" + p.name for p in (ROOT / "tests" / "device").glob("*.yml")
                       if p.name != "inventory.yml")
    assert [p for p in playbooks if p not in device] == [], "GPU-machine playbooks the matrix does not name"


def test_every_vars_file_an_ubuntu_release_loads_is_said_never_run_there():
    # The file each role loads for the release (the roles' own rule, plugins/filter/os_vars.py) is
    # named in that release's cell, and the cell claims no run: written from documentation, or
    # unit-tested at most.
    said = {(ref, target) for row, target, cell in _cells() if cell["status"] in ("docs", "unit")
            for ref in support.evidence(cell, "vars")}
    releases = {"ubuntu2204": ("Ubuntu", "22"), "ubuntu2404": ("Ubuntu", "24")}
    for loader in sorted((ROOT / "roles").glob("*/tasks/os_vars.yml")):
        role = loader.parent.parent.name
        for target, (distribution, major) in releases.items():
            facts = {"distribution": distribution, "distribution_major_version": major, "os_family": "Debian"}
            names = [n for n in os_vars.os_vars_files(facts, role) if (ROOT / "roles" / role / "vars" / n).is_file()]
            rel = "roles/%s/vars/%s" % (role, names[0])
            assert (rel, target) in said, "docs/support.yml: say where %s ran (%s)" % (rel, target)


def test_the_scenario_reading_follows_the_site_switches():
    # fleet and offline switch the container toolkit off; monitoring and the CUDA toolkit are opt-in.
    for scenario in ("fleet", "offline"):
        roles = scenario_roles(scenario)
        assert {"ubuntu_base", "nvidia_driver", "gpu_tuning", "trtllm_service", "nginx_tls"} <= roles
        assert not roles & {"nvidia_container_toolkit", "cuda_toolkit", "monitoring"}
    assert "offline_repo" in scenario_roles("offline") and "offline_repo" not in scenario_roles("fleet")
    assert scenario_roles("monitoring") == {"firewall", "nginx_tls", "monitoring"}


def test_readme_support_page_and_pages_show_what_the_data_renders():
    stale = {path for path, (old, new) in support.outputs(DATA, ROOT).items() if new != old}
    assert not stale, "run python3 scripts/support_matrix.py: %s" % ", ".join(sorted(stale))
