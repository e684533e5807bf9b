"""pipeline-chaos: chaos and fault-injection experiments for gRPC -> Kafka -> consumers -> Postgres pipelines.

The public API for adapters is :mod:`chaos.adapter`; the pytest plugin is :mod:`chaos.pytest_plugin`
(found through the ``pytest11`` entry point); ``gameday`` is the command line of game days.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pipeline-chaos")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
