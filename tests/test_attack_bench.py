"""The attack bench (bench/attacks, bench/attack_study.py): its candidate detectors on small seeded fingerprints, the
weaving of campaigns into benign traffic, and the quick study end to end. Needs the eval extra (ART)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("art")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from attacks.detectors import CallerKnn, CallerVolume, GlobalLsh  # noqa: E402
from attacks.stream import Stream, mix  # noqa: E402


def fingerprint(bits: np.ndarray) -> str:
    return np.packbits(bits).tobytes().hex()


def cloud(n: int, flips: int, seed: int, bits: int = 64) -> list:
    """``n`` fingerprints within ``flips`` bits of one random fingerprint (a probing campaign's shape)."""
    g = np.random.default_rng(seed)
    center = g.integers(0, 2, bits)
    out = []
    for _ in range(n):
        near = center.copy()
        near[g.choice(bits, size=g.integers(1, flips + 1), replace=False)] ^= 1
        out.append(fingerprint(near))
    return out


def far(n: int, seed: int, bits: int = 64) -> list:
    g = np.random.default_rng(seed)
    return [fingerprint(g.integers(0, 2, bits)) for _ in range(n)]


def test_knn_scores_near_duplicates_and_not_repeats():
    knn = CallerKnn(k=3, buffer=20)
    repeats = [knn.update("repeater", far(1, 0)[0]) for _ in range(50)]
    assert max(repeats) == -np.inf  # a legitimate repeater is never scored
    benign = [knn.update("benign", fp) for fp in far(50, 1)]
    probing = [knn.update("prober", fp) for fp in cloud(50, 2, 2)]
    assert max(benign) < -20 and min(s for s in probing if s > -np.inf) >= -4


def test_global_table_sees_a_campaign_split_over_callers_and_stays_bounded():
    table = GlobalLsh(64, bands=4, radius=2, window=500)
    for i, fp in enumerate(far(2_000, 3)):
        assert table.update(f"benign{i % 97}", fp) == 0
    assert len(table._entries) <= 500
    scores = [table.update(f"attacker{i % 20}", fp) for i, fp in enumerate(cloud(40, 2, 4))]
    assert scores[-1] >= 10  # each of 20 callers sent 2 queries; together they are a cloud


def test_volume_counts_distinct_queries():
    volume = CallerVolume(cap=10)
    assert [volume.update("c", fp) for fp in ["aa", "aa", "bb"]] == [1.0, 1.0, 2.0]
    assert max(volume.update("c", fp) for fp in far(30, 5)) == 10.0


def test_mix_weaves_every_attack_query_in_order_at_the_share():
    n = 10_000
    background = Stream(np.array([f"b{i}" for i in range(n)]), np.zeros((n, 2)), np.full(n, -1), np.arange(n))
    attack = np.arange(400, dtype=float).reshape(200, 2)
    mixed = mix(background, attack, campaign=7, split=5, share=0.05, seed=1, skip=1_000)
    assert not mixed.is_attack[:1_000].any() and mixed.is_attack[-1]
    assert np.array_equal(mixed.rows[mixed.is_attack], attack)
    assert set(mixed.callers[mixed.is_attack]) == {f"attack7-{j}" for j in range(5)}
    assert 0.03 < mixed.is_attack[1_000:].mean() < 0.07
    assert np.array_equal(mixed.index[~mixed.is_attack], np.arange((~mixed.is_attack).sum()))


def test_quick_study_prints_its_table():
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "bench/attack_study.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "(b) global r=2 64b+digest" in result.stdout and "bench took" in result.stdout
