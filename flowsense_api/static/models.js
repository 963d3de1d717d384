(function () {
  if (!FS.frame("models")) return;
  const $ = (id) => document.getElementById(id);
  const aliasBadges = (a) => (a || []).map(x => '<span class="badge ' + FS.esc(x) + '">' + FS.esc(x) + "</span>").join("");
  let current = null;

  async function models() {
    const r = await FS.api("/models?limit=1000");
    FS.table($("models"), r.items, [["name", "model"], ["latest_version", "latest version"],
      ["aliases", "aliases", v => Object.entries(v || {}).map(([a, ver]) => '<span class="badge ' + FS.esc(a) + '">' + FS.esc(a) + " → v" + FS.esc(ver) + "</span>").join("") || "–"],
      ["description", "description"]],
      { empty: "no registered models yet (flowsense train ...)", onclick: (m) => model(m.name) });
    if (r.items.length) await model(FS.qs("model") || r.items[0].name);
  }

  function metricCols(rows) {
    const seen = new Set();
    rows.forEach(r => Object.entries(r.metrics || {}).forEach(([k, v]) => { if (typeof v === "number") seen.add(k); }));
    return [...seen].slice(0, 8);
  }

  async function model(name) {
    current = name;
    const m = await FS.api("/models/" + encodeURIComponent(name));
    $("v-title").textContent = "Versions of " + name;
    const mcols = metricCols(m.versions);
    const rows = m.versions.map(v => Object.assign({ version: v.version, aliases: v.aliases, status: v.status, run_id: v.run_id }, v.metrics));
    FS.table($("versions"), rows, [["version", "version", v => "v" + v], ["aliases", "aliases", aliasBadges], ["status", "status"]]
      .concat(mcols.map(k => [k, k, v => FS.fmt(v, 4)]))
      .concat([["version", "", v => '<button data-v="' + v + '">make champion</button>']]));
    $("versions").querySelectorAll("button[data-v]").forEach(b => { b.onclick = () => promote(name, +b.dataset.v); });
    const pick = (ver) => m.versions.find(v => String(v.version) === String(ver));
    const ch = pick(m.champion), chal = pick(m.challenger);
    const cc = [ch && Object.assign({ role: "champion", version: ch.version }, ch.metrics), chal && Object.assign({ role: "challenger", version: chal.version }, chal.metrics)].filter(Boolean);
    FS.table($("cc"), cc, [["role", "role", v => '<span class="badge ' + v + '">' + v + "</span>"], ["version", "version", v => "v" + v]]
      .concat(mcols.map(k => [k, k, v => FS.fmt(v, 4)])), { empty: "no champion or challenger alias set" });
    try {
      const ev = await FS.api("/models/" + encodeURIComponent(name) + "/evaluation");
      $("ev-title").textContent = "Evaluation of v" + ev.version + " vs baselines";
      FS.table($("eval"), ev.table, null, { empty: "no evaluation table logged for this version" });
    } catch (e) { FS.showError($("eval"), e); }
  }

  async function promote(name, version) {
    try {
      const r = await FS.api("/admin/models/" + encodeURIComponent(name) + "/promote", { method: "POST", body: { version: version, alias: "champion" } });
      $("promote-msg").textContent = "champion of " + name + " is now v" + r.version + (r.previous ? " (was v" + r.previous + ")" : "");
      await model(name);
    } catch (e) {
      $("promote-msg").textContent = e.status === 403 ? "promotion needs an admin key: " + e.message : e.message;
    }
  }

  models().catch(e => FS.showError($("models"), e));
})();
