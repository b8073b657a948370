"""The settings of the per-caller attack tests (``[attacks]`` in the analyzer's configuration file)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class AttackConfig:
    false_alarms: float = 1e5  # A: distinct queries of an ordinary caller per false alarm, on average
    k: int = 3  # nearest neighbours averaged
    ratio: float = 0.5  # a query is near when its neighbours are this much nearer than the reservoir's ...
    latest: float = 0.25  # ... and wins when its nearest earlier queries are among this share of the caller's latest
    min_history: int = 4  # distinct queries of a caller before its own history is bet on
    history: int = 64  # distinct fingerprints kept per caller
    recent: int = 1024  # distinct fingerprints of all callers kept in arrival order
    reservoir: int = 2048  # uniform sample of all past fingerprints
    radius: int = 0  # bits within which split probing counts neighbours (0: a 32nd of the fingerprint's bits)
    split_false_alarms: float = 1e6  # ordinary queries per false split-probing alarm, at most
    split_callers: int = 3  # other callers the near recent queries must come from (one is evasion probing's job)
    max_callers: int = 20_000  # callers kept, over all models; the least recently seen are forgotten
    max_models: int = 1000  # models watched; fingerprints of further models are rejected (counted)
    max_pending: int = 1000  # alarms kept per model version until its next window closes (the latest)
    trusted: tuple = ()  # caller ids (as on the spans) exempt from the volume test: your own gateways and batch jobs
    extraction_rarity: float = 1e4  # a caller is a volume outlier when fewer than 1 in this many got as far ...
    extraction_margin: float = 2.0  # ... as a count this many times smaller
    min_population: int = 1000  # callers seen before the extraction test speaks
    min_extraction_queries: int = 50
    min_burst: int = 16  # distinct queries among the model's recent ones before the burst test speaks
    remembered_inputs: int = 16_384  # asks per generation of the "answered before" filter (two are kept)
    novelty_floor: float = 0.05  # the least share of new inputs assumed of ordinary callers
    min_novel_queries: int = 50  # distinct queries of a caller before the novelty signal speaks

    @classmethod
    def from_table(cls, table: dict) -> AttackConfig:
        """The settings of an ``[attacks]`` table of a configuration file, whose ``trusted`` is a list (made a tuple
        here, before construction: the instance is frozen and hashable)."""
        trusted = table.get("trusted")
        if isinstance(trusted, list) and all(isinstance(t, str) for t in trusted):
            table = {**table, "trusted": tuple(trusted)}
        return cls(**table)

    def __post_init__(self):
        if not isinstance(self.trusted, tuple) or not all(isinstance(t, str) for t in self.trusted):
            raise ValueError(
                f"attacks.trusted must be a list of caller ids (a tuple when built in code), got {self.trusted!r}"
            )
        numbers = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trusted"}
        wrong = [name for name, v in numbers.items() if isinstance(v, bool) or not isinstance(v, int | float)]
        if wrong:
            raise ValueError(f"attacks.{wrong[0]} must be a number, got {numbers[wrong[0]]!r}")
        for name in ("false_alarms", "split_false_alarms", "extraction_rarity", "extraction_margin"):
            if not getattr(self, name) > 1:
                raise ValueError(f"attacks.{name} must be larger than 1, got {getattr(self, name)!r}")
        if not 0 < self.ratio <= 1:
            raise ValueError(f"attacks.ratio must lie in (0, 1], got {self.ratio!r}")
        if not 0 < self.latest <= 0.5:
            raise ValueError(f"attacks.latest must lie in (0, 0.5], got {self.latest!r}")
        if not 0 < self.novelty_floor < 1:
            raise ValueError(f"attacks.novelty_floor must lie in (0, 1), got {self.novelty_floor!r}")
        sizes = ("k", "min_history", "history", "recent", "reservoir", "max_callers", "max_models", "max_pending")
        sizes += ("remembered_inputs", "min_novel_queries")
        small = [name for name in sizes if getattr(self, name) < 1]
        if small or self.radius < 0:
            raise ValueError(f"attacks.{(small or ['radius'])[0]} must be positive")
        if self.remembered_inputs > 1 << 20:
            raise ValueError(
                f"attacks.remembered_inputs must be at most 1,048,576 (32 MB per model), got {self.remembered_inputs}"
            )

    @property
    def log_threshold(self) -> float:
        return math.log(self.false_alarms)
