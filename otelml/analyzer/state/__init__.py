"""The analyzer's in-memory state: cumulative streams turned into deltas, and per-model windows that close."""

from .core import Applied, Limits, State, StateConfig

__all__ = ["Applied", "Limits", "State", "StateConfig"]
