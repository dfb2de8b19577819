"""Disk-image format inspection (detection, virtual size, safety) while streaming."""
