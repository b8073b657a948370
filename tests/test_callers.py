"""Per-caller signals: opt-in keyed caller ids and nearness-preserving input fingerprints on spans."""

import numpy as np
import pytest

import otelml
from otelml import semconv


def proba(x):
    return np.tile([0.4, 0.6], (len(np.atleast_2d(x)), 1))


def hamming(a: str, b: str) -> int:
    return bin(int(a.split(".")[0], 16) ^ int(b.split(".")[0], 16)).count("1")  # the SimHash part


@pytest.fixture
def keyed(spans):
    otelml.configure(tracer_provider=spans[0], export_metrics=False, caller_key="k1")
    yield spans[1]
    otelml.shutdown()


def test_nothing_per_caller_leaves_unless_switched_on(keyed):
    otelml.monitor(model="m", version="1")(proba)(np.ones(3))
    [span] = keyed.get_finished_spans()
    assert semconv.CALLER_ID not in span.attributes and semconv.INPUT_FINGERPRINT not in span.attributes


def test_caller_ids_are_keyed_hashes_from_an_argument_a_callable_or_the_context(keyed):
    @otelml.monitor(model="m", version="1", caller="user")
    def by_argument(x, user):
        return proba(x)

    @otelml.monitor(model="m", version="1", caller=lambda x, request: request["api_key"])
    def by_callable(x, request):
        return proba(x)

    plain = otelml.monitor(model="m", version="1")(proba)
    by_argument(np.ones(2), user="alice")
    by_argument(np.ones(2), "alice")
    by_callable(np.ones(2), {"api_key": "alice"})
    with otelml.caller("alice"):
        plain(np.ones(2))
    by_argument(np.ones(2), user="bob")
    ids = [s.attributes[semconv.CALLER_ID] for s in keyed.get_finished_spans()]
    assert len(set(ids[:4])) == 1 and ids[4] != ids[0]
    assert "alice" not in ids[0] and len(ids[0]) == 32
    otelml.shutdown()
    otelml.configure(export_metrics=False, caller_key="k2", create_tracer_provider=False)
    assert otelml.sdk.runtime.default_runtime().caller_hasher().id("alice") != ids[0]  # another key, another id


def test_fingerprints_keep_nearness_and_never_the_input(keyed):
    predict = otelml.monitor(model="m", version="1", fingerprint_bits=64)(proba)
    rng = np.random.default_rng(0)
    for x in rng.normal(size=(1000, 8)):  # the first rows fix the standardization, and get no fingerprint
        predict(x)
    prints = [semconv.INPUT_FINGERPRINT in s.attributes for s in keyed.get_finished_spans()]
    assert not any(prints[:256]) and all(prints[256:])
    base = rng.normal(size=8)
    predict(base)
    predict(base + rng.normal(scale=0.02, size=8))  # a probe next to it
    predict(base + 1e-4)  # a step too small to change a bit: the same SimHash, another digest
    predict(base)  # a repeat: the same fingerprint
    predict(rng.normal(size=8))  # an unrelated input
    predict(rng.normal(size=(3, 8)))  # a small batch: one fingerprint per row
    spans = keyed.get_finished_spans()
    near, probe, tiny, again, far = (s.attributes[semconv.INPUT_FINGERPRINT] for s in spans[-6:-1])
    simhash, _, digest = near.partition(".")
    assert len(simhash) == 16 and len(digest) == 8
    assert hamming(near, probe) <= 6 and hamming(near, far) >= 12
    assert tiny.split(".")[0] == simhash and tiny != near and again == near
    assert len(spans[-1].attributes[semconv.INPUT_FINGERPRINT]) == 3
    predict(rng.normal(size=(100, 8)))  # larger batches carry none
    assert semconv.INPUT_FINGERPRINT not in keyed.get_finished_spans()[-1].attributes


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="multiple of 8"):
        otelml.monitor(model="m", fingerprint_bits=12)
    with pytest.raises(ValueError, match="argument name or a callable"):
        otelml.monitor(model="m", caller=42)


def test_the_same_rows_as_float32_float64_or_integers_get_the_same_fingerprints():
    from otelml.sdk.hashing import Fingerprinter

    rng = np.random.default_rng(3)
    rows = rng.normal(size=(1000, 6))
    double, single = Fingerprinter(b"k", tuple("abcdef"), 64), Fingerprinter(b"k", tuple("abcdef"), 64)
    assert (
        double.fingerprints(rows) == single.fingerprints(rows.astype(np.float32)) == []
    )  # they fix the standardization
    assert double.fingerprints(rows[:50]) == single.fingerprints(rows[:50].astype(np.float32))  # the same one
    integers = rng.integers(-(2**20), 2**20, size=(50, 6))
    assert double.fingerprints(integers) == single.fingerprints(integers.astype(np.float64))
    assert double.fingerprints(integers) == single.fingerprints(integers.astype(np.float32))
    odd = np.array([[-0.0, np.nan, 1e300, 2.0**60 + 1, 0.1, -np.inf]])
    same = np.array([[0.0, -np.nan, np.inf, 2.0**60, np.float32(0.1), -np.inf]])
    assert double.fingerprints(odd) == double.fingerprints(same)
    assert double.fingerprints(rows[:1] + 1e-3) != double.fingerprints(rows[:1])  # what float32 holds still counts
