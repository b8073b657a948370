"""What the analyzer shows: its HTTP routes, the status page, the read models behind them, and its own telemetry."""
