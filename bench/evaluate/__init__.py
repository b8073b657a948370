"""The Gaussian evaluation behind bench/evaluate.py: one module per table (``false_alarms`` 1, ``delays`` 2, ``versus``
2b, ``peers`` 3 with ``alibi``, ``real_drift`` 4, ``accuracy`` 5, ``speed`` 6, ``end_to_end`` 7), ``goals`` (the closing
table), the shared ``plan`` (FULL and QUICK), ``streams`` (seeded streams, references, windows built as the SDK
builds them), ``detectors`` (otelml and its peers behind one interface), ``report`` (summaries and printing), and
``run`` (``main``).

Import it with bench/ on sys.path (``import evaluate``; the package, not the script of the same name)."""
