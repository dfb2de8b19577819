"""The upload clients people use, each driven as its users drive it, in a process of its own.

- `curl`: `curl -T file` (its defaults: `Expect: 100-continue`, Content-Length, 64 KiB
  reads of the file);
- `requests`: `requests.put(url, data=file)`, as openstacksdk and keystoneauth upload:
  http.client sends the file in 8 KiB `sendall`s behind a Content-Length;
- `glanceclient`: python-glanceclient's `images.upload`: a generator of 1 MiB chunks,
  which requests sends with `Transfer-Encoding: chunked`;
- `sendfile`: the raw-socket client of `bench/transfer.py` (sendfile(2) behind a
  Content-Length), which costs the machine next to nothing: the best case.

`upload(client, ...)` runs one upload and returns its `Transfer`, timed by the client's
process from just before the request to the answer (the interpreter's start-up and
imports are not counted). `python -m bench.clients CLIENT BASE_URL IMAGE_ID FILE [STORE]`
is the child side for the Python clients: it prints `status seconds`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import transfer
from bench.transfer import Transfer

CLIENTS = ("sendfile", "curl", "requests", "glanceclient")
TIMEOUT = 3600.0


def upload(client: str, base_url: str, image_id: str, source: Path, store: str) -> Transfer:
    size = source.stat().st_size
    if client == "sendfile":
        parts = urlsplit(base_url)
        with open(source, "rb") as file:
            return transfer.upload(
                parts.hostname or "127.0.0.1",
                parts.port or 80,
                f"/v2/images/{image_id}/file",
                file,
                {"X-Image-Meta-Store": store},
            )
    if client == "curl":
        command = [
            shutil.which("curl") or "curl",
            "--silent",
            "--show-error",
            "--upload-file",
            str(source),
            "--header",
            "Content-Type: application/octet-stream",
            "--header",
            f"X-Image-Meta-Store: {store}",
            "--output",
            os.devnull,
            "--write-out",
            "%{http_code} %{time_total}",
            f"{base_url}/v2/images/{image_id}/file",
        ]
    elif client in CLIENTS:
        command = [sys.executable, "-m", "bench.clients", client, base_url, image_id]
        command += [str(source), store]
    else:
        raise ValueError(f"unknown client {client}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{client} upload failed: {done.stderr.strip()[-500:]}")
    status, seconds = done.stdout.split()
    return Transfer(int(status), size, float(seconds))


def _child(client: str, base_url: str, image_id: str, source: str, store: str) -> str:
    headers = {"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store}
    if client == "requests":
        import requests

        with open(source, "rb") as file, requests.Session() as session:
            started = time.perf_counter()
            response = session.put(
                f"{base_url}/v2/images/{image_id}/file", data=file, headers=headers
            )
            seconds = time.perf_counter() - started
        return f"{response.status_code} {seconds}"
    if client == "glanceclient":
        from glanceclient import Client

        glance = Client("2", endpoint=base_url, token="bench")  # noqa: S106 - not checked
        with open(source, "rb") as file:
            started = time.perf_counter()
            glance.images.upload(image_id, file, backend=store)  # raises unless 2xx
            seconds = time.perf_counter() - started
        return f"204 {seconds}"
    raise ValueError(f"unknown client {client}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) == 4:
        arguments.append("local")
    print(_child(*arguments))
