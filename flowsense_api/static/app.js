// FlowSense dashboard: shared helpers (key handling, API calls, live socket, charts, tables).
// Plain browser JavaScript, no build step; charts from the vendored lightweight-charts file.
(function () {
  "use strict";
  const KEY = "flowsense.key";
  const PAGES = [["overview", "Overview"], ["live", "Live"], ["backtests", "Backtests"], ["models", "Models"]];

  function key() { return sessionStorage.getItem(KEY); }
  function setKey(k) { sessionStorage.setItem(KEY, k); }
  function logout() { sessionStorage.removeItem(KEY); location.href = "/dashboard/index.html"; }

  function toLogin(reason) {
    const next = encodeURIComponent(location.pathname + location.search);
    location.href = "/dashboard/index.html?next=" + next + (reason ? "&reason=" + encodeURIComponent(reason) : "");
  }

  async function api(path, opts) {
    const k = key();
    if (!k) { toLogin("no key"); throw new Error("no API key"); }
    const init = Object.assign({ headers: {} }, opts || {});
    init.headers = Object.assign({ "Authorization": "Bearer " + k }, init.headers);
    if (init.body && typeof init.body !== "string") {
      init.body = JSON.stringify(init.body); init.headers["Content-Type"] = "application/json";
    }
    const r = await fetch("/api/v1" + path, init);
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (r.status === 401) { toLogin((body && body.message) || "key refused"); throw new Error("unauthorized"); }
    if (!r.ok) {
      const err = new Error((body && body.message) || ("HTTP " + r.status));
      err.status = r.status; err.body = body; throw err;
    }
    return body;
  }

  // ---- page frame ------------------------------------------------------------------------------
  function frame(active) {
    if (!key()) { toLogin("no key"); return false; }
    const h = document.createElement("header");
    h.innerHTML = '<span class="brand">FlowSense</span><nav></nav><div class="right">' +
      '<span id="ws-status" class="badge">live: off</span><span id="key-id"></span>' +
      '<button id="logout">Log out</button></div>';
    const nav = h.querySelector("nav");
    for (const [id, label] of PAGES) {
      const a = document.createElement("a");
      a.href = "/dashboard/" + id + ".html"; a.textContent = label; a.id = "nav-" + id;
      if (id === active) a.className = "active";
      nav.appendChild(a);
    }
    document.body.prepend(h);
    h.querySelector("#logout").onclick = logout;
    api("/version").then(v => { h.querySelector("#key-id").textContent = "key " + v.key.id + " (" + v.key.scope + ")"; })
      .catch(() => {});
    return true;
  }

  // ---- formatting ------------------------------------------------------------------------------
  function fmt(v, digits) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") {
      if (!isFinite(v)) return "–";
      const d = digits === undefined ? (Number.isInteger(v) || Math.abs(v) >= 1000 ? 0 : Math.abs(v) >= 1 ? 2 : 4) : digits;
      return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
    }
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  const TIME_KEY = /^(ts|time|updated|since|heartbeat|ts_submit|ts_done)$/;
  function when(v) {
    const t = toSec(v);
    return t === null ? fmt(v) : new Date(t * 1000).toISOString().replace("T", " ").slice(0, 23);
  }
  function pct(v) { return (v === null || v === undefined || !isFinite(v)) ? "–" : (100 * v).toFixed(2) + "%"; }
  function signClass(v) { return typeof v === "number" ? (v > 0 ? "pos" : v < 0 ? "neg" : "") : ""; }
  function esc(s) { return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }

  // A table from a list of objects; columns: [[field, label, formatter?]] or null for every field.
  function table(el, rows, columns, opts) {
    opts = opts || {};
    rows = rows || [];
    if (!columns) {
      const seen = new Set();
      rows.forEach(r => Object.keys(r || {}).forEach(k => seen.add(k)));
      columns = [...seen].filter(k => typeof (rows.find(r => r && r[k] !== null && r[k] !== undefined) || {})[k] !== "object")
        .map(k => [k, k]);
    }
    let html = "<table><thead><tr>" + columns.map(c => {
      const num = rows.length && typeof (rows[0] || {})[c[0]] === "number";
      return '<th class="' + (num ? "num" : "") + '">' + esc(c[1]) + "</th>";
    }).join("") + "</tr></thead><tbody>";
    if (!rows.length) html += '<tr><td class="dim" colspan="' + columns.length + '">' + esc(opts.empty || "nothing yet") + "</td></tr>";
    rows.forEach((r, i) => {
      html += '<tr data-i="' + i + '" class="' + (opts.onclick ? "clickable" : "") + '">' + columns.map(c => {
        const v = (r || {})[c[0]];
        const txt = c[2] ? c[2](v, r) : esc(typeof v === "number" && TIME_KEY.test(c[0]) ? when(v) : fmt(v));
        const cls = (typeof v === "number" ? "num " : "") + (c[3] ? signClass(v) : "");
        return '<td class="' + cls + '">' + txt + "</td>";
      }).join("") + "</tr>";
    });
    el.innerHTML = html + "</tbody></table>";
    if (opts.onclick) el.querySelectorAll("tbody tr.clickable").forEach(tr => {
      tr.onclick = () => opts.onclick(rows[+tr.dataset.i], tr);
    });
  }

  // ---- charts ---------------------------------------------------------------------------------
  const COLORS = ["#4c9aff", "#f0b429", "#26a69a", "#ef5350", "#ab47bc", "#8d6e63", "#78909c"];
  function chart(el, opts) {
    const c = LightweightCharts.createChart(el, Object.assign({
      autoSize: true,
      layout: { background: { type: "solid", color: "#171e26" }, textColor: "#8b98a8", attributionLogo: false },
      grid: { vertLines: { color: "#1f2935" }, horzLines: { color: "#1f2935" } },
      rightPriceScale: { borderColor: "#273241" },
      timeScale: { borderColor: "#273241", timeVisible: true, secondsVisible: true },
      crosshair: { mode: 0 },
    }, opts || {}));
    return c;
  }
  function line(c, color, opts) {
    return c.addSeries(LightweightCharts.LineSeries, Object.assign({ color: color || COLORS[0], lineWidth: 2,
      priceLineVisible: false }, opts || {}));
  }
  function area(c, color) {
    return c.addSeries(LightweightCharts.AreaSeries, { lineColor: color, topColor: color + "55", bottomColor: color + "05",
      lineWidth: 1, priceLineVisible: false });
  }
  // points with strictly increasing whole-second times (the chart's time unit): the last value per second
  function points(ts, vs) {
    const out = [];
    for (let i = 0; i < ts.length; i++) {
      const t = Math.floor(ts[i]); const v = vs[i];
      if (v === null || v === undefined || !isFinite(v)) continue;
      if (out.length && out[out.length - 1].time >= t) { if (out[out.length - 1].time === t) out[out.length - 1].value = v; continue; }
      out.push({ time: t, value: v });
    }
    return out;
  }
  function drawdown(pts) {
    let peak = -Infinity;
    return pts.map(p => { peak = Math.max(peak, p.value); return { time: p.time, value: peak > 0 ? 100 * (p.value / peak - 1) : 0 }; });
  }
  function toSec(t) {
    if (t === null || t === undefined) return null;
    if (typeof t === "number") return t > 1e14 ? t / 1e9 : t > 1e11 ? t / 1e3 : t;
    const d = Date.parse(t); return isNaN(d) ? null : d / 1000;
  }

  // ---- the live socket: subscribe, reconnect with resume ---------------------------------------
  class Live {
    constructor(subs, onEvents) {
      this.subs = subs; this.onEvents = onEvents; this.cursor = null; this.closed = false; this.delay = 500;
      this.connect();
    }
    status(text, cls) { const el = document.getElementById("ws-status"); if (el) { el.textContent = "live: " + text; el.className = "badge " + (cls || ""); } }
    connect() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = this.ws = new WebSocket(proto + "//" + location.host + "/ws");
      ws.onopen = () => { ws.send(JSON.stringify({ op: "auth", key: key() })); };
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        if (msg.type === "hello") {
          this.delay = 500; this.status("on", "ok");
          for (const s of this.subs) {
            const sub = Object.assign({ op: "subscribe" }, s);
            if (this.cursor !== null) sub.cursor = this.cursor;
            ws.send(JSON.stringify(sub));
          }
          if (this.cursor === null) this.cursor = msg.cursor;
        } else if (msg.type === "events" || msg.type === "snapshot") {
          if (msg.type === "events") this.cursor = Math.max(this.cursor || 0, msg.cursor);
          this.onEvents(msg.items, msg.type);
        } else if (msg.type === "gap") {
          this.status("gap", "warn");
        } else if (msg.type === "error" && msg.error === "unauthorized") {
          this.closed = true; toLogin(msg.message);
        }
      };
      ws.onclose = (e) => {
        this.status("reconnecting", "warn");
        if (this.closed || e.code === 4401) return;
        setTimeout(() => this.connect(), this.delay); this.delay = Math.min(this.delay * 2, 8000);
      };
    }
    close() { this.closed = true; if (this.ws) this.ws.close(); }
  }

  function qs(name) { return new URLSearchParams(location.search).get(name); }
  function showError(el, e) { el.innerHTML = '<span class="error">' + esc(e.message || e) + "</span>"; }

  window.FS = { when, key, setKey, logout, api, frame, fmt, pct, esc, signClass, table, chart, line, area, points,
    drawdown, toSec, Live, qs, showError, COLORS };
})();
