# The two commands of the README: `make experiments` and `make test`. Both set up what is missing first.
.PHONY: setup images experiments test unit lint matrix nightly detect orders orders-experiments orders-matrix \
	random-schedules nightly-proof

setup:
	@bash scripts/setup.sh

images: setup

experiments: setup
	uv run --frozen pytest chaos/experiments

test: setup
	uv run --frozen pytest tests/

unit:
	uv run --frozen pytest tests/unit -q

lint:
	uv run --frozen ruff check .
	uv run --frozen mypy

# The defect detection matrix (5 repetitions of every defect x experiment pair, and the correct pipeline).
matrix: setup
	uv run --frozen pytest chaos/experiments/test_detection_matrix.py --chaos-tier=matrix --chaos-repeat=5

# The nightly tier: longer phases and load, nightly-only experiments included.
nightly: setup
	uv run --frozen pytest chaos/experiments --chaos-tier=nightly

# A reduced detection check for every push: defects of both pipelines, each against the experiment that must catch
# it (four of the reference pipeline, two of the orders example).
ORDERS = --chaos-pipeline=examples.orders.adapter:PIPELINE
detect: setup
	uv run --frozen pytest chaos/experiments/test_detection_matrix.py --chaos-tier=matrix \
	  -k "commit_before_write-postgres_outage or no_dedup-sink_kafka_down or acks1-leader_isolated or no_idempotence-entry_kafka_lost_acks"
	uv run --frozen pytest chaos/experiments/test_detection_matrix.py --chaos-tier=matrix $(ORDERS) \
	  -k "swallow_optimistic_lock-steady_state or no_inbox-sink_kafka_down"

# The orders example (Java) on every push: its steady state, and its own experiment.
orders: setup
	uv run --frozen pytest chaos/experiments/test_steady_state.py examples/orders/experiments $(ORDERS)

# The orders example's whole gate catalogue and its detection matrix.
orders-experiments: setup
	uv run --frozen pytest chaos/experiments examples/orders/experiments $(ORDERS)
orders-matrix: setup
	uv run --frozen pytest chaos/experiments/test_detection_matrix.py --chaos-tier=matrix --chaos-repeat=5 $(ORDERS)

# Randomised fault schedules (Hypothesis) against the correct pipeline; the profile from CHAOS_HYPOTHESIS_PROFILE
# (dev | ci | nightly; default dev, ci when CI is set). Replay one: CHAOS_REPLAY=<replay.json> make random-schedules
random-schedules: setup
	uv run --frozen pytest chaos/experiments/test_random_schedules.py --chaos-tier=nightly

# The proof that random schedules find a defect nobody pointed them at: with commit_before_write switched on,
# a nightly-profile run must fail (a failing schedule found, shrunk, reported), and replaying the recorded
# minimal schedule must fail too. Exit 0 only when both fail; reports under reports/nightly-proof/.
NIGHTLY_PROOF_DEFECT ?= commit_before_write
nightly-proof: setup
	@rm -rf reports/nightly-proof
	@CHAOS_REPORT_DIR=reports/nightly-proof uv run --frozen pytest chaos/experiments/test_random_schedules.py \
	  --chaos-tier=nightly --chaos-hypothesis-profile=nightly --chaos-defects=$(NIGHTLY_PROOF_DEFECT) \
	  --chaos-hypothesis-shrink-time-s=$${CHAOS_HYPOTHESIS_SHRINK_TIME_S:-240}; rc=$$?; \
	  [ $$rc -eq 1 ] || { echo "nightly-proof: the nightly run should have failed (exit $$rc)"; exit 1; }
	@m=$$(ls reports/nightly-proof/*/random_schedules/minimal-replay.json | head -1); echo "replaying $$m"; \
	  CHAOS_REPORT_DIR=reports/nightly-proof uv run --frozen pytest chaos/experiments/test_random_schedules.py \
	  --chaos-tier=nightly --chaos-replay=$$m; rc=$$?; \
	  [ $$rc -eq 1 ] || { echo "nightly-proof: the replay should have failed (exit $$rc)"; exit 1; }; \
	  echo "nightly-proof: found, shrunk and replayed a failing schedule for $(NIGHTLY_PROOF_DEFECT)"
