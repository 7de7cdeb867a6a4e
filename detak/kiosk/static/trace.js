// Live ECG trace of the kiosk: server-sent events from /record/ID/events drawn on a canvas.
(function () {
  "use strict";
  var canvas = document.getElementById("trace");
  if (!canvas) { return; }
  var ctx = canvas.getContext("2d");
  var samples = [], hz = 50, seconds = 10;
  var leadoff = document.getElementById("leadoff");
  var names = document.getElementById("leadoff-names");
  var bar = document.getElementById("progress");
  var title = document.getElementById("title");
  function draw() {
    var w = canvas.width, h = canvas.height, n = hz * seconds;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#111"; ctx.lineWidth = 2; ctx.beginPath();
    for (var i = 0; i < samples.length && i < n; i++) {
      var x = i * w / n, y = h / 2 - samples[i] * h / 4;
      y = Math.max(2, Math.min(h - 2, y));
      if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
    }
    ctx.stroke();
  }
  var es = new EventSource(canvas.dataset.events);
  es.onmessage = function (ev) {
    var m = JSON.parse(ev.data);
    hz = m.hz || hz;
    for (var i = 0; i < m.samples.length; i++) { samples.push(m.samples[i]); }
    bar.value = m.progress;
    if (m.leads_off && m.leads_off.length) {
      leadoff.hidden = false; names.textContent = m.leads_off.join(", ");
    } else { leadoff.hidden = true; }
    var conn = document.getElementById("conn"), bat = document.getElementById("battery");
    conn.textContent = m.connected ? conn.dataset.on : conn.dataset.off;
    if (m.battery !== null && m.battery !== undefined) {
      bat.textContent = " · " + bat.dataset.label + " " + m.battery + " %";
    }
    if (m.state === "screening") { title.textContent = canvas.dataset.screening; }
    draw();
    if (m.state === "done" || m.state === "failed") {
      es.close(); window.location.href = canvas.dataset.result;
    }
    if (m.state === "cancelled") { es.close(); }
  };
})();
