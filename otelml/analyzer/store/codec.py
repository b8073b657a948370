"""The analyzer's state as bytes and back, as data only: decoding a blob can build values, never run code it names.

What the store keeps (checkpoints, closed windows, references) goes through :func:`encode` and :func:`decode`. A
blob is ``MAGIC``, the format version (2 bytes), the length of a JSON document (4 bytes), the JSON document, then the
raw bytes of every array and ``bytes`` value it refers to by offset. JSON carries ``None``, booleans, integers,
floats (NaN and infinities too), strings and lists as themselves; any other value is a one-key JSON object naming
its kind:

- ``tuple``, ``set``, ``frozenset``, ``deque`` (with its ``maxlen``), ``Counter``, ``OrderedDict`` and ``dict``
  (keys of any kind, so key and value alternate in a list);
- ``bytes``, ``bytearray``, numpy arrays (``nd``: dtype, shape, offset) and scalars (``np``) of the numeric and bool
  dtypes in ``_DTYPES`` only; an array of objects (``ndo``) lists its elements like a list;
- ``rng``: a numpy ``Generator`` as its bit generator's name (one of ``_BIT_GENERATORS``) and state;
- ``obj``: an instance of a class of one of the modules in ``_MODULES``, by ``module:class`` name, and its state as
  pickle would take it (``__getstate__``); it is rebuilt with ``cls.__new__`` and ``__setstate__`` (the class's
  own, or the default: its ``__dict__`` and slots set). ``ntuple`` is a named tuple of those modules.
- ``ref``: the n-th mutable value met before (so shared objects stay shared, as in a pickle).

Anything else cannot be encoded (``TypeError``); a blob that is not of this format, names an unknown class, dtype or
kind, or does not add up, cannot be decoded (``ValueError``). Sizes are bounded by the blob's own length.

Versions: classes are named by their module, so moving a class changes the format. Format 2 names them by the
modules of the analyzer's packages (``analyzer.state.core:State``); format 1 named the flat modules before them
(``analyzer.state:State``). A format-1 blob still decodes when every class it names stayed where it was (references
and histograms); a format-1 checkpoint or window names classes that moved and is refused like any blob of an unknown
class, which the store handles (the journal after the checkpoint is replayed, the window is left out).
"""

from __future__ import annotations

import importlib
import json
import math
import struct
from collections import Counter, OrderedDict, deque

import numpy as np

MAGIC = b"OTELML-STATE"
VERSION = 2  # the format written; decode reads versions up to this one (see "Versions")
_HEADER = struct.Struct(">HI")  # format version, JSON length
_MODULES = (  # the modules whose classes may be in the analyzer's state
    "otelml.histogram",
    *(f"otelml.analyzer.{name}" for name in ("alerts.book", "detection", "ingest.points", "references")),
    *(f"otelml.analyzer.state.{name}" for name in ("caps", "core", "streams", "windows")),
    *(f"otelml.analyzer.attacks.{name}" for name in ("answered", "bets", "config", "detectors", "traffic", "watch")),
    *(f"otelml.analyzer.detectors.{name}" for name in ("accuracy", "availability", "base", "categories")),
    *(f"otelml.analyzer.detectors.{name}" for name in ("confidence", "drift", "edetector", "latency", "rates")),
    *(f"otelml.analyzer.detectors.{name}" for name in ("scan", "sequential", "support")),
)
_DTYPES = {np.dtype(code).str: np.dtype(np.dtype(code).str) for code in "?bBhHiIlLqQefdFD"}  # name -> dtype
_DTYPE_NAMES = {dtype: name for name, dtype in _DTYPES.items()}
_BIT_GENERATORS = {
    cls.__name__: cls
    for cls in (np.random.PCG64, np.random.PCG64DXSM, np.random.Philox, np.random.SFC64, np.random.MT19937)
}
_classes: dict = {}  # "module:class" -> class, and class -> "module:class"; filled on first use


def _registry() -> dict:
    if not _classes:
        for module_name in _MODULES:
            module = importlib.import_module(module_name)
            for cls in vars(module).values():
                if isinstance(cls, type) and cls.__module__ == module_name:
                    name = f"{module_name.removeprefix('otelml.')}:{cls.__qualname__}"
                    _classes[name], _classes[cls] = cls, name
    return _classes


