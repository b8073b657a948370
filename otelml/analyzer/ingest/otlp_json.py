"""OTLP/JSON as the OTLP specification defines it: trace and span ids as hex strings, enums as names or integers,
unknown fields ignored; parsed into the protobuf message the receivers decode."""

from __future__ import annotations

import base64
import functools
import json
import re

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: F401 - doctest

from .errors import DecodeError, shorten

_ID_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_FAILED_FIELDS = re.compile(r"(?:Failed to parse \w+ field: )*")


def parse_otlp_json(body: bytes, message_class):
    """Parse an OTLP/JSON body into a ``message_class`` message: hex ids, integer or named enums, unknown fields ignored.

    Example:
        >>> body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "eee19b7ec3c1b174", "kind": 2}]}]}]}'
        >>> span = parse_otlp_json(body, ExportTraceServiceRequest).resource_spans[0].scope_spans[0].spans[0]
        >>> span.span_id.hex(), span.kind
        ('eee19b7ec3c1b174', 2)
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError("invalid OTLP/JSON: the body is not a JSON object")
    _hex_ids_to_base64(data, message_class.DESCRIPTOR, "")
    try:
        return json_format.ParseDict(data, message_class(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise DecodeError(f"invalid OTLP/JSON: {_parse_error(exc)}") from None
    except RecursionError:
        raise DecodeError("invalid OTLP/JSON: nested too deeply") from None


def _hex_ids_to_base64(value, descriptor, path: str) -> None:
    """Rewrite the hex ids in ``value`` (a ``descriptor`` message as a JSON dict) as base64, which ParseDict reads."""
    if not isinstance(value, dict):
        return  # ParseDict reports the wrong type
    plan = _id_plan(descriptor)
    for key, item in value.items():
        if key not in plan or item is None:
            continue
        where = f"{path}.{key}" if path else key
        target = plan[key]
        if target is None:
            value[key] = _hex_to_base64(item, where)
        elif isinstance(item, list):
            for i, element in enumerate(item):
                _hex_ids_to_base64(element, target, f"{where}[{i}]")
        else:
            _hex_ids_to_base64(item, target, where)


@functools.cache
def _id_plan(descriptor) -> dict:
    """JSON keys (both spellings) of the fields that hold ids (mapped to None) or lead to messages that do."""
    plan = {}
    for field in descriptor.fields:
        if _is_id(field):
            target = None
        elif field.message_type is not None and _holds_ids(field.message_type, set()):
            target = field.message_type
        else:
            continue
        plan[field.name] = plan[field.json_name] = target
    return plan


def _holds_ids(descriptor, seen: set) -> bool:
    seen.add(descriptor)
    return any(
        _is_id(f) or (f.message_type is not None and f.message_type not in seen and _holds_ids(f.message_type, seen))
        for f in descriptor.fields
    )


def _is_id(field) -> bool:
    return field.name in _ID_FIELDS and field.type == FieldDescriptor.TYPE_BYTES


def _hex_to_base64(text, where: str) -> str:
    if not isinstance(text, str) or not _HEX.fullmatch(text):
        raise DecodeError(f"invalid OTLP/JSON: {where} must be a hex string, got {shorten(repr(text), 60)}")
    return base64.b64encode(bytes.fromhex(text)).decode("ascii")


def _parse_error(exc: json_format.ParseError) -> str:
    """ParseDict's "Failed to parse a field: Failed to parse b field: reason" as "a.b: reason"."""
    text = str(exc)
    prefix = _FAILED_FIELDS.match(text).group()
    fields = re.findall(r"Failed to parse (\w+) field", prefix)
    reason = text[len(prefix) :].rstrip(".")
    return f"{'.'.join(fields)}: {reason}" if fields else reason
