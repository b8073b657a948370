"""Names otelml puts on the wire: attributes, metrics, units, span and event names.

No OpenTelemetry semantic convention covers classical ML inference yet, so otelml defines its own under the
``otelml.`` namespace, following OpenTelemetry's naming rules: dotted lower-case names, UCUM units (``s`` for
durations, ``1`` for ratios, ``{annotation}`` for counts), and metric attributes of bounded cardinality (model,
version, task, feature, label; never a request or user id).

This module imports nothing and holds constants only. Every other module takes its names from here, and the README
documents each one.
"""

# Instrumentation scope of everything otelml emits.
SCOPE_NAME = "otelml"

# --- Model identity: span attributes and metric point attributes -------------------------------------------------
MODEL_NAME = "otelml.model.name"
MODEL_VERSION = "otelml.model.version"
MODEL_TASK = "otelml.model.task"

TASK_CLASSIFICATION = "classification"
TASK_REGRESSION = "regression"
TASK_SCORING = "scoring"
TASKS = (TASK_CLASSIFICATION, TASK_REGRESSION, TASK_SCORING)

# --- Per-call span attributes -------------------------------------------------------------------------------------
SPAN_NAME_PREFIX = "predict"  # span name: "predict {model name}"
BATCH_SIZE = "otelml.batch.size"
PREDICTION_LABEL = "otelml.prediction.label"  # single-row calls only
PREDICTION_CONFIDENCE = "otelml.prediction.confidence"  # single-row calls only
ERROR_TYPE = "error.type"  # OpenTelemetry's general attribute, on failed calls
CALLER_ID = "otelml.caller.id"  # opt-in: keyed hash of the caller's identity
INPUT_FINGERPRINT = "otelml.input.fingerprint"  # opt-in: SimHash of each input row (string, or array for batches)

# --- Metric point attributes besides model identity ---------------------------------------------------------------
FEATURE_NAME = "otelml.feature.name"
FEATURE_CATEGORY = "otelml.feature.category"
NONFINITE_KIND = "otelml.nonfinite.kind"
NONFINITE_NAN = "nan"
NONFINITE_POS_INF = "+inf"
NONFINITE_NEG_INF = "-inf"
TRUE_LABEL = "otelml.outcome.true_label"
# Predicted label on metrics uses PREDICTION_LABEL.
OTHER_VALUE = "__other__"  # stands for every value past a cardinality cap

# --- Metrics: name, unit -------------------------------------------------------------------------------------------
# Histograms are exponential histograms with delta temporality.
METRIC_DURATION = "otelml.inference.duration"
UNIT_DURATION = "s"
METRIC_CONFIDENCE = "otelml.prediction.confidence"
UNIT_CONFIDENCE = "1"
METRIC_MARGIN = "otelml.prediction.margin"
UNIT_MARGIN = "1"
METRIC_PREDICTION_VALUE = "otelml.prediction.value"
UNIT_PREDICTION_VALUE = "1"
METRIC_FEATURE_VALUE = "otelml.feature.value"
UNIT_FEATURE_VALUE = "1"

# Monotonic sums with delta temporality.
METRIC_CALLS = "otelml.inference.calls"
UNIT_CALLS = "{call}"
METRIC_ROWS = "otelml.inference.rows"
UNIT_ROWS = "{row}"
METRIC_PREDICTIONS = "otelml.predictions"
UNIT_PREDICTIONS = "{prediction}"
METRIC_FEATURE_NONFINITE = "otelml.feature.nonfinite"
UNIT_FEATURE_NONFINITE = "{value}"
METRIC_FEATURE_CATEGORY = "otelml.feature.category.count"
UNIT_FEATURE_CATEGORY = "{value}"
METRIC_OUTCOMES = "otelml.outcomes"
UNIT_OUTCOMES = "{outcome}"
METRIC_TELEMETRY_DROPPED = "otelml.telemetry.dropped"
UNIT_TELEMETRY_DROPPED = "{item}"
DROP_REASON = "otelml.drop.reason"

# --- The analyzer's own metrics -------------------------------------------------------------------------------------
ANALYZER_SCOPE_NAME = "otelml.analyzer"
METRIC_ANALYZER_POINTS = "otelml.analyzer.points"
UNIT_ANALYZER_POINTS = "{point}"
ANALYZER_OUTCOME = "otelml.analyzer.outcome"  # received, accepted, rejected, ignored, late, stale
METRIC_ANALYZER_SPANS = "otelml.analyzer.spans"
UNIT_ANALYZER_SPANS = "{span}"
METRIC_ANALYZER_WINDOWS_CLOSED = "otelml.analyzer.windows.closed"
UNIT_ANALYZER_WINDOWS_CLOSED = "{window}"
METRIC_ANALYZER_REQUESTS_REFUSED = "otelml.analyzer.requests.refused"
UNIT_ANALYZER_REQUESTS_REFUSED = "{request}"
METRIC_ANALYZER_STORE_TIME = "otelml.analyzer.store.time"
UNIT_ANALYZER_STORE_TIME = "s"
METRIC_ANALYZER_MODELS = "otelml.analyzer.models"
UNIT_ANALYZER_MODELS = "{model}"
# The latest log e-value of each drift detector per model version (its alarm threshold is ln A).
METRIC_ANALYZER_DRIFT_SCORE = "otelml.analyzer.drift.score"
UNIT_ANALYZER_DRIFT_SCORE = "{score}"  # an annotation: dimensionless, and no "_ratio" suffix in Prometheus
ANALYZER_DETECTOR = "otelml.analyzer.detector"  # input drift, output drift, label mix, category drift

# --- Alerts: OTLP log records the analyzer emits ---------------------------------------------------------------------
EVENT_ALERT = "otelml.alert"  # the LogRecord's event name
ALERT_ID = "otelml.alert.id"  # stable per incident: a retry never makes a second alert downstream
ALERT_EVENT_ID = "otelml.alert.event.id"  # stable per record (firing, each update, resolved)
ALERT_KIND = "otelml.alert.kind"  # drift, performance, adversarial, integrity, availability
ALERT_STATE = "otelml.alert.state"  # firing, resolved
ALERT_STATE_FIRING = "firing"
ALERT_STATE_RESOLVED = "resolved"
ALERT_DETECTOR = "otelml.alert.detector"
ALERT_SEVERITY = "otelml.alert.severity"  # info, warning, critical
ALERT_STATISTIC = "otelml.alert.statistic"
ALERT_VALUE = "otelml.alert.value"
ALERT_THRESHOLD = "otelml.alert.threshold"
ALERT_EFFECT = "otelml.alert.effect"
ALERT_EFFECT_SIZE = "otelml.alert.effect_size"
ALERT_FEATURES = "otelml.alert.features"  # string array: the features named
ALERT_FINDINGS = "otelml.alert.findings"  # how many findings the incident holds so far
ALERT_WINDOW_START = "otelml.alert.window.start"  # unix nanoseconds
ALERT_WINDOW_END = "otelml.alert.window.end"
ALERT_QUERIES = "otelml.alert.queries"  # adversarial alerts: the caller's queries so far
ALERT_FIRST_TRACE_ID = "otelml.alert.first_trace_id"  # adversarial alerts: trace of the campaign's first query
