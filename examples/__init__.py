"""Example pipelines shipped beside the reference one, each with its adapter."""
