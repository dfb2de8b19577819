"""Skylens: an image service that speaks the OpenStack Image API v2."""

__version__ = "0.1.0"
