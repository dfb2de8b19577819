"""Authenticators: turn request headers into a `RequestContext`."""
