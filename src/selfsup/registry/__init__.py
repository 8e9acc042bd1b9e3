"""Model registry: models with lineage, ``champion``/``challenger`` aliases, a promotion gate.

:mod:`gate` is the pure decision (metrics in, decision with reason out); :mod:`registry` keeps
models, records and an append-only decision log (the aliases derive from it) in an artifact
store (local directory or S3); :mod:`log` creates each log entry once, so concurrent writers
lose nothing.
"""
