"""The experiment catalogue. Each module reads as a specification: load, fault, heal, invariants."""
