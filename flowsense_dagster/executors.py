"""The executor per profile, and the Celery app its workers run.

* ``local``: Dagster's default (multiprocess) executor: steps run as subprocesses of the run.
* ``production``: ``dagster-celery``: each step is a Celery task on the broker (RabbitMQ at
  ``FLOWSENSE_CELERY_BROKER``, default ``pyamqp://guest:guest@127.0.0.1:5672//``; a ``redis://`` URL works
  too), executed by separately started worker processes::

      celery -A flowsense_dagster.executors:celery_app worker -c 1 -Q dagster -n a@%h

  Workers need the same ``DAGSTER_HOME`` (PostgreSQL storage) and ``FLOWSENSE_HOME`` as the run.

Delivery is at-least-once on purpose: a task is acknowledged only after the step finished
(``task_acks_late``) and is re-queued when the worker process running it dies
(``task_reject_on_worker_lost``), so a worker killed in the middle of a step hands that step to another
worker, which runs it again from the start. That is safe because every lake write is atomic (temporary file
+ rename) and replaces its partition: a killed step leaves the previous partition, never half of one.
"""

from __future__ import annotations

from typing import Any

from flowsense.config import Settings
from flowsense.errors import ConfigError

# The Celery settings the executor (which submits steps) and the workers (which run them) must agree on.
CELERY_CONFIG: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,  # a worker holds one step at a time: a dying worker strands none
    "broker_connection_retry_on_startup": True,
}
RESULT_BACKEND = "rpc://"


def celery_settings(settings: Settings | None = None) -> dict[str, Any]:
    """``celery_executor`` config for these settings (broker from ``FLOWSENSE_CELERY_BROKER``)."""
    s = settings or Settings.from_env()
    return {"broker": s.celery_broker, "backend": RESULT_BACKEND, "config_source": dict(CELERY_CONFIG)}


EXECUTORS = ("default", "celery", "k8s")


def executor_for_profile(settings: Settings | None = None) -> Any:
    """The executor every job of the code location uses.

    ``FLOWSENSE_EXECUTOR`` picks it: ``default`` (Dagster's multiprocess executor; the local profile's
    choice), ``celery`` (the production profile's choice) or ``k8s`` (one Kubernetes pod per step, from
    ``dagster-k8s``, which is not a dependency: install it in the image that runs on a cluster).
    """
    s = settings or Settings.from_env()
    name = s.executor
    if name not in EXECUTORS:
        raise ConfigError(f"FLOWSENSE_EXECUTOR={name!r} is not one of {', '.join(EXECUTORS)}")
    if name == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_settings(s), name="celery")
    if name == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise ConfigError("FLOWSENSE_EXECUTOR=k8s needs dagster-k8s (pip install dagster-k8s)") from exc
        return k8s_job_executor
    return None


def make_celery_app(settings: Settings | None = None) -> Any:
    """The Celery app of the workers: dagster-celery's task, this profile's broker and settings."""
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    cfg = celery_settings(settings)
    app = make_app({"broker": cfg["broker"], "backend": cfg["backend"], "config_source": cfg["config_source"]})
    create_task(app)
    return app


def __getattr__(name: str) -> Any:  # ``celery -A flowsense_dagster.executors:celery_app``: built on demand
    if name == "celery_app":
        app = make_celery_app()
        globals()["celery_app"] = app
        return app
    raise AttributeError(name)
