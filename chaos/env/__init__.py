"""The environment: clean-up by label (``janitor``), the topology table (``topology``), Kafka's
configuration and introspection (``kafka``), readiness checks (``readiness``), bounded waits (``wait``),
and :class:`Environment`, which starts the containers and deploys a pipeline (``environment``)."""

from chaos.env.environment import Deployment, Endpoints, Environment, kraft_cluster_id
from chaos.env.janitor import (
    LABEL_DEPLOYMENT,
    LABEL_KEEP,
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_RUN,
    EnvironmentError_,
    connect_engine,
    sweep,
)
from chaos.env.kafka import client_config as kafka_client_config
from chaos.env.topology import BROKER_NODES, BROKERS, Link, Topology
from chaos.env.wait import wait_until

__all__ = [
    "BROKERS",
    "BROKER_NODES",
    "LABEL_DEPLOYMENT",
    "LABEL_KEEP",
    "LABEL_OWNER",
    "LABEL_ROLE",
    "LABEL_RUN",
    "Deployment",
    "Endpoints",
    "Environment",
    "EnvironmentError_",
    "Link",
    "Topology",
    "connect_engine",
    "kafka_client_config",
    "kraft_cluster_id",
    "sweep",
    "wait_until",
]
