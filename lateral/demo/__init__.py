"""The one-command demo: a whole federation of synthetic people on this machine."""

from lateral.demo.federation import Federation, Prepared, prepare, start_federation
from lateral.demo.runner import run_demo

__all__ = ["Federation", "Prepared", "prepare", "run_demo", "start_federation"]
