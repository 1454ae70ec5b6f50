# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TOML edited as text, so that comments, layout and everything the edit does not name stay as
they are: scan() finds where tables and key/value lines are, set_value() and delete() change one
key or table and return the new text.

The scanner assumes valid TOML: parse the text with `tomllib` (exported here, None when neither
tomllib nor tomli is installed) before scanning it, and parse the result again to check that the
edit is the intended one (a parent written as an inline table or with dotted keys cannot be edited
line by line; the scanner then gives a text that parses differently, or raises IndexError or
ValueError). Used by the nvidia_runtime_config module for containerd's config.toml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

try:
    import tomllib
    HAS_TOML = True
except ImportError:
    try:
        import tomli as tomllib
        HAS_TOML = True
    except ImportError:
        tomllib = None
        HAS_TOML = False

# A key TOML accepts without quotes.
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _skip_blanks(text, pos):
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _after_line(text, pos):
    """Offset just past the newline of the line holding pos (or the end of the text)."""
    newline = text.find("\n", pos)
    return len(text) if newline < 0 else newline + 1


def _scan_string(text, pos):
    """Offset after the string (any of TOML's four kinds) that opens at pos."""
    quote = text[pos]
    if text.startswith(quote * 3, pos):
        i = pos + 3
        while True:
            if quote == '"' and text[i] == "\\":
                i += 2
                continue
            if text.startswith(quote * 3, i):
                end = i + 3
                extra = 0  # up to two more quotes are still content (""""" ends with two)
                while extra < 2 and end < len(text) and text[end] == quote:
                    end += 1
                    extra += 1
                return end
            i += 1
    i = pos + 1
    while text[i] != quote:
        if quote == '"' and text[i] == "\\":
            i += 1
        i += 1
    return i + 1


def _scan_value(text, pos):
    """Offset after the value that starts at pos."""
    char = text[pos]
    if char in "\"'":
        return _scan_string(text, pos)
    if char in "[{":
        depth, i = 0, pos
        while True:
            char = text[i]
            if char in "\"'":
                i = _scan_string(text, i)
                continue
            if char == "#":
                i = text.index("\n", i)
                continue
            if char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    end = pos
    while end < len(text) and text[end] not in "#\n":
        end += 1
    return pos + len(text[pos:end].rstrip())


def _decode_key(raw):
    if raw[0] == "'" or "\\" not in raw:
        return raw[1:-1]
    return tomllib.loads("k = " + raw)["k"]


def _parse_key(text, pos, stop):
    """(parts, raw parts, offset of the stop character) for the dotted key at pos."""
    parts, raws = [], []
    while True:
        pos = _skip_blanks(text, pos)
        if text[pos] in "\"'":
            end = _scan_string(text, pos)
            raw = text[pos:end]
            parts.append(_decode_key(raw))
        else:
            match = _BARE_KEY.match(text, pos)
            if not match:
                raise ValueError("no key at offset %d" % pos)
            end = match.end()
            raw = match.group(0)
            parts.append(raw)
        raws.append(raw)
        pos = _skip_blanks(text, end)
        if text[pos] == ".":
            pos += 1
            continue
        if text[pos] == stop:
            return parts, raws, pos
        raise ValueError("unexpected %r at offset %d" % (text[pos], pos))


def scan(text):
    """The layout of a TOML document: (tables, pairs).

    tables: the root table first, then one entry per [header] / [[header]] in document order:
      path, raws (the header's key parts as written), array, indent, start (offset of the header
      line), end (offset after its last key/value line, or after the header line), pairs.
    pairs: every key/value line: path (full key path from the root; None inside arrays of
      tables), table, indent, start (offset of the line), value_start, value_end, end (offset
      after the line the value ends on).
    """
    root = {"path": [], "raws": [], "array": False, "indent": "", "start": 0, "end": 0, "pairs": []}
    tables, pairs = [root], []
    current, pos, size = root, 0, len(text)
    while pos < size:
        line_start = pos
        pos = _skip_blanks(text, pos)
        if pos >= size:
            break
        if text[pos] in "\r\n#":
            pos = _after_line(text, pos)
            continue
        indent = text[line_start:pos]
        if text[pos] == "[":
            array = text.startswith("[[", pos)
            path, raws, stop = _parse_key(text, pos + (2 if array else 1), "]")
            pos = _after_line(text, stop)
            current = {"path": path, "raws": raws, "array": array, "indent": indent,
                       "start": line_start, "end": pos, "pairs": []}
            tables.append(current)
            continue
        parts, dummy, stop = _parse_key(text, pos, "=")
        value_start = _skip_blanks(text, stop + 1)
        value_end = _scan_value(text, value_start)
        pos = _after_line(text, value_end)
        inside_array = current["array"] or any(t["array"] and current["path"][:len(t["path"])] == t["path"] for t in tables)
        pair = {"path": None if inside_array else current["path"] + parts, "table": current, "indent": indent,
                "start": line_start, "value_start": value_start, "value_end": value_end, "end": pos}
        current["pairs"].append(pair)
        current["end"] = pos
        pairs.append(pair)
    return tables, pairs


