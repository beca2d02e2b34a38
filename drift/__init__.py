"""The drift service: ingest gateway events, persist them, detect drift, trigger retrains."""
