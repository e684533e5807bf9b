"""refpipe: reference pipeline (gRPC ingest -> Kafka -> projector -> Postgres)."""

__version__ = "1.0.0"
