"""Shared test support: real servers, databases and identities."""
