"""Use cases: what a caller can do with images, independent of any API surface."""
