"""The pure core: images, their status machine, access rules and errors.

Nothing here knows about HTTP, SQL, object stores or configuration files.
"""
