"""`make run`: start the whole platform on one machine.

    python -m devstack run       # embedded servers (or the ones given), migrations, services, gateway
    python -m devstack infra     # only PostgreSQL + NATS, until Ctrl-C
    python -m devstack migrate   # create the databases and upgrade every service

Every address and port is a setting (environment variables, see DevstackSettings). With
EMBEDDED=false nothing is started: PG_URL and NATS_URL name existing servers."""

from __future__ import annotations

import signal
import sys
import threading
import time
import urllib.request

from devstack.platform import (
    ROOT,
    DevstackSettings,
    Infra,
    process_env,
    process_urls,
    say,
    uvicorn_command,
)
from devstack.servers import port_is_free
from shared.migrations import SERVICES


def announce_when_ready(settings: DevstackSettings, stop: threading.Event) -> None:
    urls = process_urls(settings)
    deadline = time.monotonic() + 120
    pending = dict(urls)
    while pending and not stop.is_set() and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            try:
                probe = "healthz" if name == "gateway" else "readyz"  # services: DB and NATS reachable
                with urllib.request.urlopen(f"{url}/{probe}", timeout=1) as r:
                    if r.status == 200:
                        del pending[name]
            except OSError:
                pass
        time.sleep(0.3)
    if pending:
        say(f"not answering yet: {', '.join(pending)}")
        return
    lines = [f"  {name:<13} {url}" for name, url in urls.items() if name != "gateway"]
    say(f"platform ready\n  GraphQL API   http://{settings.host}:{settings.gateway_port}/graphql\n" + "\n".join(lines))


def run(settings: DevstackSettings) -> int:
    from honcho.manager import Manager

    for name, url in process_urls(settings).items():
        port = int(url.rsplit(":", 1)[1])
        if not port_is_free(port, settings.host):
            say(f"port {port} ({name}) is already in use: stop what holds it or set its *_PORT setting")
            return 1
    infra = Infra(settings)
    # A SIGTERM before honcho takes over must still stop the servers started so far.
    signal.signal(signal.SIGTERM, _interrupt)
    stop = threading.Event()
    try:
        infra.start()
        infra.migrate()
        manager = Manager()
        for name in SERVICES:
            for instance in range(settings.replicas):
                port = settings.service_port(name, instance)
                manager.add_process(
                    name if settings.replicas == 1 else f"{name}.{instance + 1}",
                    uvicorn_command(f"services.{name}.main:create_app", settings.host, port, settings.workers),
                    env={**_inherited_env(), **process_env(settings, name, instance)},
                    cwd=str(ROOT),
                )
        manager.add_process(
            "gateway",
            uvicorn_command("gateway.main:create_app", settings.host, settings.gateway_port, settings.workers),
            env={**_inherited_env(), **process_env(settings, None)},
            cwd=str(ROOT),
        )
        threading.Thread(target=announce_when_ready, args=(settings, stop), daemon=True).start()
        manager.loop()
        return int(manager.returncode or 0)
    except KeyboardInterrupt:
        return 130
    finally:
        stop.set()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        infra.stop()
        say("stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _inherited_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def infra_only(settings: DevstackSettings) -> int:
    infra = Infra(settings)
    try:
        infra.start()
        infra.migrate()
        say("infrastructure running; Ctrl-C stops it")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    finally:
        infra.stop()


def main(argv: list[str]) -> int:
    settings = DevstackSettings()
    command = argv[0] if argv else "run"
    if command == "run":
        return run(settings)
    if command == "infra":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return infra_only(settings)
    if command == "migrate":
        infra = Infra(settings)
        try:
            infra.start()
            infra.migrate()
        finally:
            infra.stop()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
