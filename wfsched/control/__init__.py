"""Scheduler, branches and progress: plain state classes and the thin Ray actors that hold them."""
