(function () {
  const reason = FS.qs("reason");
  const msg = document.getElementById("msg");
  if (reason && reason !== "no key") msg.textContent = reason;
  document.getElementById("login").onsubmit = async (e) => {
    e.preventDefault();
    const k = document.getElementById("key").value.trim();
    if (!k) { msg.textContent = "enter a key"; return; }
    const r = await fetch("/api/v1/version", { headers: { "Authorization": "Bearer " + k } });
    if (!r.ok) {
      let m = "HTTP " + r.status;
      try { m = (await r.json()).message; } catch (err) { /* keep the status */ }
      msg.textContent = "refused: " + m;
      return;
    }
    FS.setKey(k);
    const next = FS.qs("next");
    location.href = next && next.startsWith("/dashboard/") ? next : "/dashboard/overview.html";
  };
})();
