# The two commands of the README: `make experiments` and `make test`. Both set up what is missing first.
.PHONY: setup images experiments test unit lint

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
