"""Attributes of data points and spans as plain, hashable values within length limits, and the stream keys made of
them. A value over a limit raises :class:`~otelml.analyzer.ingest.errors.Invalid` (its point is rejected), except in
a span's attributes, where it is left out."""

from __future__ import annotations

from .errors import Invalid, shorten
from .points import StreamKey

MAX_NAME = 256  # characters of a metric name, span name or attribute key
MAX_VALUE = 1024  # characters of a string attribute value (or hex characters of a bytes value)
MAX_ITEMS = 128  # elements of an array or key-value list attribute value

_KEYS: dict = {}  # (resource, scope, metric, attributes as sent) -> StreamKey, to skip sorting for known streams
_MAX_KEYS = 100_000


def stream_key(resource: tuple, scope: str, metric: str, key_values) -> StreamKey:
    """The stream key, with attributes sorted; cached by the attributes in the order they were sent. Raises
    ``Invalid`` for an attribute over the length limits."""
    sent = []
    for kv in key_values:
        value = kv.value
        sent.append((_key(kv.key), _string(value) if value.WhichOneof("value") == "string_value" else _value(value)))
    sent = tuple(sent)
    lookup = (resource, scope, metric, sent)
    key = _KEYS.get(lookup)
    if key is None:
        key = StreamKey(resource, scope, metric, tuple(sorted(dict(sent).items())))
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        _KEYS[lookup] = key
    return key


def span_attributes(key_values) -> dict:
    """``KeyValue`` list as a dict of plain, hashable Python values (the last of duplicate keys wins). A span's
    attribute over the length limits is left out (counted by the caller's reader as missing), not the span: spans
    pass through from every instrumentation, and otelml reads only its own attributes."""
    found = {}
    for kv in key_values:
        try:
            found[_key(kv.key)] = _value(kv.value)
        except Invalid:
            continue
    return found


def pairs(key_values, names=None) -> tuple:
    """Sorted ``(key, value)`` pairs, for stream identity; ``names``, if given, says which keys to keep. Raises
    ``Invalid`` for an attribute over the length limits."""
    found = {}
    for kv in key_values:
        if names is None or kv.key in names:
            value = kv.value
            found[_key(kv.key)] = _string(value) if value.WhichOneof("value") == "string_value" else _value(value)
    return tuple(sorted(found.items()))


def _value(any_value):
    """``AnyValue`` as str, int, float or bool; arrays as tuples, key-value lists as pairs, bytes as hex, empty None.
    Raises ``Invalid`` past ``MAX_VALUE`` characters or ``MAX_ITEMS`` elements."""
    field = any_value.WhichOneof("value")
    if field == "string_value":
        return _string(any_value)
    if field == "array_value":
        values = any_value.array_value.values
        _check_items(len(values))
        return tuple(_value(v) for v in values)
    if field == "kvlist_value":
        _check_items(len(any_value.kvlist_value.values))
        return pairs(any_value.kvlist_value.values)
    if field == "bytes_value":
        if 2 * len(any_value.bytes_value) > MAX_VALUE:
            raise Invalid(f"attribute value of {len(any_value.bytes_value)} bytes, more than {MAX_VALUE // 2}")
        return any_value.bytes_value.hex()
    return getattr(any_value, field) if field else None


def _string(any_value) -> str:
    text = any_value.string_value
    if len(text) > MAX_VALUE:
        raise Invalid(f"attribute value of {len(text)} characters, more than {MAX_VALUE}")
    return text


def _key(text: str) -> str:
    check_name("attribute key", text)
    return text


def check_name(what: str, text: str) -> None:
    if len(text) > MAX_NAME:
        raise Invalid(f"{what} of {len(text)} characters, more than {MAX_NAME}")


def _check_items(size: int) -> None:
    if size > MAX_ITEMS:
        raise Invalid(f"attribute value of {size} elements, more than {MAX_ITEMS}")


def quote(name: str) -> str:
    return repr(shorten(name, 100))
