"""Run a Markdown file's console blocks in order and compare what they print.

The format (docs/development.md#the-readme-runs):

* A ```` ```console ```` block holds commands, each on a line starting `$ `; lines
  starting `> ` right after it continue it (the shell's PS2 prompt, left out), as
  does any line after one that ends in a backslash. The lines up to the next `$ ` are what the
  command prints (stdout and stderr together).
* In the expected output, `...` alone on a line stands for any number of lines, and
  `...` within a line for any text. UUIDs stand for any UUID, the same one wherever
  the README repeats one; request ids, ISO 8601 and HTTP dates for any such. Blank
  lines at the end of an output are not compared (a code block cannot show them).
* `<!-- readme-test: skip -->` on the line before a block: the block is not run.
* `<!-- readme-test: service -->` before a block: the block starts the service in
  the foreground of another terminal. The running service is stopped (SIGTERM) and
  the block's command started in the background, its output in a log; then the test
  waits for `GET /healthcheck`. In a command joined by `&&`, only the last part runs:
  the test's virtualenv stands for the set-up before it.
* Every other block (```` ```sh ````, ```` ```toml ````...) is text to read, not run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

MARKER = re.compile(r"<!--\s*readme-test:\s*(\w+)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
HEADING = re.compile(r"^#+\s+(.*)$")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_DATE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"
_HTTP_DATE = r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"
_TOKENS = re.compile(
    rf"(?P<request_id>req-{UUID})|(?P<uuid>{UUID})|(?P<date>{_DATE})"
    rf"|(?P<http_date>{_HTTP_DATE})|(?P<ellipsis>\.\.\.)"
)


@dataclasses.dataclass(frozen=True)
class Command:
    line: int  # of the README, 1-based: where the `$ ` is
    text: str  # what the shell runs
    expected: tuple[str, ...]  # what the README shows it printing
    expected_line: int  # the README line of expected[0]


@dataclasses.dataclass(frozen=True)
class Block:
    line: int  # the README line of the opening fence
    section: str  # the heading above it
    kind: str  # "console" (run and compared) or "service"
    commands: tuple[Command, ...]


def blocks(markdown: str) -> list[Block]:
    """The blocks of `markdown` the test runs, in order."""
    found: list[Block] = []
    lines = markdown.splitlines()
    section, marker, index = "", "", 0
    while index < len(lines):
        line = lines[index]
        heading, fence, comment = HEADING.match(line), FENCE.match(line), MARKER.search(line)
        if heading:
            section = heading.group(1)
        if comment:
            marker = comment.group(1)
            index += 1
            continue
        if fence and fence.group(1):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            body = lines[index + 1 : end]
            kind = _kind(marker, fence.group(1), index + 1)
            if kind:
                parsed = _commands(body, index + 2, whole=fence.group(1) != "console")
                found.append(Block(index + 1, section, kind, tuple(parsed)))
            index = end
        if line.strip():
            marker = ""
        index += 1
    return found


def _kind(marker: str, language: str, line: int) -> str:
    if marker == "skip":
        return ""
    if marker == "service":
        return "service"
    if marker:
        raise ValueError(f"README.md line {line - 1}: unknown readme-test marker {marker!r}")
    return "console" if language == "console" else ""


def _commands(body: list[str], first_line: int, *, whole: bool) -> list[Command]:
    if whole:  # a ```sh block marked as a service: the block is one command
        return [Command(first_line, "\n".join(body), (), first_line)]
    commands: list[Command] = []
    index = 0
    while index < len(body):
        if not body[index].startswith("$ "):
            raise ValueError(f"README.md line {first_line + index}: output before any `$ ` command")
        start, text = index, [body[index][2:]]
        index += 1
        while index < len(body) and (
            body[index].startswith("> ") or body[index] == ">" or text[-1].endswith("\\")
        ):
            line = body[index]
            text.append(line[2:] if line.startswith(">") else line)
            index += 1
        output_start = index
        while index < len(body) and not body[index].startswith("$ "):
            index += 1
        commands.append(
            Command(
                first_line + start,
                "\n".join(text),
                tuple(body[output_start:index]),
                first_line + output_start,
            )
        )
    return commands


class Mismatch(Exception):
    """Where the output first differs: an index into the expected lines (or None:
    the output has lines the README does not show), and the actual line."""

    def __init__(self, expected_index: int | None, actual: str | None) -> None:
        super().__init__(expected_index, actual)
        self.expected_index = expected_index
        self.actual = actual


class Matcher:
    """Compares outputs with the README's, keeping which README UUID stands for which
    real one across the whole run."""

    def __init__(self) -> None:
        self.uuids: dict[str, str] = {}  # README's -> the run's

    def check(self, expected: tuple[str, ...], actual: list[str]) -> None:
        """Raise Mismatch unless `actual` matches `expected`."""
        best: list[tuple[int, int]] = [(-1, -1)]
        bound = self._match(list(expected), actual, 0, 0, dict(self.uuids), best)
        if bound is None:
            index, actual_index = best[0]
            line = actual[actual_index] if 0 <= actual_index < len(actual) else None
            raise Mismatch(index if index < len(expected) else None, line)
        self.uuids = bound

    def _match(
        self,
        expected: list[str],
        actual: list[str],
        i: int,
        j: int,
        uuids: dict[str, str],
        best: list[tuple[int, int]],
    ) -> dict[str, str] | None:
        if (i, j) > best[0]:
            best[0] = (i, j)
        if i == len(expected):
            return uuids if j == len(actual) else None
        if expected[i].strip() == "...":
            for skip in range(j, len(actual) + 1):
                found = self._match(expected, actual, i + 1, skip, dict(uuids), best)
                if found is not None:
                    return found
            return None
        if j == len(actual):
            return None
        bound = self._line(expected[i], actual[j], uuids)
        if bound is None:
            return None
        return self._match(expected, actual, i + 1, j + 1, bound, best)

    def _line(self, expected: str, actual: str, uuids: dict[str, str]) -> dict[str, str] | None:
        pattern, names = _line_pattern(expected.rstrip())
        found = re.fullmatch(pattern, actual.rstrip())
        if found is None:
            return None
        bound = dict(uuids)
        for group, readme_uuid in names.items():
            real = found.group(group)
            if bound.get(readme_uuid, real) != real:
                return None
            if readme_uuid not in bound and real in bound.values():
                return None  # two README ids for one real one
            bound[readme_uuid] = real
        return bound


def _line_pattern(expected: str) -> tuple[str, dict[str, str]]:
    parts: list[str] = []
    names: dict[str, str] = {}  # regex group -> the README's UUID
    position = 0
    for token in _TOKENS.finditer(expected):
        parts.append(re.escape(expected[position : token.start()]))
        position = token.end()
        if token.group("uuid"):
            group = f"u{len(names)}"
            names[group] = token.group("uuid")
            parts.append(f"(?P<{group}>{UUID})")
        elif token.group("request_id"):
            parts.append(f"req-{UUID}")
        elif token.group("date"):
            parts.append(_DATE)
        elif token.group("http_date"):
            parts.append(_HTTP_DATE)
        else:
            parts.append(".*?")
    parts.append(re.escape(expected[position:]))
    return "".join(parts), names


class Shell:
    """One bash, as a user's terminal: state (directory, variables, jobs) carries
    from command to command. Commands get a terminal on stdin (as when pasted, so
    clients do not read it as data) and write to a file. With `unshare`, the shell
    and everything it starts have a network namespace of their own, so the README's
    fixed ports (9292, 8000) never meet another test's."""

    def __init__(self, workdir: Path, environ: dict[str, str]) -> None:
        self.workdir = workdir
        self.outputs = workdir.parent / "outputs"
        self.outputs.mkdir()
        self._count = 0
        self._master, slave = os.openpty()
        done_read, done_write = os.pipe()
        self._done = done_read
        argv = ["bash", "--noprofile", "--norc"]
        self.isolated = _can_isolate()
        if self.isolated:
            argv = ["unshare", "--net", "--", *argv]
        with open(self.outputs / "shell.log", "wb") as log:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=environ,
                pass_fds=(slave, done_write),
                start_new_session=True,
            )
        os.close(slave)
        os.close(done_write)
        # The terminal and the pipe that says "done" keep their numbers in the shell.
        self._terminal, self._end = slave, done_write
        if self.isolated:
            self._send("ip link set lo up")
        self._send(f"echo 0 >&{self._end}")
        self._wait(30)

    def run(self, text: str, timeout: float) -> str:
        """Run `text` as pasted; what it printed."""
        self._count += 1
        out = self.outputs / f"command-{self._count}.out"
        self._send(f"{{\n{text}\n}} > {out} 2>&1 <&{self._terminal}; echo $? >&{self._end}")
        self._wait(timeout)
        return out.read_text(errors="replace")

    def start_service(self, text: str, timeout: float) -> Path:
        """Stop the service started before, if any; start `text` in the background,
        as in a terminal of its own; wait until it answers `GET /healthcheck`."""
        self._count += 1
        log = self.outputs / f"service-{self._count}.log"
        self._send(
            'if [ -n "${__readme_service:-}" ]; then kill -TERM $__readme_service; '
            "wait $__readme_service; fi\n"
            f"{{\n{text} &\n}} > {log} 2>&1 <&{self._terminal}; __readme_service=$!\n"
            "for __readme_try in $(seq 300); do\n"
            "  curl -s -o /dev/null http://127.0.0.1:9292/healthcheck && break\n"
            "  kill -0 $__readme_service 2>/dev/null || break; sleep 0.1\n"
            "done\n"
            f"curl -s -o /dev/null http://127.0.0.1:9292/healthcheck; echo $? >&{self._end}"
        )
        status = self._wait(timeout)
        if status != "0":
            raise ServiceDown(log)
        return log

    def close(self) -> None:
        """End the shell and everything it started (its own process group)."""
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)  # what outlived the shell
        for fd in (self._master, self._done):
            os.close(fd)

    def _send(self, script: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(script.encode() + b"\n")
        self._process.stdin.flush()

    def _wait(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        received = b""
        while not received.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._done], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"no end in {timeout:.0f} s")
            chunk = os.read(self._done, 64)
            if not chunk:
                raise RuntimeError(f"the shell exited: {self.log_tail()}")
            received += chunk
        return received.decode().strip()

    def log_tail(self) -> str:
        return _tail(self.outputs / "shell.log")


class ServiceDown(Exception):
    def __init__(self, log: Path) -> None:
        super().__init__(f"the service did not answer GET /healthcheck; its log:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _can_isolate() -> bool:
    """A network namespace of our own, with a loopback that works (root, usually)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    result = subprocess.run(
        ["unshare", "--net", "--", "ip", "link", "set", "lo", "up"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def system_path() -> str:
    """The PATH of a fresh login: no virtualenv on it."""
    return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
