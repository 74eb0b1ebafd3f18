// ocrbatch dashboard: a few functions over the API (cookie auth; changes carry the
// X-Ocrbatch-CSRF header). Text from the store goes in with textContent, never as HTML.
"use strict";
var ocrbatch = (function () {
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function num(v, d) { return v === null || v === undefined ? "-" : Number(v).toFixed(d); }
  function eta(s) {
    if (s === null || s === undefined) return "-";
    if (s >= 3600) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    if (s >= 60) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.round(s) + " s";
  }
  function get(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { location.href = "/login"; throw new Error("login"); }
      return r.json();
    });
  }
  function bar(percent) {
    var outer = el("div", null, "progress"), inner = el("div");
    inner.style.width = percent + "%";
    outer.appendChild(inner);
    return outer;
  }

  function jobsList() {
    var body = document.querySelector("#jobs tbody");
    function row(j) {
      var tr = el("tr", null, "st-" + j.status);
      tr.dataset.job = j.job;
      tr.appendChild(el("td", j.job));
      var name = el("td"), a = el("a", j.name);
      a.href = "/jobs/" + j.job; name.appendChild(a); tr.appendChild(name);
      tr.appendChild(el("td", j.status, "status"));
      var b = el("td", null, "bar"); b.appendChild(bar(j.percent));
      b.appendChild(el("span", j.percent + "%", "pct")); tr.appendChild(b);
      tr.appendChild(el("td", j.pages_done + "/" + j.pages_total, "pages"));
      tr.appendChild(el("td", j.pages_failed, "failed"));
      tr.appendChild(el("td", num(j.pages_per_s, 2), "rate"));
      tr.appendChild(el("td", eta(j.eta_s), "eta"));
      tr.appendChild(el("td", j.priority));
      return tr;
    }
    function tick() {
      get("/api/v1/jobs?limit=50").then(function (d) {
        var rows = d.jobs.map(row);
        body.replaceChildren.apply(body, rows);
      }).catch(function () {}).finally(function () { setTimeout(tick, 1000); });
    }
    setTimeout(tick, 1000);
  }

  function jobPage() {
    var box = document.getElementById("job"), id = box.dataset.job, csrf = box.dataset.csrf;
    var api = "/api/v1/jobs/" + id, points = [];
    function show(d) {
      document.getElementById("bar").style.width = d.percent + "%";
      document.getElementById("status").textContent = d.status;
      document.getElementById("pages").textContent = d.pages_done + "/" + d.pages_total + " (" + d.percent + "%)";
      document.getElementById("failed").textContent = d.pages_failed + " pages, " + d.documents_failed + " documents";
      document.getElementById("rate").textContent = num(d.pages_per_s, 2);
      document.getElementById("eta").textContent = eta(d.eta_s);
      if (d.pages_per_s !== null && d.status === "running") { points.push(d.pages_per_s); draw(); }
    }
    function draw() {
      var c = document.getElementById("chart"), g = c.getContext("2d");
      var pts = points.slice(-300), max = Math.max.apply(null, pts.concat([0.1]));
      g.clearRect(0, 0, c.width, c.height);
      g.strokeStyle = "#ccc"; g.strokeRect(0, 0, c.width, c.height);
      g.fillStyle = "#555"; g.fillText(max.toFixed(2) + " pages/s", 4, 12);
      g.strokeStyle = "#2a7ae2"; g.lineWidth = 2; g.beginPath();
      pts.forEach(function (v, i) {
        var x = pts.length < 2 ? 0 : i * (c.width - 4) / (pts.length - 1) + 2;
        var y = c.height - 4 - v / max * (c.height - 20);
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
    }
    get(api + "/throughput?buckets=60").then(function (d) {
      points = d.series.map(function (p) { return p.pages_per_s; }).concat(points); draw();
    }).catch(function () {});
    var source = new EventSource(api + "/events");
    source.addEventListener("progress", function (e) { show(JSON.parse(e.data)); });
    source.addEventListener("end", function (e) { show(JSON.parse(e.data)); source.close(); loadFailures(); });
    document.querySelectorAll("button[data-action]").forEach(function (b) {
      b.addEventListener("click", function () {
        var msg = document.getElementById("action-msg"), h = {};
        h[csrf] = "1";
        fetch(api + "/" + b.dataset.action, { method: "POST", credentials: "same-origin", headers: h })
          .then(function (r) { return r.json().then(function (d) { return [r.ok, d]; }); })
          .then(function (res) {
            if (res[0]) { show(res[1]); msg.textContent = b.dataset.action + ": " + res[1].status; }
            else msg.textContent = res[1].error;
            if (res[0] && b.dataset.action !== "pause" && b.dataset.action !== "cancel" && source.readyState === 2) {
              source = new EventSource(api + "/events");
              source.addEventListener("progress", function (e) { show(JSON.parse(e.data)); });
            }
          });
      });
    });
    function loadFailures() {
      get(api + "/errors?limit=20").then(function (d) {
        var body = document.querySelector("#reasons tbody");
        body.replaceChildren.apply(body, d.by_reason.map(function (r) {
          var tr = el("tr"); tr.appendChild(el("td", r.kind)); tr.appendChild(el("td", r.error));
          tr.appendChild(el("td", r.pages)); return tr;
        }));
      }).catch(function () {});
    }
    loadFailures();
    setInterval(loadFailures, 10000);
    var reviewAfter = 0;
    function loadReview() {
      get(api + "/review?limit=10&after=" + reviewAfter).then(function (d) {
        var box = document.getElementById("review");
        d.pages.forEach(function (p) {
          var item = el("div", null, "review-item"), img = el("img"), side = el("div", null, "review-text");
          img.src = p.image; img.alt = p.rel_path + " page " + p.page; img.loading = "lazy";
          side.appendChild(el("div", p.rel_path + " page " + p.page + ", confidence " + num(p.confidence, 3), "review-title"));
          side.appendChild(el("pre", p.text));
          item.appendChild(img); item.appendChild(side); box.appendChild(item);
        });
        if (!d.pages.length && !box.children.length) box.appendChild(el("p", "no page under the threshold", "hint"));
        reviewAfter = d.next_after || reviewAfter;
        document.getElementById("review-more").hidden = !d.next_after;
      }).catch(function () {});
    }
    document.getElementById("review-more").addEventListener("click", loadReview);
    loadReview();
    var docsAfter = 0;
    function loadDocs() {
      get(api + "/documents?limit=50&after=" + docsAfter).then(function (d) {
        var body = document.querySelector("#documents tbody");
        body.replaceChildren.apply(body, d.documents.map(function (x) {
          var tr = el("tr", null, "st-" + x.status), files = el("td");
          [x.id, x.path, x.status, x.pages, x.error].forEach(function (v) { tr.appendChild(el("td", v)); });
          ["text", "json", "hocr", "alto", "pdf"].forEach(function (f) {
            var a = el("a", f); a.href = api + "/documents/" + x.id + "/" + f; files.appendChild(a);
            files.appendChild(document.createTextNode(" "));
          });
          tr.appendChild(files); return tr;
        }));
        docsAfter = d.next_after || 0;
        document.getElementById("docs-more").hidden = !d.next_after;
      }).catch(function () {});
    }
    document.getElementById("docs-more").addEventListener("click", loadDocs);
    loadDocs();
  }
  return { jobsList: jobsList, jobPage: jobPage };
})();
