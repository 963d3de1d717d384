"""The dashboard in a real browser (Playwright + Debian's Chromium): log in with a key, every page renders
the real run's data, a live update the worker publishes appears on the Live page, a missing or bad key
is refused. Screenshots of each page go to $FLOWSENSE_SCREENS (default /work/coord/screens) when that
folder can be written, else to the test's tmp folder."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from flowsense.live.state import StateStore
from tests.api.conftest import SCREENS

CHROMIUM = Path(os.environ.get("FLOWSENSE_CHROMIUM", "/usr/bin/chromium"))
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        SCREENS.mkdir(parents=True, exist_ok=True)
        probe = SCREENS / ".probe"
        probe.write_text("")
        probe.unlink()
        return SCREENS
    except OSError:
        return tmp_path_factory.mktemp("screens")


def test_missing_or_bad_key_is_refused(api: Any, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{api.url}/dashboard/overview.html")
    page.wait_for_url("**/dashboard/index.html?next=*")
    page.fill("#key", "fsk_000000000000_not-a-key")
    page.click("#submit")
    page.wait_for_selector("#msg:has-text('refused')")
    assert "invalid or revoked" in page.inner_text("#msg")
    status = page.evaluate("fetch('/api/v1/state').then(r => r.status)")
    assert status == 401
    page.close()


def test_pages_render_the_real_run_and_live_updates(api: Any, browser: Any, keys: dict[str, str], shots: Path,
                                                    real_settings: Any) -> None:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{api.url}/dashboard/")
    page.wait_for_selector("#key")
    page.fill("#key", keys["admin"])
    page.click("#submit")
    page.wait_for_url("**/dashboard/overview.html")

    # overview: state card, equity chart drawn, positions, alerts
    page.wait_for_selector("#c-state .badge")
    page.wait_for_selector("#equity canvas")
    page.wait_for_selector("#eq-title:has-text('Equity (')")
    page.wait_for_selector("#alerts li")
    assert page.inner_text("#key-id").startswith("key ")
    time.sleep(0.3)
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    # live: ladder from the book, then a book update published by the worker's store appears
    page.click("#nav-live")
    page.wait_for_url("**/live.html")
    page.wait_for_selector("#ladder td.ask")
    page.wait_for_selector("#ws-status:has-text('live: on')")
    # the real run's worker (model_signal on the registered champion) filled the decision and latency panels
    page.wait_for_selector("#signals td:has-text('flowsense-logit_ofi@1')")
    fill = signal_rows(page)
    assert fill and all(0.0 < r["p_up"] < 1.0 for r in fill if r["p_up"] is not None)
    assert any(r["order"].startswith(("buy 100", "sell 100")) and r["risk"] == "accepted" for r in fill)
    p50, p99 = latency_cards(page)
    assert 0 < p50 <= p99 < 60e6
    store = StateStore(real_settings.worker_state)
    store.publish("book", "AAA", {"ts": 1_704_229_199_000_000_000, "seq": 10**7, "bid": [123.45, 123.44],
                                  "bid_size": [777.0, 5.0], "ask": [123.47, 123.5], "ask_size": [888.0, 9.0]})
    store.publish("signals", "AAA", {"kind": "order", "ts": 1_704_229_199_000_000_000, "seq": 10**7 + 1,
                                     "p_up": 0.6123, "model": "flowsense-logit_ofi@1", "side": 1, "qty": 300,
                                     "type": "market", "risk": "scaled", "scale": 0.3333, "qty_sent": 100,
                                     "reason": "reducing", "latency_us": 1234.0})
    page.wait_for_selector("#ladder td.bid:has-text('123.45')", timeout=10_000)
    page.wait_for_selector("#signals td:has-text('0.6123')", timeout=10_000)
    top = signal_rows(page)[0]
    assert top["order"] == "buy 300" and top["risk"].startswith("scaled ×0.33") and top["latency"] == "1.23 ms"
    assert "777" in page.inner_text("#ladder")
    page.wait_for_selector("#trades td")
    time.sleep(0.3)
    page.screenshot(path=str(shots / "live-fill.png"), full_page=True)

    # backtests: list, a report, a comparison, walk-forward vs baselines
    page.click("#nav-backtests")
    page.wait_for_url("**/backtests.html")
    page.wait_for_selector("#list tbody tr.clickable")
    n_runs = len(list(real_settings.reports.rglob("metrics.json")))
    assert page.locator("#list tbody tr.clickable").count() == min(n_runs, 25)
    page.wait_for_selector("#detail td:has-text('sharpe')")
    boxes = page.locator("#list input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#compare")
    page.wait_for_selector("#comparison tbody tr:nth-child(2)")
    page.wait_for_selector("#wf td:has-text('buy_and_hold')")
    assert page.locator("#wf .badge:has-text('baseline')").count() >= 3
    time.sleep(0.3)
    page.screenshot(path=str(shots / "backtests.png"), full_page=True)

    # models: registry, champion/challenger, evaluation vs baselines
    page.click("#nav-models")
    page.wait_for_url("**/models.html")
    page.wait_for_selector("#models td:has-text('flowsense-logit_ofi')")
    page.wait_for_selector("#cc .badge.champion")
    page.wait_for_selector("#eval td:has-text('baseline')")
    page.wait_for_selector("#versions button[data-v]")
    time.sleep(0.3)
    page.screenshot(path=str(shots / "models.png"), full_page=True)

    # log out: the pages refuse again
    page.click("#logout")
    page.wait_for_url("**/index.html")
    page.goto(f"{api.url}/dashboard/models.html")
    page.wait_for_url("**/index.html?next=*")
    assert not errors, errors
    ctx.close()


def test_live_page_follows_a_running_worker(browser: Any, keys: dict[str, str], shots: Path, real_settings: Any,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real worker (model_signal on the registered champion) replays the AAA day into its own fresh state
    store while the Live page is open: the book ladder follows what it publishes, and the prediction / risk
    decision table, the latency panel and the trades table fill with what it pushes (empty before)."""
    import threading

    from flowsense.data.lake import Partition
    from flowsense_api.app import create_app
    from tests.api.conftest import ServerThread
    from tests.api.realrun import run_worker

    monkeypatch.setenv("FLOWSENSE_STATE_DSN", str(tmp_path / "worker"))
    app = create_app(real_settings)
    with ServerThread(app) as srv:
        done: list[Any] = []
        worker = threading.Thread(target=lambda: done.append(run_worker(
            real_settings, Partition.parse("AAA|2024-01-02"), speed=1500.0)), daemon=True)
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{srv.url}/dashboard/index.html?next=/dashboard/live.html%3Fsymbol%3DAAA")
        page.fill("#key", keys["read"])
        page.click("#submit")
        page.wait_for_url("**/live.html?symbol=AAA")
        page.wait_for_selector("#ws-status:has-text('live: on')")
        page.wait_for_selector("#signals td:has-text('no decisions yet')")  # nothing before the worker runs
        assert page.inner_text("#lat-p99") == "–" and "lake" in page.inner_text("#trades-title").lower()
        worker.start()
        page.wait_for_selector("#book-src:has-text('book from worker')", timeout=240_000)  # numba compiles the worker on first use
        first = page.inner_text("#ladder")
        page.wait_for_selector("#tick-info:has-text('live events')", timeout=30_000)
        deadline = time.monotonic() + 30
        while page.inner_text("#ladder") == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert page.inner_text("#ladder") != first, "the ladder did not follow the worker's book"
        # predictions and risk decisions pushed by the worker: the champion's P(up), its orders, accepted
        page.wait_for_selector("#signals td:has-text('flowsense-logit_ofi@1')", timeout=60_000)
        page.wait_for_selector("#signals .badge.ok:has-text('accepted')", timeout=60_000)
        rows = signal_rows(page)
        preds = [r["p_up"] for r in rows if r["p_up"] is not None]
        assert preds and all(0.0 < p < 1.0 for p in preds) and len(set(preds)) > 1
        orders = [r for r in rows if r["order"].startswith(("buy", "sell"))]
        assert orders and all(r["risk"] == "accepted" or r["risk"].startswith(("rejected ", "scaled ×"))
                              for r in orders)
        decided = [r for r in rows if not r["order"].startswith("model ")]  # a model swap row has no latency
        assert decided and all(r["latency_us"] is not None and 0 < r["latency_us"] < 60e6 for r in decided), rows
        # the latency panel: rolling p50 <= p99, plausible, and its chart drawn
        p50, p99 = latency_cards(page)
        assert 0 < p50 <= p99 < 60e6
        assert "over the last" in page.inner_text("#lat-note")
        page.wait_for_selector("#latency canvas")
        # trades from the worker's feed: real prices next to the worker's book
        page.wait_for_selector("#trades-title:has-text('worker feed')", timeout=30_000)
        bid = float(page.inner_text("#ladder td.bid.num").replace(",", ""))
        prices = [float(t.replace(",", "")) for t in page.locator("#trades tbody tr td:nth-child(2)").all_inner_texts()]
        assert prices and all(abs(px / bid - 1) < 0.05 for px in prices)
        time.sleep(1.0)
        page.screenshot(path=str(shots / "live.png"), full_page=True)
        assert not errors, errors
        ctx.close()  # the dashboard closes mid-run
        worker.join(180)
    assert done and done[0]["session_done"] and done[0]["ticks"] > 1000
    assert done[0]["strategy"] == "model_signal" and done[0]["decision_events"] > 0


_UNITS = {"µs": 1.0, "ms": 1e3, "s": 1e6}


def _us(text: str) -> float | None:
    m = re.fullmatch(r"([\d.,]+) (µs|ms|s)", text.strip())
    return float(m.group(1).replace(",", "")) * _UNITS[m.group(2)] if m else None


def signal_rows(page: Any) -> list[dict[str, Any]]:
    """The prediction / risk decision table as rows (newest first)."""
    cells = page.eval_on_selector_all("#signals tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.innerText))")
    out = []
    for c in cells:
        if len(c) < 6:
            continue
        p = c[1].strip()
        out.append({"ts": c[0], "p_up": float(p) if re.fullmatch(r"[\d.]+", p) else None,
                    "model": c[2], "order": c[3].strip(), "risk": " ".join(c[4].split()), "latency": c[5].strip(),
                    "latency_us": _us(c[5])})
    return out


def latency_cards(page: Any) -> tuple[float, float]:
    p50, p99 = _us(page.inner_text("#lat-p50")), _us(page.inner_text("#lat-p99"))
    assert p50 is not None and p99 is not None, (page.inner_text("#lat-p50"), page.inner_text("#lat-p99"))
    return p50, p99
