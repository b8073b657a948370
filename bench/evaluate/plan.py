"""How much of each table a run measures: ``FULL`` and ``QUICK`` (``--quick``)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of everything to run."""

    null_streams: int  # table 1: streams (each with its own reference)
    null_windows: int  # ... windows per stream
    sdk_windows: int  # ... windows per stream for the replica and batch-traffic settings
    low_a_streams: int  # ... streams also run at A = 100
    kswin_windows: int  # ... windows per stream for KSWIN (about 0.2 ms per value)
    delay_seeds: int  # table 2
    versus_seeds: int  # table 2b
    horizon: int  # windows after a change
    peer_streams: int  # table 3: no-drift streams (table 1's, first feature), null_windows each
    peer_seeds: int  # ... seeds for delays
    kswin_seeds: int
    river_rows: int  # table 4: reference rows; the stream is twice as long, its drift in the middle
    accuracy_seeds: int  # table 5
    accuracy_null_streams: int
    accuracy_null_windows: int
    speed_reference_rows: int  # table 6
    speed_repeats: int
    alibi_streams: int  # table 3 with --alibi: no-drift streams, ...
    alibi_windows: int  # ... windows each
    alibi_seeds: int  # ... seeds for delays
    e2e_seeds: int  # table 7


FULL = Plan(10, 5_000, 1_000, 2, 10, 50, 500, 500, 40, 500, 20, 20_000, 300, 10, 5_000, 100_000, 21, 2, 250, 10, 5)
QUICK = Plan(2, 100, 20, 1, 3, 2, 4, 60, 2, 2, 1, 8_000, 20, 2, 300, 10_000, 3, 1, 20, 1, 1)
