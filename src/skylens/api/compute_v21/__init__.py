"""The Compute API v2.1 image proxy, served from the catalogue."""
