"""Who calls: ``with otelml.caller(identity):`` around monitored calls, and reading an identity as text.

Only a keyed hash of the identity ever leaves the process (``otelml.sdk.hashing``). An identity that cannot be read
as text costs the call its caller id, never the call.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

from .health import BAD_INPUT, Guard, Health
from .runtime import default_runtime

_CALLER: contextvars.ContextVar = contextvars.ContextVar("otelml_caller", default=None)


@contextmanager
def caller(identity):
    """Attribute the monitored calls inside the block to ``identity`` (hashed before it goes anywhere). An identity
    that cannot be read as text is counted in the default runtime's health."""
    token = _CALLER.set(identity_text(identity, identity_guard(default_runtime().health)))
    try:
        yield
    finally:
        _CALLER.reset(token)


def current_caller():
    return _CALLER.get()


def identity_guard(health: Health) -> Guard:
    """The guard of :func:`identity_text`, counting into ``health``."""
    return health.guard(BAD_INPUT, "the caller identity cannot be read as a string: ")


def identity_text(identity, guard: Guard) -> str | None:
    """``str(identity)``; ``None`` (counted as bad input by ``guard``, never raised) when that fails or for
    ``None``."""
    if identity is None:
        return None
    with guard:
        return str(identity)
    return None
