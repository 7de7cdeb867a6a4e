/* detak review: keyboard shortcuts (j/k), the verdict form, the lock's heartbeat, the
 * HR/QTc trend of the resident's screenings. Plain JS, no dependencies. */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function typing(ev) {
    var t = ev.target && ev.target.tagName;
    return t === "INPUT" || t === "TEXTAREA" || t === "SELECT";
  }

  // ---- the queue: j/k move the selection, Enter opens
  var rows = Array.prototype.slice.call(document.querySelectorAll("#queue tr.row"));
  var sel = rows.length ? 0 : -1;
  function select(i) {
    if (!rows.length) { return; }
    sel = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, k) { r.classList.toggle("sel", k === sel); });
    rows[sel].scrollIntoView({ block: "nearest" });
  }
  if (rows.length) {
    select(0);
    rows.forEach(function (r, k) {
      r.addEventListener("click", function (ev) {
        if (ev.target.tagName !== "A") { window.location = r.getAttribute("data-href"); }
      });
      r.addEventListener("mouseenter", function () { select(k); });
    });
  }
  document.addEventListener("keydown", function (ev) {
    if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (rows.length) {
      if (ev.key === "j") { select(sel + 1); }
      else if (ev.key === "k") { select(sel - 1); }
      else if (ev.key === "Enter" && sel >= 0) { window.location = rows[sel].getAttribute("data-href"); }
      return;
    }
    var link = ev.key === "j" ? document.getElementById("next") : ev.key === "k" ? document.getElementById("prev") : null;
    if (link) { window.location = link.href; }
  });

  function post(url, body, keepalive) {
    return fetch(url, { method: "POST", credentials: "same-origin", keepalive: !!keepalive,
                        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
                        body: JSON.stringify(body || {}) });
  }

  // ---- the verdict form
  var form = document.getElementById("verdict-form");
  var signed = false;
  var base = form ? form.getAttribute("data-url").replace(/\/verdict$/, "") : null;
  var correct = document.getElementById("correct");
  if (correct) {
    correct.addEventListener("click", function () {
      post(base + "/lock").then(function (r) { return r.json(); }).then(function (j) {
        if (j.mine) { form.hidden = false; correct.hidden = true; heartbeat(); }
        else { correct.insertAdjacentText("afterend", " " + (correct.getAttribute("data-t-locked") || "") + " " + j.by); }
      });
    });
  }
  function heartbeat() {
    setInterval(function () { if (!signed) { post(base + "/lock"); } }, 4 * 60 * 1000);
    window.addEventListener("pagehide", function () { if (!signed) { post(base + "/unlock", {}, true); } });
  }
  if (form && !form.hidden) { heartbeat(); }
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var st = document.getElementById("sign-status");
      var labels = Array.prototype.map.call(form.querySelectorAll('input[name="label"]:checked'),
                                            function (i) { return i.value; });
      var action = (form.querySelector('input[name="action"]:checked') || {}).value || "";
      var body = { labels: labels, action: action, note: form.note.value,
                   password: form.password.value,
                   previous_version: +form.getAttribute("data-previous") };
      st.textContent = "…";
      post(form.getAttribute("data-url"), body).then(function (r) {
        return r.json().then(function (j) { return { ok: r.ok, j: j }; });
      }).then(function (res) {
        form.password.value = "";
        if (res.ok) {
          signed = true;
          st.className = "ok";
          st.textContent = (form.getAttribute("data-t-signed") || "signed") + " v" + res.j.version;
          setTimeout(function () { window.location.reload(); }, 700);
        } else {
          st.className = "err";
          st.textContent = (res.j.error || {}).message || "error";
        }
      });
    });
  }

  // ---- the trend of the resident's screenings: HR and QTc
  var trend = document.getElementById("trend");
  if (trend) {
    var h = JSON.parse(trend.getAttribute("data-history") || "[]");
    if (h.length > 1) {
      var W = 300, H = 90, pad = 22;
      var svg = '<svg viewBox="0 0 ' + W + ' ' + H + '" width="' + W + '" height="' + H + '" id="trend-svg">';
      [["hr_bpm", "#c62828", 40, 140, trend.getAttribute("data-t-hr") || "HR"],
       ["qtc_ms", "#1565c0", 350, 520, "QTc"]].forEach(function (s, si) {
        var pts = [];
        h.forEach(function (r, i) {
          var v = r[s[0]];
          if (typeof v !== "number") { return; }
          var x = pad + i * (W - 2 * pad) / (h.length - 1);
          var y = H - 12 - (Math.min(Math.max(v, s[2]), s[3]) - s[2]) / (s[3] - s[2]) * (H - 24);
          pts.push(x.toFixed(1) + "," + y.toFixed(1));
          svg += '<circle cx="' + x.toFixed(1) + '" cy="' + y.toFixed(1) + '" r="' + (r["this"] ? 3.5 : 2.2) +
                 '" fill="' + s[1] + '"><title>' + s[4] + ' ' + Math.round(v) + '</title></circle>' +
                 '<text x="' + x.toFixed(1) + '" y="' + (y - 5).toFixed(1) + '" font-size="9" text-anchor="middle" fill="' +
                 s[1] + '">' + Math.round(v) + '</text>';
        });
        svg += '<polyline points="' + pts.join(" ") + '" fill="none" stroke="' + s[1] + '" stroke-width="1.2"/>';
        svg += '<text x="' + (4 + si * 60) + '" y="10" font-size="10" fill="' + s[1] + '">' + s[4] + '</text>';
      });
      trend.innerHTML = svg + "</svg>";
    }
  }
})();
