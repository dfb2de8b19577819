"""The abuse suite: every item of issue 18 against a real `skylens serve`.

    .venv/bin/python -m bench.abuse                       # every scenario, full size
    .venv/bin/python -m bench.abuse --only 3,18 --backend sqlite
    .venv/bin/python -m bench.abuse --reduced             # the test suite's sizes

Per scenario and backend, one fresh worker (`--workers 1`, so its pid is the
worker's) and a line: the answers the abuse got (and should have got), the
slowest /healthcheck and `GET /v2/images` answered while it ran, each on a fresh
connection from a process of its own (bench/abuse_probe.py), and the worker's RSS
idle, at its peak and after the abuse, beside issue 18's bounds: 100 ms and
64 MiB. Exits 1 if any answer or bound is off.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.servers import dedicated_server

from bench.abuse_kit import Outcome, PeakSampler, Prober, Scale, Target, rss_mib, timed_get
from bench.abuse_scenarios import SCENARIOS, Scenario

LATENCY_BOUND_MS = 100.0
RSS_BOUND_MIB = 64.0
PROBES = 5  # of each path, one after another


@dataclasses.dataclass(frozen=True)
class Result:
    scenario: Scenario
    backend: str
    outcome: Outcome
    probe_answers: tuple[str, ...]
    health_ms: float  # the slowest while the abuse ran
    list_ms: float
    idle_mib: float
    peak_mib: float
    after_mib: float

    @property
    def probes_answered(self) -> bool:
        return bool(self.probe_answers) and set(self.probe_answers) <= self.scenario.probe_answers

    @property
    def within_latency(self) -> bool:
        return max(self.health_ms, self.list_ms) <= LATENCY_BOUND_MS

    @property
    def within_memory(self) -> bool:
        return self.after_mib - self.idle_mib <= RSS_BOUND_MIB

    @property
    def ok(self) -> bool:
        return (
            self.outcome.ok and self.probes_answered and self.within_latency and self.within_memory
        )


def run(
    scenario: Scenario, backend: str, scale: Scale, data_dir: Path, keystone: Any = None
) -> Result:
    """One scenario on a fresh server of its own."""
    with contextlib.ExitStack() as stack:
        setup = stack.enter_context(scenario.setup(data_dir, keystone))
        server = stack.enter_context(
            dedicated_server(
                data_dir / "server",
                backend,
                extra_env={"SKYLENS_SERVER_LOG_LEVEL": "warning", **setup.env},
                extra_args=("--workers", "1", *setup.args),
            )
        )
        target = Target(server, scale, setup.extra)
        for _ in range(3):  # warm both paths, as an idle worker that has served
            timed_get(server.port, "/healthcheck", {})
            timed_get(server.port, "/v2/images", target.probe_headers)
        idle = rss_mib(server.pid)
        answers: list[str] = []
        health: list[float] = []
        listed: list[float] = []
        prober = stack.enter_context(Prober())

        def probe() -> None:
            timed = prober.probe(server.port, target.probe_headers, PROBES)
            answers.extend(got for got, _ms in timed)
            health.extend(ms for _got, ms in timed[0::2])
            listed.extend(ms for _got, ms in timed[1::2])

        with PeakSampler(server.pid) as sampler:
            outcome = scenario.run(target, probe)
            time.sleep(0.5)  # what the abuse left behind settles
            after = rss_mib(server.pid)
        return Result(
            scenario=scenario,
            backend=backend,
            outcome=outcome,
            probe_answers=tuple(answers),
            health_ms=max(health, default=float("inf")),
            list_ms=max(listed, default=float("inf")),
            idle_mib=idle,
            peak_mib=max(sampler.peak, after),
            after_mib=after,
        )


def report(result: Result) -> str:
    mark = "ok  " if result.ok else "FAIL"
    scenario = result.scenario
    lines = [
        f"{mark} item {scenario.item:>2} {scenario.name} [{result.backend}]"
        + ("  (fix in the server layer)" if scenario.server_layer else ""),
        f"       answer: {', '.join(result.outcome.got)}"
        + ("" if result.outcome.ok else f"   (want: {', '.join(result.outcome.want)})"),
        f"       healthcheck {result.health_ms:7.1f} ms, list {result.list_ms:7.1f} ms"
        f" (bound {LATENCY_BOUND_MS:.0f} ms)"
        + ("" if result.probes_answered else f"; probes got {sorted(set(result.probe_answers))}"),
        f"       RSS idle {result.idle_mib:.0f} MiB, peak {result.peak_mib:.0f}, after"
        f" {result.after_mib:.0f} (+{result.after_mib - result.idle_mib:.1f}, bound"
        f" +{RSS_BOUND_MIB:.0f} MiB)",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _keystone_if_needed(chosen: list[Scenario]) -> Iterator[Any]:
    if not any(scenario.needs_keystone for scenario in chosen):
        yield None
        return
    from tests.support.keystone import keystone_server

    with (
        tempfile.TemporaryDirectory(prefix="skylens-abuse-keystone-") as scratch,
        keystone_server(Path(scratch)) as keystone,
    ):
        yield keystone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--only", default="", help="issue items or scenario names, comma-separated")
    parser.add_argument("--reduced", action="store_true", help="the test suite's smaller sizes")
    options = parser.parse_args(argv)
    wanted = {name.strip() for name in options.only.split(",") if name.strip()}
    chosen = [s for s in SCENARIOS if not wanted or s.item in wanted or s.name in wanted]
    scale = Scale(full=not options.reduced)
    failed = 0
    with _keystone_if_needed(chosen) as keystone:
        for scenario in chosen:
            for backend in scenario.backends:
                if options.backend not in ("both", backend):
                    continue
                with tempfile.TemporaryDirectory(prefix="skylens-abuse-") as scratch:
                    try:
                        result = run(scenario, backend, scale, Path(scratch), keystone)
                    except Exception as error:
                        print(
                            f"FAIL item {scenario.item:>2} {scenario.name} [{backend}]: {error!r}"
                        )
                        failed += 1
                        continue
                print(report(result), flush=True)
                failed += not result.ok
    print(
        f"\n{failed} scenario run(s) outside their answer or bounds" if failed else "\nall within"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
