"""docker-compose.yml, the configuration files it mounts (the same ones the integration tests run) and the Grafana
provisioning agree: services, ports, endpoints, file paths and data source names. No Docker engine is needed."""

import json
import re
import shlex
from urllib.parse import urlsplit

import pytest

from . import stack
from .yaml_subset import load

REPO = stack.REPO
COMPOSE = load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))


def env_defaults(path) -> dict:
    """``${env:NAME:-default}`` defaults of a collector-style configuration file."""
    return dict(re.findall(r"\$\{env:(\w+):-([^}]*)\}", path.read_text()))


def port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def binds(service: str) -> dict:
    """Bind mounts of a compose service: ``{container path: repository path}``."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = REPO / source
    return found


def named_volumes(service: str) -> dict:
    return {
        v.split(":")[1]: v.split(":")[0] for v in SERVICES[service].get("volumes", []) if not v.startswith(("./", "/"))
    }


def published(service: str) -> set:
    return {int(p.split(":")[-1]) for p in SERVICES[service].get("ports", [])}


def flag(command: list, name: str) -> str:
    """The value of ``--name=value`` or ``--name value`` in a command line."""
    for at, part in enumerate(command):
        if part.startswith(f"{name}="):
            return part.split("=", 1)[1]
        if part == name:
            return command[at + 1]
    raise AssertionError(f"{name} not in {command}")


def dockerfile() -> dict:
    """The analyzer image's ``ENV`` (as a dict) and ``CMD`` (exec form)."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    env, cmd = {}, None
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(part.split("=", 1) for part in shlex.split(line[4:]))
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
    return {"env": env, "cmd": cmd}


COLLECTOR = env_defaults(stack.COLLECTOR_CONFIG)
JAEGER = env_defaults(stack.JAEGER_CONFIG)
LOKI = load((REPO / "collector" / "loki.yaml").read_text())


def test_the_stack_has_every_service_and_every_mounted_file_exists():
    assert set(SERVICES) == {"collector", "analyzer", "jaeger", "prometheus", "grafana", "loki"}
    for service in SERVICES:
        for source in binds(service).values():
            assert source.exists(), (service, source)
    assert SERVICES["analyzer"]["build"] == "." and (REPO / "Dockerfile").exists()
    assert set(COMPOSE["volumes"]) == {v for s in SERVICES for v in named_volumes(s).values()}


@pytest.mark.parametrize(
    "service, option, config",
    [
        ("collector", "--config", stack.COLLECTOR_CONFIG),
        ("jaeger", "--config", stack.JAEGER_CONFIG),
        ("prometheus", "--config.file", stack.PROMETHEUS_CONFIG),
        ("loki", "-config.file", REPO / "collector" / "loki.yaml"),
    ],
)
def test_each_service_reads_the_configuration_the_tests_use(service, option, config):
    assert binds(service)[flag(SERVICES[service]["command"], option)] == config


def test_the_collectors_default_endpoints_are_the_compose_services():
    assert COLLECTOR["JAEGER_ENDPOINT"] == f"jaeger:{port(JAEGER['JAEGER_OTLP_GRPC_ENDPOINT'])}"
    analyzer_grpc = port(flag(dockerfile()["cmd"], "--otlp-grpc"))
    assert COLLECTOR["OTELML_ANALYZER_ENDPOINT"] == f"analyzer:{analyzer_grpc}"
    assert env_defaults(stack.SCALEOUT_CONFIG)["OTELML_ANALYZERS"] == f"[analyzer:{analyzer_grpc}]"
    loki = urlsplit(COLLECTOR["LOKI_ENDPOINT"])
    assert (loki.hostname, loki.port, loki.path) == ("loki", LOKI["server"]["http_listen_port"], "/otlp")
    alerts_dir = COLLECTOR["ALERTS_FILE"].rsplit("/", 1)[0]
    assert alerts_dir in named_volumes("collector")
    assert {port(COLLECTOR["OTELCOL_GRPC_ENDPOINT"]), port(COLLECTOR["OTELCOL_HTTP_ENDPOINT"])} <= published(
        "collector"
    )


