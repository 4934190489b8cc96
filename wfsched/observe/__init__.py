"""Operating wfsched: its Prometheus series (metrics.py) and its structured logs."""