def _newline(text):
    return "\r\n" if "\r\n" in text else "\n"


def key(part):
    """One key part as TOML writes it: bare when it can be, else a basic string."""
    return part if _BARE_KEY.fullmatch(part) else basic_string(part)


def basic_string(value):
    """A TOML basic string (JSON's escapes are all valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def dotted_key(path):
    """A key path as TOML writes it in a header or a dotted key: ['plugins', 'a.b'] -> plugins."a.b"."""
    return ".".join(key(part) for part in path)


def _insert(text, pos, chunk):
    if pos > 0 and text[pos - 1] != "\n":
        chunk = _newline(text) + chunk
    return text[:pos] + chunk + text[pos:]


def _common(left, right):
    count = 0
    for one, other in zip(left, right):
        if one != other:
            break
        count += 1
    return count


def _key_indent(table):
    if table["pairs"]:
        return table["pairs"][0]["indent"]
    return table["indent"] + ("  " if table["indent"] else "")


def _add_table(text, tables, path, lines):
    """Text with a new [path] section holding lines, placed after its closest relative."""
    newline = _newline(text)
    anchor, shared = None, 0
    for table in tables[1:]:
        count = _common(table["path"], path)
        if count and count >= shared:
            anchor, shared = table, count
    if anchor is None:
        header = dotted_key(path)
        indent = key_indent = ""
        pos = len(text)
        lead = newline if text.strip() else ""
        if text and not text.endswith("\n"):
            lead = newline + lead
    else:
        header = ".".join(anchor["raws"][:shared] + [key(part) for part in path[shared:]])
        peers = [t for t in tables[1:] if len(t["path"]) == len(path) and _common(t["path"], path) == shared]
        if peers:
            indent, key_indent = peers[0]["indent"], _key_indent(peers[0])
        elif len(anchor["path"]) < len(path):
            indent = _key_indent(anchor)
            key_indent = indent + ("  " if indent else "")
        else:
            indent = key_indent = anchor["indent"]
        pos = anchor["end"]
        lead = newline
    block = lead + indent + "[" + header + "]" + newline + "".join(key_indent + line + newline for line in lines)
    return _insert(text, pos, block)


def set_value(text, path, literal):
    """Text with the key at path (full path from the root) set to the TOML literal: the value
    replaced in place, or a line added to the key's table, or a new table."""
    tables, pairs = scan(text)
    for pair in pairs:
        if pair["path"] == path:
            return text[:pair["value_start"]] + literal + text[pair["value_end"]:]
    line = key(path[-1]) + " = " + literal
    for table in tables:
        if table["path"] == path[:-1] and not table["array"]:
            if table["pairs"]:
                pos, indent = table["end"], table["pairs"][-1]["indent"]
            elif table is tables[0]:
                pos, indent = (tables[1]["start"] if len(tables) > 1 else len(text)), ""
            else:
                pos, indent = table["end"], _key_indent(table)
            return _insert(text, pos, indent + line + _newline(text))
    return _add_table(text, tables, path[:-1], [line])


def _cut(text, start, end, tidy):
    before, after = text[:start], text[end:]
    if tidy and before.endswith("\n"):
        previous = before.rfind("\n", 0, len(before) - 1) + 1
        if not before[previous:].strip() and (not after.strip() or not after.split("\n", 1)[0].strip()):
            before = before[:previous]
    return before + after


def delete(text, path):
    """Text without the key at path, or without the table at path and everything under it
    (its sub-tables, and dotted keys that reach into it)."""
    while True:
        tables, pairs = scan(text)
        inside = [t for t in tables[1:] if t["path"][:len(path)] == path]
        if inside:
            table = inside[-1]
            text = _cut(text, table["start"], table["end"], True)
            continue
        inside = [p for p in pairs if p["path"] is not None and p["path"][:len(path)] == path]
        if inside:
            text = _cut(text, inside[-1]["start"], inside[-1]["end"], False)
            continue
        return text
