(function () {
  if (!FS.frame("backtests")) return;
  const $ = (id) => document.getElementById(id);
  const PAGE = 25;
  let offset = 0, rows = [], ticked = new Set(), series = [];
  const eqChart = FS.chart($("equity"));

  async function list() {
    const r = await FS.api("/backtests?limit=" + PAGE + "&offset=" + offset);
    rows = r.items;
    $("page-info").textContent = (r.total ? (offset + 1) + "–" + (offset + rows.length) : 0) + " of " + r.total;
    $("prev").disabled = offset === 0; $("next").disabled = r.next_offset === null;
    FS.table($("list"), rows, [
      ["id", "", (v) => '<input type="checkbox" data-id="' + FS.esc(v) + '"' + (ticked.has(v) ? " checked" : "") + ">"],
      ["symbol", "symbol"], ["date", "date"], ["strategy", "strategy"],
      ["total_return", "return", FS.pct, true], ["sharpe", "Sharpe", v => FS.fmt(v, 2), true],
      ["max_drawdown", "max DD", FS.pct], ["win_rate", "win rate", FS.pct], ["n_fills", "fills", v => FS.fmt(v, 0)],
      ["fees_paid", "fees", v => FS.fmt(v, 2)], ["pnl", "PnL", v => FS.fmt(v, 2), true], ["created_at", "run at"]],
      { empty: "no backtests yet (flowsense backtest ...)", onclick: (r, tr) => detail(r.id, tr) });
    $("list").querySelectorAll("input[type=checkbox]").forEach(cb => {
      cb.onclick = (e) => { e.stopPropagation(); cb.checked ? ticked.add(cb.dataset.id) : ticked.delete(cb.dataset.id); };
    });
    if (rows.length && !$("detail").dataset.shown) detail(rows[0].id, $("list").querySelector("tbody tr"));
  }

  function clearSeries() { for (const s of series) eqChart.removeSeries(s); series = []; }
  async function plot(ids) {
    clearSeries();
    const legend = [];
    for (let i = 0; i < ids.length; i++) {
      const eq = await FS.api("/backtests/" + encodeURIComponent(ids[i]) + "/equity?points=1500");
      const pts = FS.points(eq.t, eq.v);
      const base = pts.length ? pts[0].value : 1;
      const s = FS.line(eqChart, FS.COLORS[i % FS.COLORS.length], { lineWidth: 2 });
      s.setData(ids.length > 1 ? pts.map(p => ({ time: p.time, value: p.value / base })) : pts);
      series.push(s); legend.push('<span style="color:' + FS.COLORS[i % FS.COLORS.length] + '">■</span> ' + FS.esc(ids[i]));
    }
    eqChart.timeScale().fitContent();
    $("legend").innerHTML = legend.join(" &nbsp; ");
    $("cmp-title").textContent = ids.length > 1 ? "Equity, normalized to 1 at the start" : "Equity";
  }

  async function detail(id, tr) {
    $("list").querySelectorAll("tr.selected").forEach(x => x.classList.remove("selected"));
    if (tr) tr.classList.add("selected");
    const m = await FS.api("/backtests/" + encodeURIComponent(id));
    $("detail").dataset.shown = id;
    $("detail-title").textContent = "Report — " + m.symbol + " " + m.date + " " + m.strategy;
    const keys = ["total_return", "sharpe", "sortino", "max_drawdown", "max_drawdown_duration", "win_rate", "profit_factor",
      "turnover", "fees_paid", "fill_rate", "probabilistic_sharpe", "deflated_sharpe"];
    const tbl = keys.filter(k => k in m).map(k => ({ metric: k, value: m[k] }));
    for (const k of ["n_events", "n_orders", "n_fills", "pnl"]) if (m.engine && k in m.engine) tbl.push({ metric: k, value: m.engine[k] });
    const div = document.createElement("div");
    const PCT = new Set(["total_return", "max_drawdown", "win_rate", "fill_rate"]);
    FS.table(div, tbl, [["metric", "metric"], ["value", "value", (v, r) => PCT.has(r.metric) ? FS.pct(v) : FS.fmt(v)]]);
    const links = (m.files || []).map(f => '<a target="_blank" rel="noopener" href="#" data-file="' + FS.esc(f) + '">' + FS.esc(f) + "</a>").join(" · ");
    $("detail").innerHTML = '<p class="dim">params ' + FS.esc(JSON.stringify(m.params || {})) + "</p>" + div.innerHTML + "<p>" + links + "</p>";
    $("detail").querySelectorAll("a[data-file]").forEach(a => { a.onclick = (e) => { e.preventDefault(); openFile(id, a.dataset.file); }; });
    await plot([id]);
  }
  async function openFile(id, name) {  // files need the key header, so fetch and open a blob
    const r = await fetch("/api/v1/backtests/" + encodeURIComponent(id) + "/files/" + name, { headers: { Authorization: "Bearer " + FS.key() } });
    if (!r.ok) { alert("HTTP " + r.status); return; }
    const url = URL.createObjectURL(await r.blob());
    window.open(url, "_blank");
  }

  async function compare() {
    const ids = [...ticked];
    if (ids.length < 2) { $("comparison").innerHTML = '<span class="dim">tick two or more backtests to compare</span>'; return; }
    const ms = await Promise.all(ids.map(id => FS.api("/backtests/" + encodeURIComponent(id))));
    FS.table($("comparison"), ms.map(m => ({ run: m.id, symbol: m.symbol, date: m.date, strategy: m.strategy,
      total_return: m.total_return, sharpe: m.sharpe, sortino: m.sortino, max_drawdown: m.max_drawdown, win_rate: m.win_rate,
      fees_paid: m.fees_paid, turnover: m.turnover, fills: m.engine && m.engine.n_fills })),
      [["run", "run"], ["symbol", "symbol"], ["date", "date"], ["strategy", "strategy"], ["total_return", "return", FS.pct, true],
        ["sharpe", "Sharpe", v => FS.fmt(v, 2), true], ["sortino", "Sortino", v => FS.fmt(v, 2)], ["max_drawdown", "max DD", FS.pct],
        ["win_rate", "win rate", FS.pct], ["fees_paid", "fees", v => FS.fmt(v, 2)], ["turnover", "turnover", v => FS.fmt(v)],
        ["fills", "fills", v => FS.fmt(v, 0)]]);
    await plot(ids);
  }

  async function walkforward() {
    const r = await FS.api("/walkforward?limit=1000");
    const agg = {};
    for (const x of r.items) {
      const k = (x.costs || "") + "|" + x.strategy;
      const a = agg[k] = agg[k] || { costs: x.costs, strategy: x.strategy, days: 0, ret: 0, sharpe: 0, n_sharpe: 0 };
      a.days++; a.ret += x.total_return || 0;
      if (typeof x.sharpe === "number") { a.sharpe += x.sharpe; a.n_sharpe++; }
    }
    const out = Object.values(agg).map(a => ({ costs: a.costs, strategy: a.strategy, days: a.days, mean_return: a.ret / a.days,
      mean_sharpe: a.n_sharpe ? a.sharpe / a.n_sharpe : null }))
      .sort((a, b) => (a.costs > b.costs ? 1 : a.costs < b.costs ? -1 : b.mean_return - a.mean_return));
    FS.table($("wf"), out, [["costs", "costs"], ["strategy", "strategy", v => FS.esc(v) + (/flat|buy_and_hold|last_return/.test(v) ? ' <span class="badge">baseline</span>' : "")],
      ["days", "days"], ["mean_return", "mean return", FS.pct, true], ["mean_sharpe", "mean Sharpe", v => FS.fmt(v, 2), true]],
      { empty: "no walk-forward results yet (the walkforward_day asset writes them)" });
  }

  $("prev").onclick = () => { offset = Math.max(0, offset - PAGE); list(); };
  $("next").onclick = () => { offset += PAGE; list(); };
  $("compare").onclick = () => compare().catch(e => FS.showError($("comparison"), e));
  list().then(walkforward).then(() => { $("comparison").innerHTML = '<span class="dim">tick two or more backtests and press Compare</span>'; })
    .catch(e => FS.showError($("list"), e));
})();
