"""The realistic drift evaluation behind bench/realistic.py: ``streams`` (real and generated populations, reference
sizes, window layouts), ``populations`` (sampling and the tilted changes), ``detectors`` (otelml, ADWIN and KS behind
one interface), ``measure`` (false alarms and delays), ``report`` (the run, its tables and ``main``).

Import it with bench/ on sys.path (``import realistic``; the package, not the script of the same name)."""
