// Live updates for the tbfg status pages. Every page is complete without
// JavaScript; this only keeps it current, through one EventSource per page:
// build and member events refresh the page's sections (each a server-rendered
// fragment, fetched from the same URL with ?partial=NAME), tail events
// replace the log tails of running builds, and log events append to a
// running build's log. Log text is only ever set as text, never as HTML.
"use strict";
(function () {
  var body = document.body;
  var page = body.dataset.page;
  if (!page || !window.EventSource || !window.fetch) {
    return;
  }
  var params = new URLSearchParams();
  if (page === "overview") {
    params.set("tails", "1");
  }
  var logEl = document.getElementById("log");
  var logBuild = body.dataset.build;
  if (logBuild && logEl) {
    params.set("log", logBuild);
    params.set("offset", body.dataset.offset || "0");
  }
  var query = params.toString();
  var events = new EventSource("/events" + (query ? "?" + query : ""));
  var liveEl = document.getElementById("live");
  var lost = false;

  // The Raft index in the header follows the events' indices.
  var indexEl = document.querySelector(".index[data-index]");
  var shownIndex = indexEl ? Number(indexEl.dataset.index) : 0;
  function seen(index) {
    index = Number(index);
    if (indexEl && index > shownIndex) {
      shownIndex = index;
      indexEl.textContent = "index " + index;
    }
  }

  // Sections to refresh, fetched together at most once per 500 ms.
  var pending = new Set();
  var timer = null;
  function refresh(names) {
    names.forEach(function (n) { pending.add(n); });
    if (timer === null) {
      timer = setTimeout(flush, 500);
    }
  }
  function flush() {
    timer = null;
    pending.forEach(function (name) {
      var el = document.querySelector('[data-partial="' + name + '"]');
      if (!el) {
        return;
      }
      var url = new URL(window.location.href);
      url.searchParams.set("partial", name);
      fetch(url, { headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { el.innerHTML = html; }) // html/template output, escaped by the server
        .catch(function () {});
    });
    pending.clear();
  }
  function allSections() {
    return Array.prototype.map.call(document.querySelectorAll("[data-partial]"), function (el) {
      return el.dataset.partial;
    });
  }

  // Load, free disk and last seen come from gossip, which no event
  // announces: the overview re-reads the mesh now and then.
  if (page === "overview") {
    setInterval(function () {
      if (!lost) {
        refresh(["mesh"]);
      }
    }, 15000);
  }

  events.addEventListener("open", function () {
    liveEl.hidden = false;
    if (lost) { // events were missed while disconnected
      lost = false;
      refresh(allSections());
    }
  });
  events.addEventListener("error", function () {
    liveEl.hidden = true;
    lost = true;
  });
  events.addEventListener("build", function (e) {
    var b = JSON.parse(e.data);
    var id = String(Number(b.id));
    seen(b.index);
    document.querySelectorAll('[data-build="' + id + '"] .state').forEach(function (el) {
      el.textContent = b.state;
      el.className = "state st-" + b.state;
    });
    if (page === "build") {
      if (id === logBuild || id === body.dataset.shown) {
        refresh(["summary", "attempts", "timeline"]);
      }
      return;
    }
    refresh(allSections());
  });
  ["member", "members", "reset"].forEach(function (name) {
    events.addEventListener(name, function (e) {
      seen(JSON.parse(e.data).index || 0);
      refresh(allSections());
    });
  });
  events.addEventListener("tail", function (e) {
    var t = JSON.parse(e.data);
    var el = document.getElementById("tail-" + Number(t.id));
    if (el) {
      el.textContent = t.lines.join("\n");
    }
  });
  events.addEventListener("log", function (e) {
    var atEnd = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
    logEl.append(JSON.parse(e.data).text);
    if (atEnd) {
      logEl.scrollTop = logEl.scrollHeight;
    }
  });
  events.addEventListener("end", function (e) {
    var state = document.getElementById("log-state");
    if (state) {
      state.textContent = "The build ended: " + JSON.parse(e.data).state + ".";
    }
    refresh(["summary", "attempts", "timeline"]);
  });
}());
