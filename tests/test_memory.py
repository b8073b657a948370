"""The analyzer's memory: freed request buffers go back to the system (``otelml/analyzer/allocator.py``)."""

import ctypes
import subprocess
import sys
import textwrap

import pytest

WORKLOAD = textwrap.dedent(
    """
    import sys, threading
    from otelml.analyzer import allocator
    if sys.argv[1] == "limited":
        allocator.limit_retention()

    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    keep = []

    def receiver():  # what a receiver thread does with request bodies, in miniature
        for _ in range(3):
            big = bytearray(8 * 2**20)  # one large body, freed: glibc then keeps blocks this size in its arenas
            del big
            bodies = []
            for _ in range(60):
                bodies.append(bytearray(2**20))
                keep.append(bytearray(200))  # small objects that outlive the bodies around them
            del bodies

    threads = [threading.Thread(target=receiver) for _ in range(4)]
    before = rss()
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(rss() - before)
    """
)


def glibc() -> bool:
    return hasattr(ctypes.CDLL(None), "gnu_get_libc_version")


@pytest.mark.skipif(not glibc(), reason="the settings are glibc's")
def test_freed_request_buffers_do_not_stay_resident():
    """Four threads each free 180 MiB of 1 MiB buffers among small objects that stay: by default glibc keeps about
    90 MiB of them resident; with the analyzer's settings, almost nothing."""

    def retained(mode):
        env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* settings from the environment
        out = subprocess.run(
            [sys.executable, "-c", WORKLOAD, mode], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return float(out.stdout)

    assert retained("default") > 40  # the workload shows the retention (else this test proves nothing)
    assert retained("limited") < 10