def encode(value) -> bytes:
    """The blob of ``value``; ``TypeError`` for a value of a kind the format does not carry."""
    encoder = _Encoder()
    document = json.dumps(encoder.walk(value), separators=(",", ":")).encode()
    return MAGIC + _HEADER.pack(VERSION, len(document)) + document + b"".join(encoder.buffers)


def decode(blob: bytes):
    """The value of a blob; ``ValueError`` for anything that is not a well-formed blob of a known version."""
    blob = bytes(blob)
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _HEADER.size:
        raise ValueError("not an otelml state blob (an earlier otelml pickled its state; pickles are not read)")
    version, length = _HEADER.unpack_from(blob, len(MAGIC))
    start = len(MAGIC) + _HEADER.size
    if version > VERSION or version < 1:
        raise ValueError(f"state blob of format {version}; this otelml reads formats 1 to {VERSION}")
    if start + length > len(blob):
        raise ValueError("state blob is truncated")
    try:
        return _Decoder(memoryview(blob)[start + length :]).walk(json.loads(blob[start : start + length]))
    except ValueError:
        raise
    except Exception as exc:  # a malformed document: wrong shapes, unhashable keys, too deep, ...
        raise ValueError(f"malformed state blob ({type(exc).__name__}: {exc})") from None


class _Encoder:
    def __init__(self):
        self.buffers: list = []
        self.size = 0
        self.memo: dict = {}  # id -> index of the mutable values met so far
        self.alive: list = []  # keeps them (and temporary states) alive, so their ids stay theirs

    def data(self, raw: bytes) -> int:
        offset = self.size
        self.buffers.append(raw)
        self.size += len(raw)
        return offset

    def walk(self, value):
        kind = type(value)
        if value is None or kind in (bool, int, float, str):
            return value
        if kind in (tuple, frozenset):
            return {kind.__name__: [self.walk(v) for v in value]}
        if kind is bytes:
            return {"bytes": [self.data(value), len(value)]}
        if isinstance(value, np.generic):
            return {"np": [_dtype_name(value.dtype), self.data(np.asarray(value).tobytes())]}
        if isinstance(value, tuple) and kind in _registry():
            return {"ntuple": [_registry()[kind], [self.walk(v) for v in value]]}
        index = self.memo.get(id(value))
        if index is not None:
            return {"ref": index}
        self.memo[id(value)] = len(self.memo)
        self.alive.append(value)
        return self._mutable(value, kind)

    def _mutable(self, value, kind):
        if kind is list:
            return [self.walk(v) for v in value]
        if kind in (dict, Counter, OrderedDict):
            return {kind.__name__: [self.walk(x) for item in value.items() for x in item]}
        if kind is set:
            return {"set": [self.walk(v) for v in value]}
        if kind is deque:
            return {"deque": [[self.walk(v) for v in value], value.maxlen]}
        if kind is bytearray:
            return {"bytearray": [self.data(bytes(value)), len(value)]}
        if kind is np.ndarray and value.dtype == object:
            return {"ndo": [list(value.shape), [self.walk(v) for v in value.ravel()]]}
        if kind is np.ndarray:
            return {"nd": [_dtype_name(value.dtype), list(value.shape), self.data(value.tobytes())]}
        if kind is np.random.Generator:
            return {"rng": [type(value.bit_generator).__name__, self.walk(value.bit_generator.state)]}
        name = _registry().get(kind)
        if name is None:
            raise TypeError(f"the state format does not carry {kind.__module__}.{kind.__qualname__} values")
        state = value.__getstate__()
        self.alive.append(state)
        return {"obj": [name, self.walk(state)]}


