"""``selfsup distill``: self-supervised dataset distillation by kernel ridge regression (KRR-ST).

:mod:`krr` is the outer loss, :mod:`pool` the pool of small ConvNets whose features define the
kernel, :mod:`stage` the stage (teacher → learnt images and targets → a distilled directory that
``selfsup pretrain --method distilled`` reads).
"""
