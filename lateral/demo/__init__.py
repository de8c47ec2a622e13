"""The one-command demo: a whole federation with fictional people on this machine."""

from lateral.demo.federation import Federation, start_federation
from lateral.demo.runner import run_demo

__all__ = ["Federation", "run_demo", "start_federation"]
