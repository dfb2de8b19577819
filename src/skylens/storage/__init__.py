"""Blob stores: the `BlobStore` protocol's backends, one wrapper and a registry."""
