"""The otelml analyzer: a service that receives OTLP, keeps per-model windows and references, and runs detectors.

The packages follow the data path: ``ingest`` (OTLP receivers, decoding, points) -> ``state`` (deltas, windows)
-> ``pipeline`` (references, ``detectors``, ``attacks``; one closed window at a time) -> ``alerts`` (incidents,
records, outbox, delivery), with ``store`` keeping what must survive a restart and ``api`` showing it all;
``service`` wires them and ``server`` runs them as a process. What other code uses is named here (``__all__``);
the modules behind these names are the analyzer's own and may move.

The names load on first use, so that importing one of them (or one detector) does not start loading gRPC, tornado
and the rest. Nothing here is imported by the SDK side (``otelml.monitor`` and friends).
"""

from __future__ import annotations

import importlib

_NAMES = {  # name -> the module (under otelml.analyzer) that defines it
    "Analyzer": "service",
    "AnalyzerConfig": "config",
    "load_config": "config",
    "Server": "server",
    "Overloaded": "ingest.errors",
    "DecodeError": "ingest.errors",
    "decode_metrics": "ingest.decode",
    "decode_traces": "ingest.decode",
    "Store": "store",
    "PINNED": "store",
    "CANDIDATE": "store",
    "ReferenceActionError": "store",
    "Reference": "references",
    "from_data": "references",
    "content_hash": "references",
    "load_dataset": "datasets",
    "State": "state",
    "StateConfig": "state",
    "Limits": "state",
    "AlertBook": "alerts",
    "detector_label": "alerts",
}
_ALIASES = {"load_config": "load", "load_dataset": "load"}  # names that are shorter in their module

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
