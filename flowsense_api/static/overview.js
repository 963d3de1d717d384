(function () {
  if (!FS.frame("overview")) return;
  const $ = (id) => document.getElementById(id);
  const eqChart = FS.chart($("equity")), ddChart = FS.chart($("dd"));
  const eqSeries = FS.line(eqChart, FS.COLORS[0]), ddSeries = FS.area(ddChart, "#ef5350");
  let eqPts = [];
  const alerts = { worker: [], data: [], state: [] };

  function renderAlerts() {
    const all = [].concat(alerts.state, alerts.worker, alerts.data);
    $("alerts").innerHTML = all.length ? all.map(a => '<li><span class="badge ' + a[0] + '">' + a[0] + "</span>" +
      FS.esc(a[1]) + "</li>").join("") : '<li class="dim">no alerts</li>';
  }
  function stateName(s) { return s && typeof s === "object" ? (s.state || s.status || s.mode || JSON.stringify(s)) : s; }
  function num(o, names) { if (!o || typeof o !== "object") return typeof o === "number" ? o : null;
    for (const n of names) if (typeof o[n] === "number") return o[n]; return null; }

  function showSummary(s) {
    const st = stateName(s.trading_state);
    $("c-state").innerHTML = st ? '<span class="badge ' + FS.esc(String(st).toLowerCase()) + '">' + FS.esc(st) + "</span>" : "–";
    const mv = s.model_version;
    $("c-model").textContent = mv && typeof mv === "object" ? [mv.name, mv.version && "v" + mv.version, mv.alias && "@" + mv.alias].filter(Boolean).join(" ") : FS.fmt(mv);
    const p = s.pnl || {};
    const net = num(p, ["net", "total", "pnl", "net_pnl", "total_pnl"]);
    $("c-pnl").textContent = FS.fmt(net, 2); $("c-pnl").className = "value " + FS.signClass(net);
    $("c-ru").textContent = FS.fmt(num(p, ["realized", "realized_pnl"]), 2) + " / " + FS.fmt(num(p, ["unrealized", "unrealized_pnl"]), 2);
    const ts_ = s.trading_state && typeof s.trading_state === "object" ? s.trading_state : {};
    const dd = num(p, ["drawdown", "current_drawdown"]) ?? num(ts_, ["drawdown"]);
    const peak = num(ts_, ["peak_equity"]);
    $("c-dd").textContent = dd === null ? "–" : FS.pct(dd);
    $("c-dd").title = peak === null ? "" : "from the equity peak " + FS.fmt(peak, 2);
    const pos = Array.isArray(s.positions) ? s.positions : [];
    const oo = Array.isArray(s.open_orders) ? s.open_orders : [];
    $("c-pos").textContent = pos.length + " / " + oo.length;
    FS.table($("positions"), pos, [["symbol", "symbol"], ["position", "position", v => FS.fmt(v, 0), true],
      ["avg_price", "avg price", v => FS.fmt(v, 2)], ["mark", "mark", v => FS.fmt(v, 2)], ["realized", "realized", v => FS.fmt(v, 2), true],
      ["fees", "fees", v => FS.fmt(v, 2)], ["equity", "equity", v => FS.fmt(v, 2)], ["updated", "updated"]], { empty: "flat" });
    alerts.state = [];
    if (st && /halt|stop|kill|breach/i.test(String(st))) {
      const reason = s.trading_state && s.trading_state.reason ? ": " + s.trading_state.reason : "";
      alerts.state.push(["halted", "trading is " + st + reason]);
    }
    if (ts_.alert) alerts.state.push(["warn", "drawdown alert: " + FS.pct(ts_.drawdown) + " from the equity peak"]);
    const w = s.status || {};
    if (w.running === false) alerts.state.push(["warn", "worker not running" + (w.heartbeat ? " (last heartbeat " + new Date(w.heartbeat * 1000).toISOString() + ")" : "")]);
    else if (w.running) alerts.state.push(["ok", "worker running: " + (w.symbol || "") + " " + (w.strategy || "") + ", " + FS.fmt(w.ticks) + " ticks"]);
    if (w.skipped && Object.keys(w.skipped).length) alerts.state.push(["warn", "ticks skipped: " + JSON.stringify(w.skipped)]);
    renderAlerts();
  }

  function showEquity(ts, vs) {
    eqPts = FS.points(ts, vs);
    eqSeries.setData(eqPts); ddSeries.setData(FS.drawdown(eqPts));
    eqChart.timeScale().fitContent(); ddChart.timeScale().fitContent();
  }
  function equityRows(items) {
    const ts = [], vs = [];
    for (const r of items || []) { ts.push(FS.toSec(r.ts ?? r.time ?? r.t)); vs.push(r.equity ?? r.value ?? r.v); }
    return [ts, vs];
  }

  async function loadWorker() {
    try {
      const s = await FS.api("/state");
      alerts.worker = [];
      showSummary(s);
      const eq = await FS.api("/equity");
      const [ts, vs] = equityRows(eq.items);
      if (ts.length) { $("eq-title").textContent = "Equity (worker)"; showEquity(ts, vs); }
      else await backtestEquity("worker has no equity marks yet: ");
      const f = await FS.api("/fills?limit=50");
      FS.table($("fills"), f.items, [["ts", "time"], ["symbol", "symbol"],
        ["side", "side", v => v > 0 ? '<span class="pos">buy</span>' : '<span class="neg">sell</span>'],
        ["price", "price", v => FS.fmt(v, 4)], ["size", "size", v => FS.fmt(v, 0)], ["fee", "fee", v => FS.fmt(v, 2)],
        ["liquidity", "liquidity"], ["slippage", "slippage", v => FS.fmt(v, 4)], ["book_price", "book price", v => FS.fmt(v, 2)],
        ["tick_seq", "tick"], ["model_version", "model"], ["client_order_id", "order"]], { empty: "no fills yet" });
      return true;
    } catch (e) {
      if (e.status === 503) { alerts.worker = [["warn", e.message]]; renderAlerts(); return false; }
      throw e;
    }
  }
  async function backtestEquity(why) {
    const list = await FS.api("/backtests?limit=1");
    if (!list.items.length) { $("eq-title").textContent = "Equity (" + why + "no backtest either)"; return null; }
    const b = list.items[0];
    const eq = await FS.api("/backtests/" + encodeURIComponent(b.id) + "/equity?points=2000");
    $("eq-title").textContent = "Equity (" + why + "latest backtest " + b.symbol + " " + b.date + " " + b.strategy + ")";
    showEquity(eq.t, eq.v);
    return b;
  }
  async function loadBacktestFallback() {
    const b = await backtestEquity("no worker yet: ");
    if (!b) return;
    $("c-state").innerHTML = '<span class="badge">no worker</span>';
    $("c-pnl").textContent = FS.fmt(b.pnl, 2); $("c-pnl").className = "value " + FS.signClass(b.pnl);
    $("c-dd").textContent = "max " + FS.pct(b.max_drawdown);
    FS.table($("positions"), [], null, { empty: "no worker" });
    FS.table($("fills"), [], null, { empty: "no worker" });
  }
  async function loadData() {
    const parts = await FS.api("/partitions?ok=false&limit=20");
    alerts.data = parts.items.map(p => ["bad", "validation failed: " + p.symbol + " " + p.date + " " + JSON.stringify(p.problems)]);
    renderAlerts();
  }

  async function refresh() {
    const ok = await loadWorker();
    if (!ok) await loadBacktestFallback();
    return ok;
  }
  refresh().then(ok => {
    loadData();
    let pending = null;
    new FS.Live([{ topics: ["pnl", "state", "fills"], symbols: ["*"] }], (items) => {
      let dirty = false;
      for (const e of items) {
        if (e.topic === "pnl" && e.data) {
          const v = e.data.equity ?? e.data.value;
          const t = FS.toSec(e.ts);
          if (typeof v === "number" && t !== null) {
            const p = { time: Math.floor(t), value: v };
            if (!eqPts.length || p.time > eqPts[eqPts.length - 1].time) eqPts.push(p);
            else if (p.time === eqPts[eqPts.length - 1].time) eqPts[eqPts.length - 1] = p;
            dirty = true;
          }
        }
        if (e.topic === "state" || e.topic === "fills" || e.topic === "pnl") {
          if (!pending) pending = setTimeout(() => { pending = null; loadWorker(); }, 250);
        }
      }
      if (dirty) { eqSeries.setData(eqPts); ddSeries.setData(FS.drawdown(eqPts)); }
    });
  }).catch(e => FS.showError(document.getElementById("alerts"), e));
})();
