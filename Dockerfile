# The otelml analyzer as a container (docker-compose.yml builds it). Receives OTLP on 4317 (gRPC) and 4318 (HTTP),
# serves the status page and API on 8080, keeps its state in /var/lib/otelml, and sends alerts as OTLP log records
# to the collector (override with --alerts-endpoint or OTEL_EXPORTER_OTLP_LOGS_ENDPOINT).
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY otelml ./otelml
RUN pip install --no-cache-dir '.[analyzer]' && useradd --system --uid 10001 otelml \
    && mkdir -p /var/lib/otelml && chown otelml /var/lib/otelml

USER otelml
VOLUME /var/lib/otelml
EXPOSE 4317 4318 8080
ENV OTEL_SERVICE_NAME=otelml-analyzer \
    OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318
CMD ["otelml", "analyzer", "--otlp-grpc", "0.0.0.0:4317", "--otlp-http", "0.0.0.0:4318", "--http", "0.0.0.0:8080", \
     "--state-dir", "/var/lib/otelml", "--alerts-endpoint", "http://collector:4317", "--alerts-protocol", "grpc"]
