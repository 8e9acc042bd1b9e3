"""selfsup: self-supervised visual representation learning as reproducible pipelines."""

__version__ = "0.1.0"
