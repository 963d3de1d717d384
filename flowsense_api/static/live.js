(function () {
  if (!FS.frame("live")) return;
  const $ = (id) => document.getElementById(id);
  const LEVELS = 10;
  const midChart = FS.chart($("mid")), latChart = FS.chart($("latency"));
  const midSeries = FS.line(midChart, FS.COLORS[0]);
  const latSeries = FS.line(latChart, FS.COLORS[1], { lineWidth: 1 });
  let midPts = [], latPts = [], trades = [], signals = [], live = null, symbol = null, ticks = 0;

  function ladder(book, live) {
    const asks = (book.asks || []).slice(0, LEVELS), bids = (book.bids || []).slice(0, LEVELS);
    const maxSz = Math.max(1, ...asks.map(a => a[1]), ...bids.map(b => b[1]));
    const bar = (sz, side) => '<span class="bar ' + side + '" style="width:' + Math.round(80 * sz / maxSz) + 'px"></span>';
    let h = "<table><thead><tr><th>side</th><th class=num>price</th><th class=num>size</th><th></th></tr></thead><tbody>";
    for (const [px, sz] of asks.slice().reverse()) h += '<tr><td class="ask">ask</td><td class="num ask">' + FS.fmt(px, 2) + '</td><td class="num">' + FS.fmt(sz, 0) + "</td><td>" + bar(sz, "ask") + "</td></tr>";
    const spread = asks.length && bids.length ? asks[0][0] - bids[0][0] : null;
    h += '<tr class="spread"><td colspan="4">spread ' + FS.fmt(spread, 2) + "</td></tr>";
    for (const [px, sz] of bids) h += '<tr><td class="bid">bid</td><td class="num bid">' + FS.fmt(px, 2) + '</td><td class="num">' + FS.fmt(sz, 0) + "</td><td>" + bar(sz, "bid") + "</td></tr>";
    $("ladder").innerHTML = h + "</tbody></table>";
    if (live && asks.length && bids.length) {  // the mid chart follows the live feed only
      const t = FS.toSec(book.ts);
      if (t !== null) pushPt(midPts, t, (asks[0][0] + bids[0][0]) / 2);
    }
  }
  function pushPt(arr, t, v) {
    const p = { time: Math.floor(t), value: v };
    if (!arr.length || p.time > arr[arr.length - 1].time) arr.push(p);
    else if (p.time === arr[arr.length - 1].time) arr[arr.length - 1].value = Math.max(arr === latPts ? arr[arr.length - 1].value : -Infinity, v);
    if (arr.length > 5000) arr.splice(0, arr.length - 5000);
  }
  function showTrades() {
    FS.table($("trades"), trades.slice(0, 40), [["ts", "time", v => FS.esc(String(v || "").slice(11, 23))],
      ["price", "price", v => FS.fmt(v, 2)], ["size", "size", v => FS.fmt(v, 0)],
      ["aggressor_side", "aggressor", v => v > 0 ? '<span class="pos">buy</span>' : v < 0 ? '<span class="neg">sell</span>' : "–"]],
      { empty: "no trades" });
  }
  const SIGNAL_KEYS = ["prob_up", "p_up", "prediction", "proba", "score", "regime", "target", "decision", "action",
    "risk", "reason", "latency_ms", "latency_us", "tick_to_decision_us", "model_version"];
  function showSignals() {
    const cols = [["ts", "time", v => FS.esc(String(v || "").slice(11, 23))]];
    const keys = new Set();
    signals.slice(0, 40).forEach(s => Object.keys(s).forEach(k => { if (k !== "ts" && k !== "ts_ns" && typeof s[k] !== "object") keys.add(k); }));
    const ordered = SIGNAL_KEYS.filter(k => keys.has(k)).concat([...keys].filter(k => !SIGNAL_KEYS.includes(k)));
    for (const k of ordered.slice(0, 8)) {
      cols.push([k, k, (v) => k === "decision" || k === "action"
        ? '<span class="badge ' + (/reject|refuse|block/i.test(String(v)) ? "bad" : "ok") + '">' + FS.esc(FS.fmt(v)) + "</span>"
        : FS.esc(typeof v === "number" ? FS.fmt(v, Number.isInteger(v) ? 0 : 3) : FS.fmt(v))]);
    }
    FS.table($("signals"), signals.slice(0, 40), cols, { empty: "no signals yet (the worker publishes them per decision)" });
  }
  function latencyOf(d) {
    if (!d) return null;
    for (const k of ["tick_to_decision_ms", "latency_ms"]) if (typeof d[k] === "number") return d[k];
    for (const k of ["tick_to_decision_us", "latency_us"]) if (typeof d[k] === "number") return d[k] / 1000;
    for (const k of ["tick_to_decision_ns", "latency_ns"]) if (typeof d[k] === "number") return d[k] / 1e6;
    return null;
  }

  async function load(sym) {
    symbol = sym; midPts = []; latPts = []; trades = []; signals = [];
    const b = await FS.api("/book/" + encodeURIComponent(sym) + "?levels=" + LEVELS);
    $("book-src").textContent = "book from " + b.source + (b.ts ? " at " + b.ts : "");
    ladder(b);
    const t = await FS.api("/trades/" + encodeURIComponent(sym) + "?limit=40");
    trades = t.items; showTrades(); showSignals();
    $("trades-title").textContent = t.source === "worker" ? "Recent trades (worker feed)"
      : "Recent trades (lake, end of " + t.date + ": no trades from the worker yet)";
    midSeries.setData(midPts); latSeries.setData(latPts);
    if (live) live.close();
    live = new FS.Live([{ topics: ["book", "trades", "signals", "fills"], symbols: [sym] }], (items) => {
      let bookSeen = null;
      for (const e of items) {
        if (e.symbol !== symbol) continue;
        ticks++;
        if (e.topic === "book") bookSeen = Object.assign({ ts: e.ts }, e.data);
        else if (e.topic === "trades") { for (const r of [].concat(e.data)) trades.unshift(Object.assign({ ts: e.ts }, r)); trades = trades.slice(0, 200); }
        else if (e.topic === "signals") {
          signals.unshift(Object.assign({ ts: e.ts }, e.data)); signals = signals.slice(0, 200);
          const l = latencyOf(e.data); const tt = FS.toSec(e.ts);
          if (l !== null && tt !== null) pushPt(latPts, tt, l);
        }
      }
      if (bookSeen) { ladder(bookSeen, true); $("book-src").textContent = "book from worker at " + (bookSeen.ts || ""); }
      showTrades(); showSignals();
      midSeries.setData(midPts); latSeries.setData(latPts);
      $("tick-info").textContent = ticks + " live events";
      $("lat-note").textContent = latPts.length ? "" : "the worker's signals carry no latency field (latency_us / tick_to_decision_us) yet";
    });
  }

  FS.api("/instruments?limit=1000").then(r => {
    const sel = $("symbol");
    sel.innerHTML = r.items.map(i => "<option>" + FS.esc(i.symbol) + "</option>").join("");
    const want = FS.qs("symbol");
    if (want && r.items.some(i => i.symbol === want)) sel.value = want;
    sel.onchange = () => load(sel.value).catch(e => FS.showError($("ladder"), e));
    if (sel.value) load(sel.value).catch(e => FS.showError($("ladder"), e));
    else $("ladder").textContent = "no instruments ingested yet";
  }).catch(e => FS.showError($("ladder"), e));
})();
