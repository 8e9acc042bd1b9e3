"""Model registry: models with lineage, ``champion``/``challenger`` aliases, a promotion gate.

:mod:`gate` is the pure decision (metrics in, decision with reason out); :mod:`registry` keeps
models, records and aliases in an artifact store (local directory or S3).
"""
