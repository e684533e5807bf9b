"""The reference pipeline (``refpipe/``, ``proto/``, ``image/``) and its adapter (``adapter.py``)."""