def _dtype_name(dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        raise TypeError(f"the state format does not carry arrays of dtype {dtype}")
    return name


class _Decoder:
    def __init__(self, data: memoryview):
        self.data = data
        self.memo: list = []  # the mutable values made so far, in the order the encoder met them
        self.kinds = {
            "ref": self._ref,
            "tuple": lambda body: tuple(self.walk(v) for v in body),
            "frozenset": lambda body: frozenset(self.walk(v) for v in body),
            "set": lambda body: self._fill(set(), body, set.update),
            "deque": self._deque,
            "dict": lambda body: self._dict(dict(), body),
            "Counter": lambda body: self._dict(Counter(), body),
            "OrderedDict": lambda body: self._dict(OrderedDict(), body),
            "bytes": lambda body: self._raw(*body),
            "bytearray": lambda body: self._keep(bytearray(self._raw(*body))),
            "nd": lambda body: self._keep(self._array(*body)),
            "np": lambda body: self._array(body[0], [], body[1])[()],
            "ndo": self._objects,
            "rng": self._rng,
            "ntuple": self._ntuple,
            "obj": self._obj,
        }

    def walk(self, item):
        if isinstance(item, list):
            return self._fill([], item, list.extend)
        if not isinstance(item, dict):
            return item
        if len(item) != 1:
            raise ValueError(f"malformed state blob: an object of {len(item)} keys")
        [(kind, body)] = item.items()
        if kind not in self.kinds:
            raise ValueError(f"state blob holds a value of unknown kind {kind!r}")
        return self.kinds[kind](body)

    def _keep(self, value):
        self.memo.append(value)
        return value

    def _fill(self, out, items: list, add):
        self._keep(out)
        add(out, [self.walk(v) for v in items])
        return out

    def _ref(self, index):
        if not isinstance(index, int) or not 0 <= index < len(self.memo):
            raise ValueError(f"state blob refers to value {index!r}, not yet seen")
        return self.memo[index]

    def _deque(self, body):
        items, maxlen = body
        if maxlen is not None and not (isinstance(maxlen, int) and maxlen >= 0):
            raise ValueError(f"bad deque length {maxlen!r}")
        return self._fill(deque(maxlen=maxlen), items, deque.extend)

    def _dict(self, out: dict, body: list) -> dict:
        self._keep(out)
        flat = [self.walk(v) for v in body]
        for key, value in zip(flat[::2], flat[1::2]):  # (Counter.update would count the pairs)
            out[key] = value
        return out

    def _raw(self, offset: int, size: int) -> bytes:
        self._check(offset, size)
        return self.data[offset : offset + size].tobytes()

    def _check(self, offset: int, size: int) -> None:
        if not (isinstance(offset, int) and isinstance(size, int) and 0 <= offset and 0 <= size):
            raise ValueError(f"bad data reference {offset!r}, {size!r}")
        if offset + size > len(self.data):
            raise ValueError("state blob refers to data past its end")

    def _array(self, dtype_name: str, shape: list, offset: int) -> np.ndarray:
        if dtype_name not in _DTYPES:
            raise ValueError(f"state blob holds an array of dtype {dtype_name!r}, not one of the numeric dtypes")
        if not (isinstance(shape, list) and len(shape) <= 32 and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise ValueError(f"bad array shape {shape!r}")
        dtype, count = _DTYPES[dtype_name], math.prod(shape)
        self._check(offset, count * dtype.itemsize)
        return np.frombuffer(self.data, dtype, count, offset).reshape(shape).copy()

    def _objects(self, body):
        shape, items = body
        out = self._keep(np.empty(shape, dtype=object))
        flat = [self.walk(v) for v in items]
        if len(flat) != out.size:
            raise ValueError(f"an object array of shape {shape} with {len(flat)} elements")
        view = out.reshape(-1)
        for i, value in enumerate(flat):
            view[i] = value
        return out

    def _rng(self, body):
        name, state = body
        if name not in _BIT_GENERATORS:
            raise ValueError(f"state blob holds an unknown bit generator {name!r}")
        bit_generator = _BIT_GENERATORS[name]()
        generator = self._keep(np.random.Generator(bit_generator))  # kept before its state, as the encoder met it
        bit_generator.state = self.walk(state)
        return generator

    def _class(self, name, tuple_class: bool) -> type:
        cls = _registry().get(name) if isinstance(name, str) else None
        if cls is None or issubclass(cls, tuple) != tuple_class:
            raise ValueError(f"state blob holds an instance of {name!r}, not a class of the analyzer's state")
        return cls

    def _ntuple(self, body):
        name, items = body
        return tuple.__new__(self._class(name, True), [self.walk(v) for v in items])

    def _obj(self, body):
        """As pickle rebuilds an object: ``__new__``, then the class's ``__setstate__`` or the default one."""
        name, state = body
        cls = self._class(name, False)
        obj = self._keep(cls.__new__(cls))
        state = self.walk(state)
        if getattr(cls, "__setstate__", None) is not None:
            obj.__setstate__(state)
            return obj
        attributes, slots = state if isinstance(state, tuple) else (state, None)
        if attributes:
            obj.__dict__.update(attributes)
        for key, value in (slots or {}).items():
            object.__setattr__(obj, key, value)
        return obj
