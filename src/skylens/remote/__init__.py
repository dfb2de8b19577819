"""Adapters that fetch image data from outside the service (web sources)."""
