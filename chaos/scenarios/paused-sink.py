"""A scenario written in Python: the first sink replica frozen for 8 s (longer than its session timeout),
then thawed.

A Python scenario exposes ``scenario``: a ``Scenario``, a dict in the TOML layout, or a function returning
either. Faults can be any ``chaos.faults`` object, so anything the library can do a game day can do.
"""

from chaos.faults import Pause, Service


def scenario():
    return {
        "name": "paused-sink",
        "description": "the first sink replica frozen (cgroup freezer) for 8 s, then thawed: its partitions "
                       "move to the others, nothing is applied twice",
        "phases": {"warmup_s": 3, "before_s": 4, "after_s": 5},
        "steady_state": {"probe": [
            {"type": "entry_serving", "during": "abort"},
            {"type": "error_rate", "max": 0.0, "window_s": 3, "during": "abort"},
            {"type": "consumer_lag", "max": 2000},
        ]},
        "method": [{"fault": Pause(Service("sink", 1)), "at_s": 0, "duration_s": 8}],
        "budgets": {"window_s": 3, "max_consumer_lag": 50000},
        "rollback": [{"action": "ensure_running", "nodes": ["all:sink"]}],
    }
