(function () {
  if (!FS.frame("live")) return;
  const $ = (id) => document.getElementById(id);
  const LEVELS = 10;
  const midChart = FS.chart($("mid")), latChart = FS.chart($("latency")), pupChart = FS.chart($("pup"));
  const midSeries = FS.line(midChart, FS.COLORS[0]);
  const p50Series = FS.line(latChart, FS.COLORS[2], { lineWidth: 1, title: "p50" });
  const p99Series = FS.line(latChart, FS.COLORS[3], { lineWidth: 1, title: "p99" });
  const pupSeries = FS.line(pupChart, FS.COLORS[4], { lineWidth: 1 });
  let midPts = [], p50Pts = [], p99Pts = [], pupPts = [], trades = [], signals = [], live = null, symbol = null, ticks = 0;
  let tradesFrom = "lake", lastTick = null;

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
  // one point per whole second (the chart's time unit), times strictly increasing; the last value wins
  function pushPt(arr, t, v) {
    if (v === null || v === undefined || !isFinite(v)) return;
    const p = { time: Math.floor(t), value: v };
    if (!arr.length || p.time > arr[arr.length - 1].time) arr.push(p);
    else if (p.time === arr[arr.length - 1].time) arr[arr.length - 1].value = v;
    if (arr.length > 5000) arr.splice(0, arr.length - 5000);
  }
  const time = (v) => FS.esc(String(v || "").slice(11, 23));
  function lat(us) {
    if (typeof us !== "number" || !isFinite(us)) return "–";
    if (us < 1000) return us.toFixed(0) + " µs";
    if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : us < 1e5 ? 1 : 0) + " ms";
    return (us / 1e6).toFixed(2) + " s";
  }
  function showTrades() {
    $("trades-title").textContent = tradesFrom === "worker" ? "Recent trades (worker feed)" : tradesFrom;
    FS.table($("trades"), trades.slice(0, 40), [["ts", "time", time],
      ["price", "price", v => FS.fmt(v, 2)], ["size", "size", v => FS.fmt(v, 0)],
      ["aggressor_side", "aggressor", v => v > 0 ? '<span class="pos">buy</span>' : v < 0 ? '<span class="neg">sell</span>' : "–"]],
      { empty: "no trades" });
  }
  function order(s) {
    if (s.kind === "model_swap") return '<span class="badge warn">model ' + FS.esc(s.model || s.model_version) + "</span>";
    if (typeof s.side !== "number") return '<span class="dim">hold (pos ' + FS.fmt(s.position, 0) + ")</span>";
    return '<span class="' + (s.side > 0 ? "pos" : "neg") + '">' + (s.side > 0 ? "buy " : "sell ") + FS.fmt(s.qty, 0) + "</span>"
      + (s.type && s.type !== "market" ? " " + FS.esc(s.type) + " " + FS.fmt(s.price, 2) : "");
  }
  function risk(s) {
    if (!s.risk) return s.kind === "tick" ? '<span class="dim">' + FS.esc(s.state || "") + "</span>" : "–";
    if (s.risk === "accepted") return '<span class="badge ok">accepted</span>';
    if (s.risk === "scaled") return '<span class="badge warn">scaled ×' + FS.fmt(s.scale, 2) + "</span> " + FS.esc(s.reason || "");
    return '<span class="badge bad">rejected</span> ' + FS.esc(s.reason || "");
  }
  function showSignals() {
    FS.table($("signals"), signals.slice(0, 60), [
      ["ts", "tick time", time],
      ["p_up", "P(up)", v => typeof v === "number" ? v.toFixed(4) : '<span class="dim">–</span>'],
      ["model", "model", v => v ? FS.esc(v) : '<span class="dim">rule</span>'],
      ["side", "intended order", (v, s) => order(s)], ["risk", "risk decision", (v, s) => risk(s)],
      ["latency_us", "tick→decision", v => lat(v)]],
      { empty: "no decisions yet (the worker publishes one per order intent and a sampled tick)" });
    const n = { accepted: 0, scaled: 0, rejected: 0 };
    signals.forEach(s => { if (s.risk in n) n[s.risk]++; });
    const model = (signals.find(s => s.model) || {}).model;
    $("decision-summary").innerHTML = '<span class="dim">last ' + signals.length + " decisions:</span>"
      + '<span class="badge ok">' + n.accepted + " accepted</span>"
      + '<span class="badge warn">' + n.scaled + " scaled</span>"
      + '<span class="badge bad">' + n.rejected + " rejected</span>"
      + '<span class="dim">' + (model ? "model " + FS.esc(model) : "rule strategy (no model)") + "</span>";
  }
  function showLatency() {
    const t = lastTick;
    $("lat-p50").textContent = t ? lat(t.lat_p50_us) : "–";
    $("lat-p99").textContent = t ? lat(t.lat_p99_us) : "–";
    $("lat-last").textContent = t ? lat(t.latency_us) : "–";
    $("lat-note").textContent = t ? "over the last " + FS.fmt(t.lat_n, 0) + " ticks (worker-side, from the batch's arrival to the risk decision); chart in ms"
      : "no latency from the worker yet";
    p50Series.setData(p50Pts); p99Series.setData(p99Pts);
  }
  function addSignal(s, front) {
    if (front) { signals.unshift(s); signals = signals.slice(0, 300); }
    const tt = FS.toSec(s.ts);
    if (s.kind === "tick") {
      if (front || !lastTick) lastTick = s;
      if (tt !== null) { pushPt(p50Pts, tt, s.lat_p50_us / 1000); pushPt(p99Pts, tt, s.lat_p99_us / 1000); }
    }
    if (tt !== null && typeof s.p_up === "number") pushPt(pupPts, tt, s.p_up);
  }

  async function load(sym) {
    symbol = sym; midPts = []; p50Pts = []; p99Pts = []; pupPts = []; trades = []; signals = []; lastTick = null;
    const b = await FS.api("/book/" + encodeURIComponent(sym) + "?levels=" + LEVELS);
    $("book-src").textContent = "book from " + b.source + (b.ts ? " at " + b.ts : "");
    ladder(b);
    const t = await FS.api("/trades/" + encodeURIComponent(sym) + "?limit=40");
    trades = t.items;
    tradesFrom = t.source === "worker" ? "worker" : "Recent trades (lake, end of " + t.date + ": no trades from the worker yet)";
    try {  // initial fill: the worker's recent decisions (newest first), oldest pushed first to the charts
      const s = await FS.api("/signals/" + encodeURIComponent(sym) + "?limit=300");
      signals = s.items.slice();
      for (const x of s.items.slice().reverse()) addSignal(x, false);
      lastTick = s.items.find(x => x.kind === "tick") || null;
    } catch (e) { if (e.status !== 503) throw e; }
    showTrades(); showSignals(); showLatency();
    midSeries.setData(midPts); pupSeries.setData(pupPts);
    if (live) live.close();
    live = new FS.Live([{ topics: ["book", "trades", "signals", "fills"], symbols: [sym] }], (items) => {
      let bookSeen = null;
      for (const e of items) {
        if (e.symbol !== symbol) continue;
        ticks++;
        if (e.topic === "book") bookSeen = Object.assign({ ts: e.ts }, e.data);
        else if (e.topic === "trades") {
          if (tradesFrom !== "worker") { tradesFrom = "worker"; trades = []; }
          for (const r of [].concat(e.data)) trades.unshift(Object.assign({ ts: e.ts }, r));
          trades = trades.slice(0, 200);
        } else if (e.topic === "signals") addSignal(Object.assign({ ts: e.ts, cursor: e.cursor }, e.data), true);
      }
      if (bookSeen) { ladder(bookSeen, true); $("book-src").textContent = "book from worker at " + (bookSeen.ts || ""); }
      showTrades(); showSignals(); showLatency();
      midSeries.setData(midPts); pupSeries.setData(pupPts);
      $("tick-info").textContent = ticks + " live events";
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
