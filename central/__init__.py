"""Zastava central aggregator: ingest of alerts from every post, storage, API and console.

Only the package and its command exist so far; ingest, storage and the API land with the
alerts-over-MQTT issue.
"""

__version__ = "0.1.0"
