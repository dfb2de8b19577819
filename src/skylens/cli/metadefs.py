"""`skylens metadefs load DIR | export DIR | unload`: the metadata definitions
catalogue in Glance's file format (`glance-manage db load_metadefs`'s)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skylens.config import Settings


def add_metadefs_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    metadefs = commands.add_parser("metadefs", help="the metadata definitions catalogue")
    actions = metadefs.add_subparsers(dest="metadefs_command", metavar="ACTION", required=True)
    load = actions.add_parser(
        "load", help="add the namespaces of DIR's *.json files that do not exist yet"
    )
    load.add_argument("directory", metavar="DIR")
    common(load)
    load.set_defaults(handler=load_command, positionals=("directory",))
    export = actions.add_parser("export", help="write every namespace to DIR, one file each")
    export.add_argument("directory", metavar="DIR")
    common(export)
    export.set_defaults(handler=export_command, positionals=("directory",))
    unload = actions.add_parser("unload", help="delete every namespace and resource type")
    common(unload)
    unload.set_defaults(handler=unload_command)


def load_command(settings: Settings, directory: str) -> int:
    from skylens.api.components import metadef_service
    from skylens.api.metadef_files import InvalidCatalogueFile, read_catalogue

    try:
        details = read_catalogue(Path(directory))
    except InvalidCatalogueFile as error:
        print(f"skylens: {error}", file=sys.stderr)
        return 2
    added = metadef_service(settings, first_start=False).load(details)
    print(f"loaded {len(added)} namespace(s); {len(details) - len(added)} already present")
    return 0


def export_command(settings: Settings, directory: str) -> int:
    from skylens.api.components import metadef_service
    from skylens.api.metadef_files import InvalidCatalogueFile, write_catalogue

    try:
        written = write_catalogue(
            metadef_service(settings, first_start=False).export(), Path(directory)
        )
    except (OSError, InvalidCatalogueFile) as error:
        print(f"skylens: {error}", file=sys.stderr)
        return 2
    print(f"exported {len(written)} namespace(s) to {directory}")
    return 0


def unload_command(settings: Settings) -> int:
    from skylens.api.components import metadef_service

    removed = metadef_service(settings, first_start=False).unload()
    print(f"unloaded {removed} namespace(s)")
    return 0
