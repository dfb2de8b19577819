"""`skylens images stuck`: uploads, stagings, imports and tasks not moving."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

from skylens.config import ConfigError, Settings

# Upload leases are renewed every minute and task leases every third of
# tasks.lease_seconds: ten minutes of silence is no hiccup.
DEFAULT_OLDER_THAN = 600


def add_images_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    images = commands.add_parser("images", help="image administration")
    actions = images.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    stuck = actions.add_parser(
        "stuck",
        help="list uploads, imports and tasks that are not moving",
        description=(
            "List uploads and stagings whose process stopped renewing their lease, "
            "images left importing by a task that ended or vanished, and tasks past "
            "their lease or without progress. Exit 0 when there are none, 1 otherwise."
        ),
    )
    common(stuck)
    stuck.add_argument(
        "--older-than",
        type=int,
        default=DEFAULT_OLDER_THAN,
        metavar="SECONDS",
        help=f"silent for longer than this counts as stuck (default {DEFAULT_OLDER_THAN})",
    )
    stuck.add_argument("--json", action="store_true", help="one JSON document on stdout")
    stuck.set_defaults(handler=stuck_command, positionals=("older_than", "json"))


def stuck_command(settings: Settings, older_than: int, as_json: bool) -> int:
    from skylens.db.engine import check_schema, create_engine, setup_errors
    from skylens.db.stuck import stuck_work
    from skylens.domain.images import utc_now

    if older_than < 0:
        raise ConfigError(f"--older-than must be at least 0, not {older_than}")
    engine = create_engine(settings.database_url, pool_size=1)
    check_schema(engine)
    with setup_errors(settings.database_url):
        found = stuck_work(engine, utc_now(), older_than)
    if as_json:
        document = {"older_than": older_than, "stuck": [dataclasses.asdict(w) for w in found]}
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not found:
        print(f"nothing stuck (silent for more than {older_than} s)")
    else:
        print(f"{'KIND':<7} {'ID':<36} {'OWNER':<32} {'STATUS':<10} {'AGE':>8}  HOLDER  REASON")
        for work in found:
            image = f" (image {work.image_id})" if work.image_id != work.id else ""
            print(
                f"{work.kind:<7} {work.id:<36} {work.owner or '-':<32} {work.status:<10} "
                f"{_duration(work.age_seconds):>8}  {work.holder or '-'}  {work.reason}{image}"
            )
    return 1 if found else 0


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
