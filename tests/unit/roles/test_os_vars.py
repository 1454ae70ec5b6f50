"""One way to find OS variables (docs/architecture.md): every role with per-release values loads
them in one task, tasks/os_vars.yml, through the os_vars_files filter; every supported release
finds a file in each such role, every file is the one some supported release loads, and no two
files of a role carry the same values (they would be one file); every role's Galaxy platforms name
the supported releases."""
import pathlib
import re

import pytest
import yaml

from ansible_collections.llmfleet.deepseek.plugins.filter import os_vars

ROOT = pathlib.Path(__file__).resolve().parents[3]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
OS_ROLES = [r for r in ROLES if (ROOT / "roles" / r / "tasks" / "os_vars.yml").is_file()]
# The families of the distributions the supported list names (ansible_facts['os_family']).
FAMILY = {"Ubuntu": "Debian", "Debian": "Debian"}
RELEASES = [(d, m) for d, m, _name, _codename, _note in os_vars.SUPPORTED]


def release_files(role):
    return sorted(p.name for p in (ROOT / "roles" / role / "vars").glob("*.yml") if p.name != "main.yml")


def load(role, name):
    return yaml.safe_load((ROOT / "roles" / role / "vars" / name).read_text())


def without_comments(text, role):
    return re.sub(r"^#.*\n", "", text.replace(role, "ROLE"), flags=re.M)


def picked(role, distribution, major):
    facts = {"distribution": distribution, "distribution_major_version": major,
             "distribution_version": major, "os_family": FAMILY[distribution]}
    found = [n for n in os_vars.os_vars_files(facts, role) if (ROOT / "roles" / role / "vars" / n).is_file()]
    return found[0] if found else None


def test_the_roles_with_per_release_values_are_the_roles_that_load_them():
    assert OS_ROLES == sorted(r for r in ROLES if release_files(r)) != []


def test_nothing_else_loads_variables_by_release():
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "roles").glob("*/tasks/*.yml"))
                 if p.name != "os_vars.yml" and re.search(r"include_vars|first_found", p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("role", OS_ROLES)
def test_the_loading_task_is_the_same_in_every_role(role):
    text = (ROOT / "roles" / role / "tasks" / "os_vars.yml").read_text()
    reference = (ROOT / "roles" / OS_ROLES[0] / "tasks" / "os_vars.yml").read_text()
    assert without_comments(text, role) == without_comments(reference, OS_ROLES[0])
    tasks = yaml.safe_load(text)
    assert len(tasks) == 1 and "os_vars_files('%s')" % role in text


@pytest.mark.parametrize("role", OS_ROLES)
def test_the_role_loads_them_before_anything_else(role):
    tasks_dir = ROOT / "roles" / role / "tasks"
    first = tasks_dir / ("steps.yml" if (tasks_dir / "steps.yml").is_file() else "main.yml")
    tasks = [t for t in yaml.safe_load(first.read_text()) if "ansible.builtin.setup" not in t]
    assert tasks[0].get("ansible.builtin.import_tasks") == "os_vars.yml", first
    assert "always" in tasks[0].get("tags", [])
    # The bundle builder asks the role on a system of the target release: the same file, first.
    bundle = tasks_dir / "bundle.yml"
    if bundle.is_file() and "os_vars.yml" in bundle.read_text():
        assert yaml.safe_load(bundle.read_text())[0].get("ansible.builtin.import_tasks") == "os_vars.yml"


@pytest.mark.parametrize("role", OS_ROLES)
@pytest.mark.parametrize("release", RELEASES, ids=["%s_%s" % r for r in RELEASES])
def test_every_supported_release_finds_its_file(role, release):
    assert picked(role, *release), "roles/%s/vars: no file for %s %s (add %s_%s.yml)" % ((role,) + release * 2)


@pytest.mark.parametrize("role", OS_ROLES)
def test_every_file_is_loaded_by_a_supported_release(role):
    used = {picked(role, *release) for release in RELEASES}
    assert [n for n in release_files(role) if n not in used] == []


@pytest.mark.parametrize("role", OS_ROLES)
def test_files_differ_in_more_than_comments_and_define_the_same_variables(role):
    files = {n: load(role, n) for n in release_files(role)}
    names = list(files)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert files[a] != files[b], "roles/%s/vars: %s and %s hold the same values: merge them" % (role, a, b)
    keys = {n: sorted(v) for n, v in files.items()}
    assert len({tuple(k) for k in keys.values()}) == 1, keys
    assert all(k.startswith("__%s_" % role) for k in keys[names[0]])


@pytest.mark.parametrize("role, release, variable, value", [
    ("ubuntu_base", ("Ubuntu", "22"), "__ubuntu_base_apt_sources_format", "legacy"),
    ("ubuntu_base", ("Ubuntu", "24"), "__ubuntu_base_apt_sources_format", "deb822"),
    ("ubuntu_base", ("Debian", "12"), "__ubuntu_base_apt_sources_format", "legacy"),
    ("nvidia_driver", ("Ubuntu", "22"), "__nvidia_driver_default_source", "ubuntu"),
    ("nvidia_driver", ("Ubuntu", "24"), "__nvidia_driver_default_source", "ubuntu"),
    ("nvidia_driver", ("Debian", "12"), "__nvidia_driver_default_source", "debian"),
    ("cuda_toolkit", ("Ubuntu", "22"), "__cuda_toolkit_distro_version", "11.5"),
    ("cuda_toolkit", ("Ubuntu", "24"), "__cuda_toolkit_distro_version", "12.0"),
    ("cuda_toolkit", ("Debian", "12"), "__cuda_toolkit_distro_version", "11.8"),
    ("nvidia_container_toolkit", ("Ubuntu", "22"), "__nvidia_container_toolkit_python_packages", ["python3-tomli"]),
    ("nvidia_container_toolkit", ("Ubuntu", "24"), "__nvidia_container_toolkit_python_packages", []),
    ("nvidia_container_toolkit", ("Debian", "12"), "__nvidia_container_toolkit_python_packages", []),
    ("nginx_tls", ("Ubuntu", "22"), "__nginx_tls_distro_version", "1.18.0"),
    ("nginx_tls", ("Ubuntu", "24"), "__nginx_tls_distro_version", "1.24.0"),
    ("nginx_tls", ("Debian", "12"), "__nginx_tls_distro_version", "1.22.1"),
])
def test_each_release_gets_its_values(role, release, variable, value):
    assert load(role, picked(role, *release))[variable] == value


@pytest.mark.parametrize("role", sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/main.yml")))
def test_galaxy_platforms_name_the_supported_releases(role):
    # Galaxy metadata cannot read the list: it is written in every role, and held to it here.
    wanted = {}
    for distribution, _major, _name, codename, _note in os_vars.SUPPORTED:
        wanted.setdefault(distribution, []).append(codename)
    meta = yaml.safe_load((ROOT / "roles" / role / "meta" / "main.yml").read_text())["galaxy_info"]
    assert {p["name"]: p["versions"] for p in meta["platforms"]} == wanted
