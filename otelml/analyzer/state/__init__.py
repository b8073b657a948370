"""The analyzer's in-memory state: cumulative streams turned into deltas, and per-model windows that close."""

from .core import IN_MEMORY_WINDOWS, Applied, Limits, State, StateConfig

__all__ = ["IN_MEMORY_WINDOWS", "Applied", "Limits", "State", "StateConfig"]