def test_the_analyzer_sends_alerts_and_its_own_metrics_to_the_collector():
    image = dockerfile()
    alerts = urlsplit(flag(image["cmd"], "--alerts-endpoint"))
    assert (alerts.hostname, alerts.port) == ("collector", port(COLLECTOR["OTELCOL_GRPC_ENDPOINT"]))
    assert flag(image["cmd"], "--alerts-protocol") == "grpc"
    telemetry = urlsplit(image["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (telemetry.hostname, telemetry.port) == ("collector", port(COLLECTOR["OTELCOL_HTTP_ENDPOINT"]))
    assert image["env"]["OTEL_SERVICE_NAME"] == "otelml-analyzer"
    assert flag(image["cmd"], "--state-dir") in named_volumes("analyzer")
    assert port(flag(image["cmd"], "--http")) in published("analyzer")


def test_prometheus_scrapes_the_collectors_exporters_with_native_histograms():
    config = load(stack.PROMETHEUS_CONFIG.read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    expected = {
        f"collector:{port(COLLECTOR['OTELCOL_PROMETHEUS_ENDPOINT'])}",
        f"collector:{COLLECTOR['OTELCOL_TELEMETRY_PORT']}",
    }
    assert targets == expected
    assert "--enable-feature=native-histograms" in SERVICES["prometheus"]["command"]


def test_grafana_data_sources_point_at_the_services_and_dashboards_use_them():
    provisioning = binds("grafana")["/etc/grafana/provisioning"]
    assert provisioning == REPO / "grafana" / "provisioning"
    sources = {s["uid"]: s for s in load((provisioning / "datasources" / "otelml.yaml").read_text())["datasources"]}
    urls = {uid: urlsplit(s["url"]) for uid, s in sources.items()}
    assert (urls["prometheus"].hostname, urls["prometheus"].port) == ("prometheus", 9090)
    assert 9090 in published("prometheus") and "--web.listen-address" not in str(SERVICES["prometheus"]["command"])
    assert (urls["loki"].hostname, urls["loki"].port) == ("loki", LOKI["server"]["http_listen_port"])
    assert (urls["jaeger"].hostname, urls["jaeger"].port) == ("jaeger", port(JAEGER["JAEGER_QUERY_HTTP_ENDPOINT"]))
    assert {s["type"] for s in sources.values()} == {"prometheus", "loki", "jaeger"}
    [trace_link] = sources["loki"]["jsonData"]["derivedFields"]
    assert trace_link["datasourceUid"] == "jaeger" and trace_link["matcherRegex"] == "trace_id"

    [provider] = load((provisioning / "dashboards" / "otelml.yaml").read_text())["providers"]
    assert binds("grafana")[provider["options"]["path"]] == REPO / "grafana" / "dashboards"
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        used = [p["datasource"] for p in dashboard["panels"]]
        used += [t["datasource"] for p in dashboard["panels"] for t in p["targets"]]
        used += [v["datasource"] for v in dashboard["templating"]["list"] if "datasource" in v]
        for source in used:
            assert source["uid"] in sources and sources[source["uid"]]["type"] == source["type"], (path.name, source)


def test_the_dashboard_shows_what_the_issue_asks_for():
    [dashboard] = [json.loads(p.read_text()) for p in DASHBOARDS if p.name == "model-health.json"]
    text = json.dumps(dashboard)
    for metric in (
        "otelml_inference_calls_total",
        "otelml_inference_duration_seconds",
        "otelml_prediction_confidence",
        "otelml_analyzer_drift_score",
        "otelml_feature_value",
    ):
        assert metric in text
    assert "error_type" in text and "histogram_quantile(0.95" in text
    assert any(p["type"] == "logs" and p["datasource"]["uid"] == "loki" for p in dashboard["panels"])
