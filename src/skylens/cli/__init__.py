"""The `skylens` command."""
