"""A throwaway production stack per test module: its own PostgreSQL database, RabbitMQ virtual host and
FLOWSENSE_HOME, two Celery worker processes and a ``dagster-daemon`` (``flowsense_dagster.stack.ephemeral``)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator

import pytest

from flowsense_dagster.stack import Ephemeral, ephemeral

SYMBOLS = ("PA", "PB", "PC")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def prod_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ephemeral]:
    if not (_port_open(5432) and _port_open(5672) and _port_open(6379)):
        pytest.skip("needs PostgreSQL, RabbitMQ and Redis on 127.0.0.1")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl not found (needed for a throwaway virtual host)")
    home = tmp_path_factory.mktemp("prod")
    from flowsense.sim import simulate

    # three small simulated symbol-days (about 7k events each), dropped into the inbox
    simulate(list(SYMBOLS), 1, home / "inbox", seed=11, scale=0.05)
    with ephemeral(home, workers=2, daemon=True) as stack:
        yield stack
