"""Lateral: federated lateral checks for Multi-Agency Safeguarding Hubs.

This package holds what the broker and the adapters share at run time (errors, configuration loading,
gRPC server plumbing), the command line and the demo.
"""

__version__ = "0.1.0"
