"""The project's own promises: public names, naming conventions documented, bench, example and CLI run."""

import re
import subprocess
import sys
from pathlib import Path

import otelml
from otelml import semconv

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_imports():
    for name in otelml.__all__:
        assert getattr(otelml, name) is not None


def wire_names():
    return {k: v for k, v in vars(semconv).items() if k.isupper() and isinstance(v, str)}


def test_names_follow_opentelemetry_rules():
    for constant, value in wire_names().items():
        if constant.startswith(("METRIC_", "SCOPE")) or constant in (
            "MODEL_NAME",
            "MODEL_VERSION",
            "MODEL_TASK",
            "BATCH_SIZE",
            "PREDICTION_LABEL",
            "PREDICTION_CONFIDENCE",
            "FEATURE_NAME",
            "FEATURE_CATEGORY",
            "NONFINITE_KIND",
            "TRUE_LABEL",
            "DROP_REASON",
            "ERROR_TYPE",
        ):
            assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*", value), (constant, value)
        if constant.startswith("UNIT_"):
            assert value in ("s", "1") or re.fullmatch(r"\{[a-z]+\}", value), (constant, value)


def test_the_documents_name_every_name_on_the_wire():
    documents = "".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    missing = [v for k, v in wire_names().items() if not k.startswith("UNIT_") and f"`{v}`" not in documents]
    assert not missing, f"README and docs/ lack {missing}"


def test_every_link_of_the_readme_to_docs_leads_to_a_document():
    links = re.findall(r"\]\((docs/[^)#]+)", (ROOT / "README.md").read_text())
    assert len(set(links)) >= 5 and all((ROOT / link).is_file() for link in links), links


def test_readme_starts_with_the_two_commands():
    lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    commands = [line for line in lines[:12] if line.startswith("make ")]
    assert commands[:2] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def run(*args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_bench_runs_and_reports_the_three_ratios():
    result = run("bench/run.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"^(single row|10k x 20 batch).*\d+\.\d\d\s+[<>]=", result.stdout, re.M)) == 3, result.stdout


def test_ingest_bench_runs_and_reports_rate_and_ratio():
    result = run("bench/ingest.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert re.search(r"analyzer ingest .* points/s", result.stdout) and re.search(r"ingest / floor +\d", result.stdout)


def test_the_example_runs_end_to_end():
    result = run("examples/phishing_monitor.py")
    assert result.returncode == 0, result.stderr
    assert "accuracy from the outcome counter alone" in result.stdout
    assert re.search(r"spans received: \d{3}", result.stdout)


def test_the_sdk_side_loads_nothing_of_the_service():
    code = "import otelml, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'tornado') "
    code += "or m.startswith('otelml.analyzer')))"
    assert run("-c", code).stdout.strip() == "[]"


def test_cli():
    assert run("-m", "otelml.cli", "version").stdout.strip() == otelml.__version__
    result = run("-m", "otelml.cli", "sink", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--seconds", "1")
    assert result.returncode == 0 and "OTLP/gRPC on http://127.0.0.1:" in result.stdout
    bad = run("-m", "otelml.cli", "sink", "--grpc", "nonsense")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def test_the_sink_prints_each_log_record_it_receives():
    """``otelml sink`` stands in for a SIEM in the README's first steps: an alert (an OTLP log record posted as the
    analyzer's exporter posts it) is printed with its severity, event name and body."""
    import urllib.request

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.severity_text, record.event_name, record.body.string_value = "WARN", "otelml.alert", "drift alert (x2)"
    command = [sys.executable, "-m", "otelml.cli", "sink", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    sink = subprocess.Popen([*command, "--seconds", "60"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        http = sink.stdout.readline().rsplit("OTLP/HTTP on ", 1)[1].strip()
        post = urllib.request.Request(
            f"{http}/v1/logs", request.SerializeToString(), {"Content-Type": "application/x-protobuf"}
        )
        urllib.request.urlopen(post, timeout=30).close()
        assert sink.stdout.readline().split() == ["log", "WARN", "otelml.alert", "drift", "alert", "(x2)"]
    finally:
        sink.kill()
        sink.wait(30)
