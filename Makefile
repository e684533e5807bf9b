# The two commands of the README: `make experiments` and `make test`. Both set up what is missing first.
.PHONY: setup images experiments test unit lint matrix nightly detect

setup:
	@bash scripts/setup.sh

images: setup

experiments: setup
	uv run --frozen pytest experiments/

test: setup
	uv run --frozen pytest tests/

unit:
	uv run --frozen pytest tests/unit -q

lint:
	uv run --frozen ruff check .

# The defect detection matrix (5 repetitions of every defect x experiment pair, and the correct pipeline).
matrix: setup
	uv run --frozen pytest experiments/test_detection_matrix.py --chaos-tier=matrix --chaos-repeat=5

# The nightly tier: longer phases and load, nightly-only experiments included.
nightly: setup
	uv run --frozen pytest experiments/ --chaos-tier=nightly

# A reduced detection check for every push: four defects, each against the experiment that catches it.
detect: setup
	uv run --frozen pytest experiments/test_detection_matrix.py --chaos-tier=matrix \
	  -k "commit_before_write-postgres_outage or no_dedup-projector_kafka_down or acks1-leader_isolated or no_idempotence-ingest_kafka_lost_acks"
