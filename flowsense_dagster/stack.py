"""The production stack on one machine: ``python -m flowsense_dagster.stack up|down|status|check``.

``make prod-up`` / ``make prod-down`` / ``make prod-check`` call this module. ``up``:

1. checks PostgreSQL, Redis and RabbitMQ on 127.0.0.1 (``scripts/ensure-services.sh`` starts them), creates
   the databases ``flowsense_dagster`` (Dagster runs, events, schedules), ``flowsense_mlflow`` (MLflow
   tracking + registry) and ``flowsense_state`` (the live worker) if they are missing;
2. writes ``$FLOWSENSE_HOME/prod/stack.env`` (profile ``production``, every connection setting) and a
   ``DAGSTER_HOME`` (``$FLOWSENSE_HOME/prod/dagster``) with ``deploy/dagster.production.yaml``;
3. starts ``deploy/Procfile`` under honcho in its own session (Dagster webserver and daemon, two Celery
   workers, the MLflow server, and the API/worker entries where present), all output in one log,
   ``$FLOWSENSE_HOME/prod/logs/stack.log``;
4. waits until every process answers its health check and prints the ports.

``check`` backfills the demo partitions through the Celery executor (``dagster job backfill``: the runs
are queued, the daemon launches them, each step is a Celery task) and prints one JSON object with
``storage``, ``runs``, ``steps``, ``worker_pids`` (distinct Celery worker processes that executed steps,
read from the runs' event logs in PostgreSQL), ``workers`` (their Celery names) and ``failed``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATABASES = ("flowsense_dagster", "flowsense_mlflow", "flowsense_state")
PORTS = {"FLOWSENSE_DAGSTER_PORT": 3000, "FLOWSENSE_MLFLOW_PORT": 5000, "FLOWSENSE_API_PORT": 8000,
         "FLOWSENSE_METRICS_PORT": 9108}


def log(msg: str) -> None:
    print(f"stack: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Stack:
    """Paths and settings of one stack, all under ``home`` (``FLOWSENSE_HOME``)."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "prod"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def env_file(self) -> Path:
        return self.root / "stack.env"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / "stack.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "honcho.pid"

    def env(self) -> dict[str, str]:
        """The production environment (existing variables win, so every value can be overridden)."""
        pg = os.environ.get("FLOWSENSE_PG", "postgresql://postgres@127.0.0.1:5432")
        values = {
            "FLOWSENSE_PROFILE": "production",
            "FLOWSENSE_HOME": str(self.home),
            "DAGSTER_HOME": str(self.dagster_home),
            "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres",
            "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": "flowsense_dagster",
            "FLOWSENSE_CELERY_BROKER": "pyamqp://guest:guest@127.0.0.1:5672//",
            "FLOWSENSE_MLFLOW_BACKEND": f"{pg}/flowsense_mlflow",
            "FLOWSENSE_MLFLOW_ARTIFACTS": (self.home / "mlflow-artifacts").as_uri(),
            "FLOWSENSE_STATE_DSN": f"{pg}/flowsense_state",
            "FLOWSENSE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "FLOWSENSE_STREAM": "flowsense:ticks",
            **{k: str(v) for k, v in PORTS.items()},
        }
        out = {k: os.environ.get(k, v) for k, v in values.items()}
        # clients of the tracking server (training, the worker, the API) go through it, not to the database
        out.setdefault("FLOWSENSE_MLFLOW_URI", os.environ.get(
            "FLOWSENSE_MLFLOW_URI", f"http://127.0.0.1:{out['FLOWSENSE_MLFLOW_PORT']}"))
        out["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        return out


# ---- services and databases ---------------------------------------------------------------------
def port_open(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def ensure_databases(dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres",
                     names: Sequence[str] = DATABASES) -> list[str]:
    """Create the missing databases; returns the names created."""
    import psycopg2

    created = []
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in names:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{name}"')
                created.append(name)
    conn.close()
    return created


def write_config(stack: Stack) -> dict[str, str]:
    env = stack.env()
    stack.dagster_home.mkdir(parents=True, exist_ok=True)
    stack.log_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "deploy" / "dagster.production.yaml", stack.dagster_home / "dagster.yaml")
    tmp = stack.env_file.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
    tmp.replace(stack.env_file)
    return env


# ---- health --------------------------------------------------------------------------------------
def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return 200 <= r.status < 300
    except OSError:
        return False


def celery_workers(env: dict[str, str], timeout: float = 3.0) -> list[str]:
    """Names of the Celery workers answering a ping on the broker."""
    out = subprocess.run(
        [str(BIN / "celery"), "-A", "flowsense_dagster.executors:celery_app", "inspect", "ping",
         "--json", "--timeout", str(timeout)],
        env=env, capture_output=True, text=True, cwd=REPO,
    )
    try:
        replies = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
    except (json.JSONDecodeError, IndexError):
        return []
    return sorted(replies)


def daemon_alive(env: dict[str, str]) -> bool:
    out = subprocess.run([str(BIN / "dagster-daemon"), "liveness-check"], env=env, capture_output=True,
                         text=True, cwd=REPO)
    return out.returncode == 0


def worker_ready(env: dict[str, str]) -> bool:
    """The worker serves metrics, or waits (by design) for a first stream to be published."""
    if http_ok(f"http://127.0.0.1:{env['FLOWSENSE_METRICS_PORT']}/metrics"):
        return True
    import redis

    try:
        return not redis.Redis.from_url(env["FLOWSENSE_REDIS_URL"]).exists(f"{env['FLOWSENSE_STREAM']}:meta")
    except redis.RedisError:
        return False


def health(env: dict[str, str]) -> dict[str, bool]:
    checks: dict[str, Callable[[], bool]] = {
        "dagster-webserver": lambda: http_ok(f"http://127.0.0.1:{env['FLOWSENSE_DAGSTER_PORT']}/server_info"),
        "dagster-daemon": lambda: daemon_alive(env),
        "celery (2 workers)": lambda: len(celery_workers(env)) >= 2,
        "mlflow": lambda: http_ok(f"http://127.0.0.1:{env['FLOWSENSE_MLFLOW_PORT']}/health"),
        "api": lambda: http_ok(f"http://127.0.0.1:{env['FLOWSENSE_API_PORT']}/api/v1/health"),
        "worker": lambda: worker_ready(env),
    }
    return {name: fn() for name, fn in checks.items()}


# ---- up / down -----------------------------------------------------------------------------------
def running_pid(stack: Stack) -> int | None:
    try:
        pid = int(stack.pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def up(stack: Stack, timeout: float = 180.0) -> int:
    if (pid := running_pid(stack)) is not None:
        log(f"already running (honcho pid {pid}); `make prod-down` first")
        return 0
    subprocess.run(["bash", str(REPO / "scripts" / "ensure-services.sh")], check=True)
    created = ensure_databases()
    if created:
        log(f"created databases: {', '.join(created)}")
    env = write_config(stack)
    with stack.log_file.open("ab") as logf:
        proc = subprocess.Popen(
            [str(BIN / "honcho"), "-f", str(REPO / "deploy" / "Procfile"), "-e", str(stack.env_file),
             "-d", str(REPO), "--no-colour", "start"],
            env=env, cwd=REPO, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
        )
    stack.pid_file.write_text(str(proc.pid))
    log(f"honcho pid {proc.pid}; logs: {stack.log_file}")
    deadline = time.monotonic() + timeout
    status: dict[str, bool] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log(f"honcho exited with {proc.returncode}; see {stack.log_file}")
            return 1
        status = health(env)
        if all(status.values()):
            break
        time.sleep(2.0)
    else:
        log("not healthy in time: " + ", ".join(k for k, v in status.items() if not v))
        log(f"see {stack.log_file}; stopping")
        down(stack)
        return 1
    print_ports(env)
    return 0


def print_ports(env: dict[str, str]) -> None:
    print("FlowSense production stack is up (profile production):")
    print(f"  Dagster UI      http://127.0.0.1:{env['FLOWSENSE_DAGSTER_PORT']}")
    print(f"  MLflow UI       http://127.0.0.1:{env['FLOWSENSE_MLFLOW_PORT']}")
    print(f"  API, dashboard  http://127.0.0.1:{env['FLOWSENSE_API_PORT']}/dashboard/ "
          "(key: `flowsense api keys create` with this environment)")
    print(f"  worker metrics  http://127.0.0.1:{env['FLOWSENSE_METRICS_PORT']}/metrics "
          f"(Redis stream {env['FLOWSENSE_STREAM']}; feed it with `flowsense publish`)")
    print(f"  Celery broker   {env['FLOWSENSE_CELERY_BROKER']}")
    print(f"  state           PostgreSQL {', '.join(DATABASES)}; Redis {env['FLOWSENSE_REDIS_URL']}")
    print(f"  environment     {Path(env['FLOWSENSE_HOME']) / 'prod' / 'stack.env'}")
    print(f"  logs            {Path(env['FLOWSENSE_HOME']) / 'prod' / 'logs' / 'stack.log'}")


def down(stack: Stack, timeout: float = 30.0) -> int:
    pid = running_pid(stack)
    if pid is None:
        log("not running")
        stack.pid_file.unlink(missing_ok=True)
        return 0
    os.killpg(pid, signal.SIGTERM)  # honcho forwards it; the session holds every child
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        log("processes still up after SIGTERM; killing")
        os.killpg(pid, signal.SIGKILL)
    stack.pid_file.unlink(missing_ok=True)
    log("stopped")
    return 0


# ---- a throwaway stack (tests, benchmarks) -------------------------------------------------------
@dataclass
class Ephemeral:
    """A stack of its own: a fresh PostgreSQL database, RabbitMQ virtual host and FLOWSENSE_HOME, with
    ``workers`` Celery worker processes and (optionally) a ``dagster-daemon``, each in its own session."""

    home: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen]
    instance: Any

    def dagster(self, *args: str, timeout: float = 300.0) -> str:
        out = subprocess.run([str(BIN / "dagster"), *args], env=self.env, cwd=REPO, capture_output=True,
                             text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"dagster {' '.join(args[:2])} failed: {out.stderr[-2000:]}")
        return out.stdout

    def celery_pids(self) -> set[int]:
        """Every process of the Celery workers (the prefork pool children run the steps)."""
        import psutil

        pids: set[int] = set()
        for name, proc in self.procs.items():
            if name.startswith("celery"):
                with contextlib.suppress(psutil.NoSuchProcess):
                    pids |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
                pids.add(proc.pid)
        return pids

    def wait_runs(self, tags: dict[str, str], n: int, timeout: float = 600.0) -> list[Any]:
        """The runs with ``tags`` once ``n`` of them exist and all have finished."""
        import dagster as dg

        deadline = time.monotonic() + timeout
        runs: list[Any] = []
        while time.monotonic() < deadline:
            runs = list(self.instance.get_runs(filters=dg.RunsFilter(tags=tags)))
            if len(runs) >= n and all(r.status.value in FINISHED for r in runs):
                return runs
            time.sleep(1.0)
        raise TimeoutError(f"runs {tags} not finished in {timeout:.0f}s: {[r.status.value for r in runs]}")


FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


@contextlib.contextmanager
def ephemeral(home: Path, workers: int = 2, daemon: bool = True) -> Iterator[Ephemeral]:
    import psycopg2

    tag = uuid.uuid4().hex[:10]
    db, vhost = f"fs_tmp_{tag}", f"fs-tmp-{tag}"
    admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'create database "{db}"')
    rabbit = ["rabbitmqctl", "-q"]
    subprocess.run([*rabbit, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run([*rabbit, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True, timeout=60)
    stack = Stack(home)
    stack.dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "deploy" / "dagster.production.yaml", stack.dagster_home / "dagster.yaml")
    env = {**os.environ, **stack.env(), "DAGSTER_PG_DB": db,
           # this stack's own home, whatever the caller's environment says (make exports FLOWSENSE_HOME)
           "FLOWSENSE_HOME": str(home), "DAGSTER_HOME": str(stack.dagster_home),
           "FLOWSENSE_CELERY_BROKER": f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}",
           "FLOWSENSE_MLFLOW_URI": f"sqlite:///{home / 'mlflow.db'}",
           "FLOWSENSE_STATE_DSN": "",
           # a loaded 2-core machine can take longer than Dagster's 60 s default to answer the daemon
           "DAGSTER_GRPC_TIMEOUT_SECONDS": "300"}
    logs = stack.log_file.parent
    logs.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in env}
    procs: dict[str, subprocess.Popen] = {}
    instance = None
    try:
        os.environ.update(env)
        for i in range(workers):
            name = f"celery_{chr(ord('a') + i)}"
            procs[name] = subprocess.Popen(
                [str(BIN / "celery"), "-A", "flowsense_dagster.executors:celery_app", "worker", "-c", "1",
                 "-Q", "dagster", "-n", f"{name}-{tag}@%h", "--without-gossip", "--without-mingle",
                 "--loglevel", "INFO"],
                env=env, cwd=REPO, stdout=(logs / f"{name}.log").open("wb"), stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if daemon:
            procs["daemon"] = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")], env=env, cwd=REPO,
                stdout=(logs / "daemon.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
            )
        import dagster as dg

        instance = dg.DagsterInstance.get()
        yield Ephemeral(home=home, env=env, procs=procs, instance=instance)
    finally:
        for proc in procs.values():  # each in its own session: the group holds its children too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if instance is not None:
            instance.dispose()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        admin.cursor().execute(f'drop database if exists "{db}" with (force)')
        admin.close()
        subprocess.run([*rabbit, "delete_vhost", vhost], capture_output=True, timeout=60)


# ---- check ---------------------------------------------------------------------------------------
def run_stats(instance: Any, run_ids: Sequence[str]) -> dict[str, Any]:
    """Steps and Celery workers of ``run_ids`` from the event log (STEP_START pids, engine events)."""
    pids: set[int] = set()
    names: set[str] = set()
    steps = 0
    for run_id in run_ids:
        for record in instance.all_logs(run_id):
            ev = record.dagster_event
            if ev is None:
                continue
            if ev.event_type_value == "STEP_START" and ev.pid is not None:
                pids.add(int(ev.pid))
            elif ev.event_type_value == "STEP_SUCCESS":
                steps += 1
            elif ev.event_type_value == "ENGINE_EVENT" and ev.engine_event_data is not None:
                worker = (ev.engine_event_data.metadata or {}).get("Celery worker")
                if worker is not None:
                    names.add(str(getattr(worker, "value", worker)))
    return {"steps": steps, "worker_pids": sorted(pids), "workers": sorted(names)}


def failure_messages(instance: Any, run_id: str, limit: int = 3) -> list[str]:
    """The first step/run failure messages of a run (with the error's last line), for a one-look report."""
    out = []
    for record in instance.all_logs(run_id):
        ev = record.dagster_event
        if ev is None or ev.event_type_value not in ("STEP_FAILURE", "RUN_FAILURE", "ENGINE_EVENT"):
            continue
        if ev.event_type_value == "ENGINE_EVENT" and "error" not in (record.user_message or "").lower():
            continue
        data = getattr(ev, "event_specific_data", None)
        err = getattr(data, "error", None)
        detail = f" :: {err.message.strip().splitlines()[-1]}" if err is not None and err.message else ""
        out.append(f"{ev.event_type_value} {ev.step_key or ''}: {(record.user_message or '')[:200]}{detail}")
        if len(out) >= limit:
            break
    return out


def storage_kind(instance: Any) -> str:
    name = type(instance.run_storage).__name__.lower()
    return "postgres" if "postgres" in name else "sqlite" if "sqlite" in name else name


def demo_partitions(instance: Any, settings: Any, symbols: Sequence[str], days: int, scale: float) -> list[str]:
    """Simulate the demo's days into the inbox if it is empty; register them; their partition keys."""
    from flowsense.data.inbox import scan_inbox
    from flowsense.sim import simulate
    from flowsense_dagster.partitions import register_partitions, to_partition_key

    settings.inbox.mkdir(parents=True, exist_ok=True)
    sources = scan_inbox(settings.inbox, tz=settings.tick_tz)
    if not sources:  # (the sensor's hidden source index may be there already)
        log(f"simulating {len(symbols)} symbols x {days} days into {settings.inbox}")
        simulate(list(symbols), days, settings.inbox, seed=7, scale=scale)
        sources = scan_inbox(settings.inbox, tz=settings.tick_tz)
    parts = sorted({src.partition for src in sources}, key=lambda p: (p.symbol, p.date))
    register_partitions(instance, parts)
    return [str(to_partition_key(p)) for p in parts]


def check(stack: Stack, symbols: Sequence[str], days: int, job: str, timeout: float, scale: float) -> int:
    """Backfill every inbox partition (the demo's, simulated if the inbox is empty) through Celery.

    The inbox sensor is paused for the duration (``dagster sensor stop``/``start``), so that it does not
    request the same partitions a second time; afterwards it finds them materialized and skips them.
    """
    env = stack.env()
    os.environ.update(env)
    import dagster as dg

    from flowsense.config import Settings

    settings = Settings.from_env()
    instance = dg.DagsterInstance.get()
    workspace = str(REPO / "workspace.yaml")

    def dagster(*args: str) -> None:
        subprocess.run([str(BIN / "dagster"), *args, "-w", workspace], env=env, cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)

    dagster("sensor", "stop", "inbox_sensor")
    try:
        keys = demo_partitions(instance, settings, symbols, days, scale)
        tag = uuid.uuid4().hex[:12]
        t0 = time.monotonic()
        log(f"backfilling {len(keys)} partitions of {job} through the Celery executor")
        dagster("job", "backfill", "-j", job, "--partitions", ",".join(keys),
                "--tags", json.dumps({"flowsense/prod-check": tag}), "--noprompt")
        runs: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = list(instance.get_runs(filters=dg.RunsFilter(tags={"flowsense/prod-check": tag})))
            if len(runs) >= len(keys) and all(r.status.value in FINISHED for r in runs):
                break
            time.sleep(3.0)
        seconds = time.monotonic() - t0
    finally:
        dagster("sensor", "start", "inbox_sensor")
    stats = run_stats(instance, [r.run_id for r in runs])
    failed = [r.run_id for r in runs if r.status.value != "SUCCESS"]
    out = {"storage": storage_kind(instance), "executor": "celery", "job": job, "partitions": len(keys),
           "runs": len(runs), **stats, "failed": len(failed),
           "failures": {r: failure_messages(instance, r) for r in failed}, "seconds": round(seconds, 1)}
    print(json.dumps(out))
    return 0 if not failed and len(runs) == len(keys) and len(stats["worker_pids"]) >= 2 else 1


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flowsense_dagster.stack", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start the stack and wait until it is healthy")
    sub.add_parser("down", help="stop the stack")
    sub.add_parser("status", help="health of every process (JSON)")
    c = sub.add_parser("check", help="backfill the demo partitions through Celery; print one JSON object")
    c.add_argument("--symbols", default="AAA,BBB,CCC")
    c.add_argument("--days", type=int, default=2)
    c.add_argument("--job", default="all_assets_job")
    c.add_argument("--timeout", type=float, default=3600.0)
    c.add_argument("--scale", type=float, default=1.0, help="simulator event-rate scale (the demo's: 1.0)")
    args = ap.parse_args(argv)
    home = Path(os.environ.get("FLOWSENSE_HOME") or REPO / ".flowsense").expanduser().resolve()
    stack = Stack(home)
    if args.cmd == "up":
        return up(stack)
    if args.cmd == "down":
        return down(stack)
    if args.cmd == "status":
        status = health(stack.env())
        print(json.dumps(status))
        return 0 if all(status.values()) else 1
    if running_pid(stack) is None:
        log("the stack is not running: `make prod-up` first")
        return 2
    return check(stack, [s for s in args.symbols.split(",") if s], args.days, args.job, args.timeout, args.scale)


if __name__ == "__main__":
    sys.exit(main())
