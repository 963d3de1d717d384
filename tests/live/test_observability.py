"""Metrics and alerting: the alert rules pass `promtool check rules` and their unit tests, the Grafana
dashboard only queries metrics the worker exports, and a real Prometheus scrapes a worker."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import REPO

PROM_DIR = REPO / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_checks_rules_and_their_unit_tests():
    p = subprocess.run([PROMTOOL, "check", "rules", "flowsense-worker.rules.yml"], cwd=PROM_DIR,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 6 rules found" in p.stdout
    p = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], cwd=PROM_DIR, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    rules = (PROM_DIR / "flowsense-worker.rules.yml").read_text()
    for alert in ("FlowSenseDrawdownAbove10Percent", "FlowSenseModelAccuracyDrop", "FlowSenseWorkerDown",
                  "FlowSenseLatencyAbove500ms"):
        assert f"alert: {alert}" in rules




def _exported_names(metrics) -> set[str]:
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    return {ln.split("{")[0].split(" ")[0] for ln in text.splitlines() if ln and not ln.startswith("#")}


@pytest.fixture(scope="module")
def worker_metrics(goog_home, tmp_path_factory):
    """One worker run (in-process, a slice of the real GOOG day) shared by the tests below."""
    tmp_path = tmp_path_factory.mktemp("metrics")
    from flowsense.adapters.prometheus.metrics import WorkerMetrics
    from flowsense.live.runner import ReplaySource, run_worker
    from flowsense.live.state import StateStore
    from flowsense.live.ticks import lake_records
    from flowsense.live.worker import WorkerConfig

    rec = lake_records(str(goog_home / "lake"), "GOOG", "2012-06-21")[:3000].copy()
    rec["n"] = rec.shape[0]
    rec[100]["book"][0] = float("nan")  # a bad tick: counted as skipped
    m = WorkerMetrics("GOOG")
    out = run_worker(WorkerConfig("GOOG", "2012-06-21", "ofi_threshold", {"threshold": 200.0}),
                     ReplaySource(rec, "GOOG", "2012-06-21", batch=50), StateStore(tmp_path / "st"), metrics=m,
                     signals=False)
    return m, out


def test_dashboard_queries_exported_metrics(worker_metrics):
    m, out = worker_metrics
    names = _exported_names(m)
    dash = json.loads((REPO / "deploy" / "grafana" / "flowsense-worker.json").read_text())
    used = set()
    for p in dash["panels"]:
        for t in p["targets"]:
            used |= set(re.findall(r"\b(flowsense_[a-z_]+)\b", t["expr"]))
    assert used, "no flowsense metric in the dashboard"
    missing = {u for u in used if u not in names and f"{u}_total" not in names}
    assert not missing, f"dashboard queries metrics the worker does not export: {missing}"
    assert {"flowsense_ticks_total", "flowsense_tick_to_decision_seconds_bucket", "flowsense_orders_total",
            "flowsense_fills_total", "flowsense_position", "flowsense_pnl", "flowsense_drawdown",
            "flowsense_trading_state", "flowsense_skipped_ticks_total"} <= names
    assert out["skipped"] == {"nan": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")
def test_real_prometheus_scrapes_the_worker(worker_metrics, tmp_path):
    m, out = worker_metrics
    port = m.serve(0)
    prom_port = _free_port()
    cfg = tmp_path / "prometheus.yml"
    shutil.copy(PROM_DIR / "flowsense-worker.rules.yml", tmp_path / "flowsense-worker.rules.yml")
    cfg.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [flowsense-worker.rules.yml]\n"
        f"scrape_configs:\n  - job_name: flowsense-worker\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
    proc = subprocess.Popen([shutil.which("prometheus"), f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            try:
                q = urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/query?query=flowsense_ticks_total",
                                           timeout=2).read()
                res = json.loads(q)["data"]["result"]
                if res:
                    value = float(res[0]["value"][1])
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert value == out["ticks"] == 2999
        q = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{prom_port}/api/v1/query?query=up%7Bjob%3D%22flowsense-worker%22%7D", timeout=2).read())
        assert float(q["data"]["result"][0]["value"][1]) == 1.0
        rules = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=2).read())
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert "FlowSenseLatencyAbove500ms" in names
    finally:
        proc.terminate()
        proc.wait(20)
        m.close()
