"""Schemathesis over /openapi.json finds no 5xx (issue 18's acceptance).

Every operation the document describes gets a bounded number of generated
requests, valid and invalid (schemathesis's coverage, fuzzing and stateful
phases, a fixed seed), as a member of a fresh project, against a real server on
each backend. The one check is that no answer is a server error.

Methods the service does not implement at all (TRACE, OPTIONS, QUERY) answer
501, as Glance's do (tests/api/test_protocol.py); they are left out of the
coverage phase's "unexpected method" requests, which would count that 501 as a
server error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKENDS
from tests.support.identities import member_of, new_project
from tests.support.servers import dedicated_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = 18
EXAMPLES_PER_OPERATION = 8
CONFIG = """\
[phases.coverage]
# Methods the service implements, on paths that do not declare them: 405.
unexpected-methods = ["get", "put", "post", "delete", "patch"]
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_requests_get_no_server_error(tmp_path: Path, backend: str) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    identity = member_of(new_project())
    with dedicated_server(tmp_path / "server", backend) as server:
        command = [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--warnings",
            "off",
            *(
                arg
                for name, value in identity.headers.items()
                for arg in ("-H", f"{name}: {value}")
            ),
        ]
        run = subprocess.run(
            command,
            cwd=tmp_path,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
                "PYTHONPATH": str(REPO_ROOT),
            },
            capture_output=True,
            text=True,
            timeout=600,
        )
        logged = server.log.read_text()

    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in logged, logged
