"""The training methods, by ``pretrain.method``: the loop looks a method up here and nothing
else tests the name. Adding a method is one file (a :class:`~.base.Method`) plus a line here
(and its name in :class:`selfsup.config.PretrainParams`)."""

from __future__ import annotations

from selfsup.train.methods.base import Context, Method, Model, SimclrNet, project
from selfsup.train.methods.byol import Byol
from selfsup.train.methods.distilled import Distilled
from selfsup.train.methods.mined import GrocoMined, SimclrTriplet, Triplet
from selfsup.train.methods.views import Groco, Gsimclr, Simclr, SimclrTopk

METHODS: dict[str, type[Method]] = {
    "simclr": Simclr,
    "simclr-topk": SimclrTopk,
    "groco": Groco,
    "gsimclr": Gsimclr,
    "triplet": Triplet,
    "simclr+triplet": SimclrTriplet,
    "groco+mined": GrocoMined,
    "distilled": Distilled,
    "byol": Byol,
}

__all__ = ["METHODS", "Context", "Method", "Model", "SimclrNet", "project"]
