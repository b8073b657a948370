"""Ingest: OTLP in (gRPC and HTTP receivers), decoded and validated into points and span summaries."""
