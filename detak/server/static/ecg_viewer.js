/* detak review: the 12-lead ECG viewer (plain JS, no dependencies, no build step).
 *
 * Draws the WFDB samples (fetched as JSON in mV) as SVG on a true paper grid: the SVG's size is
 * given in CSS millimetres and its viewBox in millimetres, so 1 small square is 1 mm at
 * 25 mm/s and 10 mm/mV (zoom: 50 mm/s, 20 mm/mV). Layout: 3 rows x 4 columns of 2.5 s
 * (I aVR V1 V4 / II aVL V2 V5 / III aVF V3 V6) and a 10 s rhythm strip of lead II, each row
 * starting with a 1 mV calibration pulse. Overlays: detak's measured boundaries (P on/off,
 * QRS on/off, T off around each beat), the MI model's CAM (one curve over time), calipers
 * (drag between two points: the time in ms, the amplitude in mV and the rate).
 */
(function () {
  "use strict";
  var el = document.getElementById("ecg");
  if (!el) { return; }
  var NS = "http://www.w3.org/2000/svg";
  var LAYOUT = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]];
  var RHYTHM = "II";
  var state = { speed: 25, gain: 10, cam: false, markers: true, caliper: false };
  var data = null;
  var fid = JSON.parse(el.getAttribute("data-fiducials") || "{}") || {};
  var cam = JSON.parse(el.getAttribute("data-cam") || "null");
  var tMs = el.getAttribute("data-t-ms") || "ms";
  el.textContent = el.getAttribute("data-t-loading") || "…";

  function fmt(v, d) { return (Math.round(v * Math.pow(10, d)) / Math.pow(10, d)).toString(); }

  function camCurve() {
    // [{t0, fs, values}] normalised to the largest value over all windows
    if (!cam || !cam.mi || !cam.mi.length) { return null; }
    var max = 0, out = [];
    cam.mi.forEach(function (row) { row.forEach(function (v) { if (v > max) { max = v; } }); });
    if (max <= 0) { return null; }   // an empty map: nothing to draw (the page says so)
    cam.mi.forEach(function (row, i) {
      out.push({ t0: (cam.window_starts_s || [0])[i] || 0, fs: cam.fs || 100,
                 values: row.map(function (v) { return v / max; }) });
    });
    return out;
  }

  function build() {
    var sp = state.speed, g = state.gain;
    var pulse = 0.2 * sp, left = pulse + 5, dur = 10, colW = 2.5 * sp;
    var rowH = 3 * g, top = 5, rows = 4;
    var W = Math.ceil((left + dur * sp + 5) / 5) * 5, H = top + rows * rowH;
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", W + "mm");
    svg.setAttribute("height", H + "mm");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("id", "ecg-svg");
    svg.setAttribute("data-speed", sp);
    svg.setAttribute("data-gain", g);
    var parts = [];
    parts.push('<defs><pattern id="g1" width="1" height="1" patternUnits="userSpaceOnUse">' +
      '<path d="M1 0H0V1" fill="none" stroke="#f4b6b6" stroke-width="0.06"/></pattern>' +
      '<pattern id="g5" width="5" height="5" patternUnits="userSpaceOnUse">' +
      '<rect width="5" height="5" fill="url(#g1)"/>' +
      '<path d="M5 0H0V5" fill="none" stroke="#e07a7a" stroke-width="0.16"/></pattern></defs>');
    parts.push('<rect width="' + W + '" height="' + H + '" fill="#fff8f8"/>');
    parts.push('<rect width="' + W + '" height="' + H + '" fill="url(#g5)"/>');
    var fs = data.fs, idx = {};
    data.leads.forEach(function (name, i) { idx[name] = i; });
    var curve = camCurve();
    var camParts = [], mkParts = [], traceParts = [], labelParts = [];

    function seg(lead, t0, t1, x0, base) {
      var k = idx[lead];
      if (k === undefined) { return; }
      var sig = data.signal[k], s0 = Math.max(0, Math.floor(t0 * fs)),
          s1 = Math.min(sig.length, Math.ceil(t1 * fs)), pts = [], d = "";
      for (var s = s0; s < s1; s++) {
        var v = sig[s];
        if (v === null) { if (pts.length) { d += "M" + pts.join("L"); pts = []; } continue; }
        pts.push(fmt(x0 + (s / fs - t0) * sp, 2) + " " + fmt(base - v * g, 2));
      }
      if (pts.length) { d += "M" + pts.join("L"); }
      traceParts.push('<path d="' + d + '" fill="none" stroke="#111" stroke-width="0.28" ' +
                      'stroke-linejoin="round" data-lead="' + lead + '"/>');
      labelParts.push('<text x="' + fmt(x0 + 1, 2) + '" y="' + fmt(base - rowH * 0.36, 2) +
                      '" font-size="3.2" fill="#0f3d68">' + lead + '</text>');
      if (curve) {
        curve.forEach(function (w) {
          var bin = Math.max(1, Math.round(0.04 * w.fs));
          for (var j = 0; j < w.values.length; j += bin) {
            var t = w.t0 + j / w.fs;
            if (t < t0 || t >= t1) { continue; }
            var m = 0;
            for (var q = j; q < Math.min(j + bin, w.values.length); q++) { m = Math.max(m, w.values[q]); }
            if (m < 0.05) { continue; }
            camParts.push('<rect x="' + fmt(x0 + (t - t0) * sp, 2) + '" y="' + fmt(base - rowH / 2, 2) +
              '" width="' + fmt(bin / w.fs * sp, 2) + '" height="' + rowH + '" fill="#d00" ' +
              'fill-opacity="' + fmt(0.45 * m, 3) + '"/>');
          }
        });
      }
      var bounds = (fid.boundaries_ms || {})[lead] || (fid.boundaries_ms || {}).global || {};
      var colors = { p_on: "#1565c0", p_off: "#1565c0", qrs_on: "#2e7d32", qrs_off: "#2e7d32",
                     t_off: "#6a1b9a" };
      (fid.beats_s || []).forEach(function (b) {
        Object.keys(colors).forEach(function (key) {
          if (typeof bounds[key] !== "number") { return; }
          var t = b + bounds[key] / 1000;
          if (t < t0 || t >= t1) { return; }
          var x = fmt(x0 + (t - t0) * sp, 2);
          mkParts.push('<line x1="' + x + '" x2="' + x + '" y1="' + fmt(base + rowH * 0.32, 2) +
            '" y2="' + fmt(base + rowH * 0.42, 2) + '" stroke="' + colors[key] +
            '" stroke-width="0.25" data-kind="' + key + '"/>');
        });
      });
    }

    function pulseAt(base) {
      traceParts.push('<path d="M1 ' + base + 'H2.5V' + fmt(base - g, 2) + 'H' + fmt(2.5 + pulse, 2) +
                      'V' + base + 'H' + fmt(left - 1, 2) + '" fill="none" stroke="#111" stroke-width="0.28"/>');
    }

    LAYOUT.forEach(function (row, r) {
      var base = top + rowH * (r + 0.5);
      pulseAt(base);
      row.forEach(function (lead, c) {
        var t0 = c * 2.5, x0 = left + c * colW;
        seg(lead, t0, t0 + 2.5, x0, base);
        if (c > 0) {
          traceParts.push('<line x1="' + x0 + '" x2="' + x0 + '" y1="' + fmt(base - 3, 2) + '" y2="' +
                          fmt(base + 3, 2) + '" stroke="#111" stroke-width="0.3"/>');
        }
      });
    });
    var rbase = top + rowH * 3.5;
    pulseAt(rbase);
    seg(RHYTHM, 0, dur, left, rbase);
    labelParts.push('<text x="' + fmt(left + 8, 2) + '" y="' + fmt(rbase - rowH * 0.36, 2) +
                    '" font-size="2.6" fill="#555">' + (el.getAttribute("data-t-rhythm") || "") + '</text>');
    labelParts.push('<text x="' + fmt(W - 2, 2) + '" y="' + fmt(H - 1.5, 2) + '" font-size="2.6" ' +
                    'fill="#555" text-anchor="end">' + sp + ' mm/s · ' + g + ' mm/mV</text>');
    svg.innerHTML = parts.join("") +
      '<g id="cam-layer"' + (state.cam ? "" : ' style="display:none"') + '>' + camParts.join("") + '</g>' +
      '<g id="marker-layer"' + (state.markers ? "" : ' style="display:none"') + '>' + mkParts.join("") + '</g>' +
      '<g id="traces">' + traceParts.join("") + '</g><g>' + labelParts.join("") + '</g>' +
      '<g id="caliper-layer"></g>';
    svg.geom = { left: left, sp: sp, g: g };
    return svg;
  }

  function render() {
    el.innerHTML = "";
    var svg = build();
    el.appendChild(svg);
    calipers(svg);
  }

  function toSvg(svg, ev) {
    var p = svg.createSVGPoint();
    p.x = ev.clientX; p.y = ev.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }

  function calipers(svg) {
    var layer = svg.querySelector("#caliper-layer"), start = null;
    var out = document.getElementById("caliper-readout");
    svg.style.cursor = state.caliper ? "crosshair" : "";
    function draw(a, b) {
      var ms = Math.abs(b.x - a.x) / state.speed * 1000, mv = (a.y - b.y) / state.gain;
      var y = a.y;
      layer.innerHTML = '<line x1="' + a.x + '" x2="' + a.x + '" y1="' + (y - 8) + '" y2="' + (y + 8) +
        '" stroke="#0057d9" stroke-width="0.3"/><line x1="' + b.x + '" x2="' + b.x + '" y1="' + (b.y - 8) +
        '" y2="' + (b.y + 8) + '" stroke="#0057d9" stroke-width="0.3"/><line x1="' + a.x + '" x2="' +
        b.x + '" y1="' + y + '" y2="' + y + '" stroke="#0057d9" stroke-width="0.25" stroke-dasharray="1 0.6"/>' +
        '<text x="' + ((a.x + b.x) / 2) + '" y="' + (y - 2) + '" font-size="3.2" fill="#0057d9" ' +
        'text-anchor="middle" font-weight="bold">' + Math.round(ms) + ' ' + tMs + '</text>';
      if (out) {
        out.textContent = "Δt " + Math.round(ms) + " " + tMs + " · ΔV " + fmt(mv, 2) + " mV" +
          (ms > 0 ? " · " + Math.round(60000 / ms) + " /min" : "");
        out.setAttribute("data-ms", Math.round(ms));
      }
    }
    svg.addEventListener("pointerdown", function (ev) {
      if (!state.caliper) { return; }
      ev.preventDefault();
      start = toSvg(svg, ev);
      svg.setPointerCapture(ev.pointerId);
    });
    svg.addEventListener("pointermove", function (ev) {
      if (state.caliper && start) { draw(start, toSvg(svg, ev)); }
    });
    svg.addEventListener("pointerup", function (ev) {
      if (state.caliper && start) { draw(start, toSvg(svg, ev)); start = null; }
    });
  }

  function relevance() {
    var box = document.getElementById("relevance");
    if (!box) { return; }
    if (!data.relevance) { box.textContent = "—"; return; }
    bars(box, data.relevance);
  }

  function lrpButton() {
    var btn = document.getElementById("lrp-btn"), box = document.getElementById("relevance-lrp");
    if (!btn || !box) { return; }
    btn.addEventListener("click", function () {
      btn.disabled = true;
      btn.textContent = btn.getAttribute("data-t-wait") || "…";
      fetch(btn.getAttribute("data-url"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          box.hidden = false;
          if (!j.leads) { box.textContent = (j.error || {}).message || "error"; return; }
          bars(box, j);
          var note = document.createElement("small");
          note.textContent = (box.getAttribute("data-t-source") || "").replace("{composite}", j.source);
          box.appendChild(note);
          btn.hidden = true;
        });
    });
  }

  function bars(box, rel) {
    var leads = rel.leads, names = Object.keys(leads), max = 0;
    names.forEach(function (n) { max = Math.max(max, leads[n]); });
    box.innerHTML = names.map(function (n) {
      var w = max > 0 ? leads[n] / max * 100 : 0;
      return '<div class="rel" data-lead="' + n + '"><span class="rn">' + n + '</span><span class="rb">' +
        '<span style="width:' + fmt(w, 1) + '%"></span></span><span class="rv">' +
        Math.round(leads[n] * 100) + ' %</span></div>';
    }).join("");
  }

  function wire() {
    document.querySelectorAll("button[data-speed]").forEach(function (b) {
      b.addEventListener("click", function () {
        state.speed = +b.getAttribute("data-speed");
        document.querySelectorAll("button[data-speed]").forEach(function (o) { o.classList.toggle("on", o === b); });
        render();
      });
    });
    document.querySelectorAll("button[data-gain]").forEach(function (b) {
      b.addEventListener("click", function () {
        state.gain = +b.getAttribute("data-gain");
        document.querySelectorAll("button[data-gain]").forEach(function (o) { o.classList.toggle("on", o === b); });
        render();
      });
    });
    var camT = document.getElementById("cam-toggle"), mk = document.getElementById("marker-toggle"),
        cal = document.getElementById("caliper-toggle");
    if (camT) {
      camT.disabled = !camCurve();
      camT.addEventListener("change", function () {
        state.cam = camT.checked;
        var l = document.getElementById("cam-layer");
        if (l) { l.style.display = state.cam ? "" : "none"; }
      });
    }
    if (mk) {
      mk.addEventListener("change", function () {
        state.markers = mk.checked;
        var l = document.getElementById("marker-layer");
        if (l) { l.style.display = state.markers ? "" : "none"; }
      });
    }
    if (cal) {
      cal.addEventListener("change", function () {
        state.caliper = cal.checked;
        var svg = document.getElementById("ecg-svg");
        if (svg) { svg.style.cursor = state.caliper ? "crosshair" : ""; }
      });
    }
  }

  fetch(el.getAttribute("data-samples"), { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
    .then(function (d) { data = d; render(); relevance(); wire(); lrpButton(); el.setAttribute("data-ready", "1"); })
    .catch(function (e) { el.textContent = String(e); });
})();
