"""The refinement methods, one module each (see :mod:`robolearn.refine.methods.base` for what a method
supplies). A new method is one module plus one line in :data:`METHODS`; the refinement loop, ``robolearn
refine``, the pipeline, the bench and :func:`robolearn.policy_factory.load_policy` all read this dict."""

from __future__ import annotations

from robolearn.refine.methods.base import MethodParams, NoParams, OfflineData, RefineMethod
from robolearn.refine.methods.dsrl import DSRLMethod, NoiseParams
from robolearn.refine.methods.dsrl_na import DSRLNAMethod
from robolearn.refine.methods.residual import ResidualMethod, ResidualParams
from robolearn.refine.methods.rlpd import RLPDMethod
from robolearn.refine.methods.vgps import VGPSMethod, VGPSParams

METHODS: dict[str, RefineMethod] = {
    "residual": ResidualMethod(),
    "dsrl": DSRLMethod(),
    "dsrl-na": DSRLNAMethod(),
    "rlpd": RLPDMethod(),
    "vgps": VGPSMethod(),
}
"""Method name -> plug-in."""


def get_method(name: str, methods: dict[str, RefineMethod] | None = None) -> RefineMethod:
    """``METHODS[name]`` (or ``methods[name]``); the error lists the names."""
    table = METHODS if methods is None else methods
    if name not in table:
        raise ValueError(f"unknown refinement method '{name}'; choose from {', '.join(table)}")
    return table[name]


__all__ = ["METHODS", "DSRLMethod", "DSRLNAMethod", "MethodParams", "NoParams", "NoiseParams", "OfflineData",
           "RefineMethod", "ResidualMethod", "ResidualParams", "RLPDMethod", "VGPSMethod", "VGPSParams", "get_method"]
