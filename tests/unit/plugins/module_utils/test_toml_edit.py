"""toml_edit: TOML edited as text (the layout scanner, set_value, delete), checked against tomllib."""
import tomllib

import pytest

from ansible_collections.llmfleet.deepseek.plugins.module_utils import toml_edit


def test_scan_finds_tables_and_pairs():
    text = ('a = 1\n[x."y.z"]  # c\n  k = "v"\n  d.e = [\n 1,\n ]\n[[arr]]\n  n = 1\n')
    tables, pairs = toml_edit.scan(text)
    assert [t["path"] for t in tables] == [[], ["x", "y.z"], ["arr"]]
    assert tables[1]["raws"] == ["x", '"y.z"'] and tables[2]["array"] is True
    assert [p["path"] for p in pairs] == [["a"], ["x", "y.z", "k"], ["x", "y.z", "d", "e"], None]
    assert text[pairs[2]["value_start"]:pairs[2]["value_end"]] == "[\n 1,\n ]"


def test_scan_skips_what_only_looks_like_a_header_or_a_comment():
    text = ('s = """\n[not.a.table]\n"""\nlit = \'# not a comment\'\n'
            'arr = [\n  "]",  # ] still inside\n  [1, 2],\n]\n[real]\n')
    tables, pairs = toml_edit.scan(text)
    assert [t["path"] for t in tables] == [[], ["real"]]
    assert [p["path"] for p in pairs] == [["s"], ["lit"], ["arr"]]
    assert text[pairs[1]["value_start"]:pairs[1]["value_end"]] == "'# not a comment'"
    assert tomllib.loads(text[pairs[2]["value_start"]:pairs[2]["end"]].join(["v = ", ""]))["v"] == ["]", [1, 2]]


def test_scan_decodes_escaped_keys():
    tables, dummy = toml_edit.scan('["a\\u0062c".\'d e\']\n')
    assert tables[1]["path"] == ["abc", "d e"]
    assert tables[1]["raws"] == ['"a\\u0062c"', "'d e'"]


def test_set_and_delete_round_trip():
    text = "[t]\n  a = 1\n"
    added = toml_edit.set_value(text, ["t", "u", "b"], '"x"')
    assert added == '[t]\n  a = 1\n\n  [t.u]\n    b = "x"\n'
    assert toml_edit.delete(added, ["t", "u"]) == text
    assert toml_edit.set_value(text, ["t", "a"], "2") == "[t]\n  a = 2\n"
    assert toml_edit.delete(text, ["t", "a"]) == "[t]\n"


def test_set_value_keeps_comments_and_other_keys():
    text = "# head\nversion = 2  # the format\n\n[p]\n  # why\n  keep = true\n"
    new = toml_edit.set_value(text, ["version"], "3")
    assert new == "# head\nversion = 3  # the format\n\n[p]\n  # why\n  keep = true\n"
    new = toml_edit.set_value(text, ["p", "added"], toml_edit.basic_string("v"))
    assert new == '# head\nversion = 2  # the format\n\n[p]\n  # why\n  keep = true\n  added = "v"\n'
    assert tomllib.loads(new) == {"version": 2, "p": {"keep": True, "added": "v"}}


def test_a_root_key_goes_before_the_first_table():
    assert toml_edit.set_value("[t]\nx = 1\n", ["version"], "2") == "version = 2\n[t]\nx = 1\n"
    assert toml_edit.set_value("", ["version"], "2") == "version = 2\n"


def test_a_new_table_goes_after_its_closest_relative_with_its_keys_indent():
    text = ('[plugins."io.containerd.grpc.v1.cri"]\n  sandbox = "x"\n'
            '  [plugins."io.containerd.grpc.v1.cri".containerd]\n    snapshotter = "overlayfs"\n'
            '[other]\n')
    new = toml_edit.set_value(text, ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "nvidia",
                                     "runtime_type"], toml_edit.basic_string("io.containerd.runc.v2"))
    assert new == ('[plugins."io.containerd.grpc.v1.cri"]\n  sandbox = "x"\n'
                   '  [plugins."io.containerd.grpc.v1.cri".containerd]\n    snapshotter = "overlayfs"\n'
                   '\n    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
                   '      runtime_type = "io.containerd.runc.v2"\n'
                   '[other]\n')
    cri = tomllib.loads(new)["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["containerd"]["runtimes"]["nvidia"] == {"runtime_type": "io.containerd.runc.v2"}


def test_crlf_files_stay_crlf():
    new = toml_edit.set_value("[t]\r\na = 1\r\n", ["u", "b"], "2")
    assert "\n" not in new.replace("\r\n", "")
    assert tomllib.loads(new) == {"t": {"a": 1}, "u": {"b": 2}}


def test_delete_takes_sub_tables_and_dotted_keys_that_reach_in():
    text = "[a]\nx = 1\n[a.b]\ny = 2\n[a.b.c]\nz = 3\n[d]\nb.q = 1\nkeep = 2\n"
    assert tomllib.loads(toml_edit.delete(text, ["a", "b"])) == {"a": {"x": 1}, "d": {"b": {"q": 1}, "keep": 2}}
    assert tomllib.loads(toml_edit.delete(text, ["d", "b"])) == {"a": {"x": 1, "b": {"y": 2, "c": {"z": 3}}}, "d": {"keep": 2}}
    assert toml_edit.delete(text, ["nothing", "here"]) == text


@pytest.mark.parametrize("part, written", [
    ("runtimes", "runtimes"),
    ("io.containerd.grpc.v1.cri", '"io.containerd.grpc.v1.cri"'),
    ("with space", '"with space"'),
    ('quote"and\\back', '"quote\\"and\\\\back"'),
    ("", '""'),
])
def test_key_is_bare_only_when_toml_allows_it(part, written):
    assert toml_edit.key(part) == written
    assert tomllib.loads("%s = 1" % toml_edit.key(part)) == {part: 1}


@pytest.mark.parametrize("value", ["plain", "tab\there", "new\nline", "del\x7f", "ünïcödé", "\x00", 'q"\\'])
def test_basic_string_reads_back_as_the_same_value(value):
    assert tomllib.loads("v = " + toml_edit.basic_string(value)) == {"v": value}


def test_dotted_key_quotes_the_parts_that_need_it():
    assert toml_edit.dotted_key(["plugins", "io.containerd.cri.v1.runtime", "containerd"]) == \
        'plugins."io.containerd.cri.v1.runtime".containerd'
