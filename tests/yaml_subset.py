"""A reader for the block-style YAML that this repository's configuration files are written in, for the tests only
(PyYAML is not a dependency): mappings, sequences, flow sequences and mappings, quoted and plain scalars, comments.
Anything outside that subset (anchors, tags, multi-line scalars, tabs) raises ``ValueError``, so a file is never
read wrongly, only refused.

Example:
    >>> load('a: 1  # one\\nb:\\n  - x: "y: z"\\n    w: [1, two]\\n  - ./p:/q:ro\\n')
    {'a': 1, 'b': [{'x': 'y: z', 'w': [1, 'two']}, './p:/q:ro']}
"""

from __future__ import annotations

import json
import re

_NUMBER = re.compile(r"-?(\d+|\d*\.\d+)([eE][-+]?\d+)?")


def load(text: str):
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = _without_comment(raw).rstrip()
        if not line.strip() or line.strip() == "---":
            continue
        indent = len(line) - len(line.lstrip(" "))
        if line[indent] == "\t":
            raise ValueError(f"line {number}: tab indentation")
        lines.append((number, indent, line.strip()))
    if not lines:
        return None
    value, end = _block(lines, 0)
    if end != len(lines):
        raise ValueError(f"line {lines[end][0]}: unexpected indentation")
    return value


def _block(lines: list, i: int):
    text = lines[i][2]
    return _sequence(lines, i) if text == "-" or text.startswith("- ") else _mapping(lines, i)


def _sequence(lines: list, i: int):
    indent, items = lines[i][1], []
    while i < len(lines) and lines[i][1] == indent and (lines[i][2] == "-" or lines[i][2].startswith("- ")):
        number, _, text = lines[i]
        rest = text[1:].lstrip()
        if not rest:
            if i + 1 == len(lines) or lines[i + 1][1] <= indent:
                raise ValueError(f"line {number}: empty sequence item")
            item, i = _block(lines, i + 1)
        elif _key_split(rest) is not None:  # a mapping that starts on the item's line
            lines[i] = (number, indent + len(text) - len(rest), rest)
            item, i = _mapping(lines, i)
        else:
            item, i = _scalar(rest, number), i + 1
        items.append(item)
    return items, i


def _mapping(lines: list, i: int):
    indent, result = lines[i][1], {}
    while i < len(lines) and lines[i][1] == indent:
        number, _, text = lines[i]
        split = _key_split(text)
        if split is None:
            raise ValueError(f"line {number}: expected 'key: value', got {text!r}")
        key, rest = split
        if key in result:
            raise ValueError(f"line {number}: duplicate key {key!r}")
        i += 1
        nested = i < len(lines) and (
            lines[i][1] > indent or (lines[i][1] == indent and (lines[i][2] == "-" or lines[i][2].startswith("- ")))
        )
        if rest:
            result[key] = _scalar(rest, number)
        elif nested:
            result[key], i = _block(lines, i)
        else:
            result[key] = None
    if i < len(lines) and lines[i][1] > indent:
        raise ValueError(f"line {lines[i][0]}: unexpected indentation")
    return result, i


def _key_split(text: str):
    """``(key, rest)`` when ``text`` is ``key: rest`` or ``key:``, else ``None``."""
    quote = None
    for at, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'" and at == 0:
            quote = char
        elif char in "[{" and at == 0:
            return None
        elif char == ":" and (at + 1 == len(text) or text[at + 1] == " "):
            key = text[:at].strip()
            return (_scalar(key, 0) if key[:1] in "\"'" else key), text[at + 1 :].strip()
    return None


def _scalar(text: str, number: int):
    if text[0] in "|>&*!%@`":
        raise ValueError(f"line {number}: unsupported YAML {text!r}")
    if text[0] == '"':
        return json.loads(text)
    if text[0] == "'":
        if len(text) < 2 or text[-1] != "'":
            raise ValueError(f"line {number}: unterminated string")
        return text[1:-1].replace("''", "'")
    if text[0] == "[":
        return [_scalar(item, number) for item in _flow_items(text, "]", number)]
    if text[0] == "{":
        pairs = [_key_split(item) for item in _flow_items(text, "}", number)]
        if None in pairs:
            raise ValueError(f"line {number}: bad flow mapping {text!r}")
        return {key: _scalar(value, number) if value else None for key, value in pairs}
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~"):
        return None
    if _NUMBER.fullmatch(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    return text


def _flow_items(text: str, close: str, number: int) -> list:
    if text[-1] != close:
        raise ValueError(f"line {number}: unterminated flow collection {text!r}")
    items, depth, quote, start = [], 0, None, 1
    for at, char in enumerate(text[1:-1], 1):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:at].strip())
            start = at + 1
    items.append(text[start:-1].strip())
    return [item for item in items if item]


def _without_comment(line: str) -> str:
    quote = None
    for at, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'" and (at == 0 or line[at - 1] in " [{,:-"):
            quote = char
        elif char == "#" and (at == 0 or line[at - 1] in " \t"):
            return line[:at]
    return line
