"""HTTP adapters: one sub-package per API surface over the services."""
