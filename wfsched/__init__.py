"""wfsched: a branch-aware, multi-tenant workflow scheduler for whole-slide-image inference on Ray."""

__version__ = "0.1.0"
