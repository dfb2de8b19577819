"""Set up and serve a real OpenStack Keystone, for the tests.

`tests/support/keystone.py` starts this file with the Python of the Keystone virtualenv
(`.keystone-venv/`, made by `scripts/install-keystone`); the test suite never imports it,
since it imports Keystone and gunicorn, which the project's virtualenv does not have:

    .keystone-venv/bin/python -I tests/support/keystone_runner.py CONFIG FD URL PASSWORD

CONFIG is the `keystone.conf` that `keystone.py` wrote, FD a listening loopback socket
the runner inherits, URL the address that socket answers on and PASSWORD the one to give
the bootstrap user `admin`. The runner

1. imports Keystone once (about 3 s, most of it pysaml2 reading XML schemas);
2. runs `keystone-manage db_sync`, `fernet_setup` and `credential_setup` side by side,
   then `keystone-manage bootstrap`, each in a child forked from this process with the
   import done, through keystone-manage's own entry point (`keystone.cmd.cli.main`), so
   each costs its own work and not another import;
3. serves Keystone's WSGI application (`keystone.server.wsgi`, what the
   `keystone.wsgi.api` module builds) with gunicorn on the inherited socket: one worker
   process with threads, forked from this process, which stays gunicorn's master;
4. stops on SIGINT (gunicorn's quick shutdown) or SIGTERM (its graceful one), or when
   its standard input closes because the test process that started it died.

Everything is logged to standard error and standard output, which `keystone.py` sends to
the one `keystone.log`.
"""

import grp
import os
import pwd
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

# Run as a script, this file's folder heads sys.path, and that folder holds keystone.py,
# which would shadow the keystone package. (`-I` already leaves it out; this is for
# `python keystone_runner.py` by hand.)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

REGION = "RegionOne"
THREADS = 8  # requests in flight: clients, and Skylens validating their tokens meanwhile


def main(config: str, fd: int, url: str, password: str) -> None:
    # Keystone's own code: eventlet (imported by oslo.service) says it is deprecated, and
    # pycadf that region names are not uuids. Neither is ours to act on.
    warnings.simplefilter("ignore")
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = config  # what the WSGI application reads

    from keystone.cmd import cli
    from keystone.server import wsgi

    owner = ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name]
    owner += ["--keystone-group", grp.getgrgid(os.getgid()).gr_name]
    manage = ["keystone-manage", "--config-file", config]
    # The key repositories need no database, so they are made while the schema is.
    keys = [[*manage, command, *owner] for command in ("fernet_setup", "credential_setup")]
    _run(cli, [[*manage, "db_sync"], *keys])
    bootstrap = [
        "bootstrap",
        "--bootstrap-password",
        password,
        "--bootstrap-region-id",
        REGION,
        *(f"--bootstrap-{kind}-url={url}" for kind in ("public", "internal", "admin")),
    ]
    _run(cli, [[*manage, *bootstrap]])

    # oslo.config, which the application sets up, would read this runner's arguments as
    # its own; gunicorn reads none of them here.
    sys.argv[1:] = []
    threading.Thread(target=_stop_when_stdin_closes, daemon=True).start()
    _gunicorn(fd, wsgi.initialize_public_application).run()


def _run(cli: ModuleType, commands: list[list[str]]) -> None:
    """Run keystone-manage commands side by side, each in a forked child; stop on a failure."""
    children = {}
    for argv in commands:
        pid = os.fork()
        if pid == 0:
            os._exit(_manage(cli, argv))
        children[pid] = argv
    failed = []
    for pid, argv in children.items():
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code != 0:
            failed.append(f"{argv[3]} exited with {code}")  # keystone-manage --config-file X
    if failed:
        raise SystemExit("keystone-runner: keystone-manage " + "; ".join(failed))


def _manage(cli: ModuleType, argv: list[str]) -> int:
    """In a forked child: keystone-manage with these arguments; its exit status."""
    sys.argv = argv
    try:
        cli.main(argv=argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _stop_when_stdin_closes() -> None:
    """Standard input is a pipe from the test process: EOF means that process is gone."""
    while os.read(sys.stdin.fileno(), 4096):
        pass
    print("keystone-runner: standard input closed, stopping", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGINT)  # gunicorn: quick shutdown of master and worker


def _gunicorn(fd: int, load: Callable[[], Any]) -> Any:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": [f"fd://{fd}"],
                # One process: Keystone's in-memory cache (see keystone.py's
                # keystone.conf) is one cache only within one process.
                "workers": 1,
                "worker_class": "gthread",
                "threads": THREADS,
                # Built in this process, so a broken configuration stops the runner,
                # and the worker starts ready.
                "preload_app": True,
                "graceful_timeout": 2,  # the tests wait for nothing on the way out
                # Not gunicorn's default $HOME/.gunicorn/gunicorn.ctl: one per machine,
                # while every xdist worker runs a Keystone.
                "control_socket_disable": True,
                "accesslog": "-",
                "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
                "errorlog": "-",
                "loglevel": "info",
                "proc_name": "keystone-test",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return load()

    return Server()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(f"usage: {sys.argv[0]} CONFIG FD URL PASSWORD")
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
