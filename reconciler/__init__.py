"""reconciler: keeps io.net IO Intelligence secrets in sync with a desired-state YAML file."""

__version__ = "0.1.0"
