"""Load shapes and budgets shared by the experiments (named, so a reader can change them in one place)."""

from chaos.workload import LoadSpec

# Gate tier: a few hundred events per second over 16 keys, several ops in flight per key.
GATE_LOAD = LoadSpec(rate=200, keys=16, batch_size=1, max_in_flight=256)
BEFORE_S = 5.0  # steady-state load before the fault
DURING_S = 8.0  # how long the fault lasts
AFTER_S = 6.0  # load after heal
