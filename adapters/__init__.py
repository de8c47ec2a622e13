"""Agency adapters: the shared framework in adapters.core, and one small preset package per agency."""
