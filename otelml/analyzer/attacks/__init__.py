"""Attacks through the model's own API, seen per caller in spans: evasion probing, split campaigns, extraction.

The SDK can put a keyed caller id (``otelml.caller.id``) and a SimHash fingerprint of each input row
(``otelml.input.fingerprint``) on every call's span. Fingerprints at a small Hamming distance came from inputs at a
small angle from each other; nothing else about the input is known here. Per model, this module keeps:

- per caller (at most ``max_callers`` in all, least recently seen forgotten first): its last ``history`` distinct
  fingerprints, its query, distinct and repeat counts, the first and latest trace of what looks like a campaign;
- globally: the last ``recent`` distinct fingerprints of all callers, a uniform reservoir sample of ``reservoir``
  fingerprints over the whole past (the picture of ordinary traffic), and how many ordinary callers asked each
  exact input.

Three tests:

- evasion probing (Chen, Carlini & Wagner 2020), a CUSUM e-detector per caller on win shares (the bet
  ``1 + stake (win - q) / q``, mixed over four stakes and three ``q``; alarm at ``ln A``): a query that is *near*
  (its mean distance to its ``k`` nearest earlier distinct queries of the same caller is below ``ratio`` times the
  same distance to as many fingerprints drawn from the reservoir) wins the share of its nearest earlier queries
  (all those tied at the least distance) that are among the caller's last ``L``; ``q = L / n`` of its ``n`` kept
  queries, for three ``L``: the last query alone, the last ``latest / 4`` share and the last ``latest`` share
  (a query that is not near wins nothing). Under the null that the caller's distinct queries are exchangeable
  (drawn in any order from one distribution, whatever it is: a browser, or a caller re-sending a few rows of its
  own with noise), the nearest are placed at random among them, so the expected win is ``q`` and the caller alarms
  less than once per ``A`` distinct queries. A walk (each query a small step from the last ones: HopSkipJump's
  binary and step searches, Boundary's steps) keeps winning, and most on the bet on the last query. What no
  fingerprint test can tell apart: a cloud of queries around one point in no order, such as HopSkipJump's gradient
  estimation and a jittered re-sender; the campaign is found at its next steps. Exact repeats are counted, not
  bet on. Callers whose successive inputs are related (a drifting sensor, a time series) do walk and can alarm
  (``trusted`` exempts callers from the extraction tests only).
- split probing (after Blacklight, Li et al. 2022), one query at a time, whoever sends it: ``n`` of the recent
  queries of *other* callers lie within ``radius`` bits of it (the very same input left out), against ``m`` of as
  many reservoir fingerprints. If recent and past traffic are alike, ``n`` given ``n + m`` is Binomial(1/2), and the
  query alarms when that tail is below ``1 / split_false_alarms`` and the near queries came from at least
  ``split_callers`` other callers (an ordinary caller who happens to ask near a one-account campaign is not one of
  a campaign). A campaign spread over many accounts makes the recent traffic dense around its points; ordinary
  traffic is no denser now than before. The finding names the other callers near the query.
- extraction, two signals. Novel inputs: per caller, a CUSUM e-detector betting that its distinct queries are
  inputs no ordinary caller asked before (the exact-input digest, counted in a fixed-size counting Bloom filter of
  the last ``remembered_inputs`` x 2 asks) more often than other callers' recent queries are (their share, plus
  two standard errors, at least ``novelty_floor``; it alarms from ``min_novel_queries`` distinct queries on): a
  thief querying its own data or a synthetic grid asks what nobody else asks. A query *near* the caller's own
  earlier ones (as in evasion probing, or within ``radius`` bits of one) is not bet on: it asks almost what the
  caller asked before (a re-sent row with noise, a step of a walk) and teaches a thief little; exact repeats are
  not bet on either. Where every input
  is new anyway (continuous features) the share is near 1 and the test stays silent.
  Volume: a caller's distinct queries, in all ("volume") or among the model's last ``recent`` ("burst"),
  reaching ``extraction_margin`` (2) times a count that fewer than one in ``extraction_rarity`` other callers
  reached (counted on a quarter-octave scale; at least ``min_extraction_queries`` in all or ``min_burst`` recent;
  once ``min_population`` callers are known): the volume signature of a thief that needs hundreds of answers
  (Juuti et al., PRADA, 2019, on the query patterns of extraction). Callers listed in ``trusted`` (your own
  gateways, batch jobs) are left out of both and of the population they compare with, and so is every caller
  once alarmed (one thief must not hide the next). A caller whose inputs nobody else sends (a new client with
  its own data) looks like a thief to the novelty signal: list it in ``trusted``.

Why exchangeability gives ``q``: given the set of the caller's first ``t`` distinct queries and the newest, the
order of the others is uniformly random, so the positions of the newest one's nearest among them are a uniform
draw without replacement and the share of them among the last ``L`` has mean ``L / n`` (exactly so over a caller's whole past; the test keeps its last ``history``, which leaves a small dependence between
successive bets). The *near* condition only makes wins rarer: an ordinary browser is rarely near its own queries
at all. Callers who ask about a narrow region in no particular order (a shop querying its own products) stay
exchangeable and do not alarm.

The package: ``fingerprints`` (parsing, distances), ``answered`` (which inputs ordinary callers asked before),
``bets`` (the CUSUM e-detector on wins), ``traffic`` (one model's traffic), ``config`` (``AttackConfig``),
``detectors`` (the three tests as classes, and their registry) and ``watch`` (``CallerWatch``, which feeds them).
Example: ``tests/test_attacks.py``.
"""

from .config import AttackConfig
from .detectors import REGISTRY, CallerDetector
from .fingerprints import distances, knn, parse_fingerprint, same, walked
from .watch import FORMAT, CallerWatch

__all__ = [
    "FORMAT",
    "REGISTRY",
    "AttackConfig",
    "CallerDetector",
    "CallerWatch",
    "distances",
    "knn",
    "parse_fingerprint",
    "same",
    "walked",
]
