// Tally tracker (README, "Tracker and dashboard"): <script defer src="https://HOST/t.js" data-key="WRITE_KEY"></script>
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.tally) return;
  var d = script.dataset;
  var key = d.key || "";
  var api = (d.api || new URL(script.src, location.href).origin).replace(/\/$/, "");
  var endpoint = api + "/v1/events?key=" + encodeURIComponent(key);
  var dnt = navigator.doNotTrack === "1" || window.doNotTrack === "1" || navigator.globalPrivacyControl === true;
  var off = d.respectDnt === "true" && dnt;
  var QUEUE = "tally_queue", VISITOR = "tally_vid", SESSION = "tally_sid";
  var BATCH = 20, INTERVAL = 5000, IDLE = 30 * 60 * 1000;

  var store = null;
  if (d.storage !== "false") {
    try {
      localStorage.setItem("tally_test", "1");
      localStorage.removeItem("tally_test");
      store = localStorage;
    } catch (e) { store = null; }
  }
  function get(k) { return store ? store.getItem(k) : null; }
  function set(k, v) { if (store) try { store.setItem(k, v); } catch (e) {} }

  var B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  function ulid() {
    var t = Date.now(), s = "", i;
    for (i = 0; i < 10; i++) { s = B32.charAt(t % 32) + s; t = Math.floor(t / 32); }
    var r = new Uint8Array(16);
    crypto.getRandomValues(r);
    for (i = 0; i < 16; i++) s += B32.charAt(r[i] % 32);
    return s;
  }

  function visitor() {
    if (!store) return "";
    var v = get(VISITOR);
    if (!v) { v = ulid(); set(VISITOR, v); }
    return v;
  }
  // A session ends after 30 minutes without events.
  function session() {
    if (!store) return "";
    var now = Date.now(), s = null;
    try { s = JSON.parse(get(SESSION) || "null"); } catch (e) {}
    if (!s || now - s.t > IDLE) s = { id: ulid(), t: now };
    s.t = now;
    set(SESSION, JSON.stringify(s));
    return s.id;
  }

  // Events not yet acknowledged: in memory and in localStorage, so a closed tab or a failed
  // send is retried on the next page of the site.
  var queue = [];
  try { queue = JSON.parse(get(QUEUE) || "[]"); } catch (e) { queue = []; }
  var sending = 0, failures = 0, retryAt = 0;
  function save() { set(QUEUE, JSON.stringify(queue.slice(-500))); }

  function track(type, props) {
    if (off || !type) return;
    var ref = "";
    try { ref = document.referrer ? new URL(document.referrer).hostname : ""; } catch (e) {}
    if (ref === location.hostname) ref = "";
    queue.push({
      event_id: ulid(), event_type: String(type), occurred_at: new Date().toISOString(),
      session_id: session(), visitor_id: visitor(), page_url: location.href, page_path: location.pathname,
      page_title: document.title, referrer_domain: ref, properties: props || {}
    });
    save();
    if (queue.length - sending >= BATCH) flush();
  }

  function flush(leaving) {
    if (leaving) {
      // The page may be gone before a fetch answers: hand everything to the browser. The events
      // stay queued; if they did arrive, the next send of them is dropped as a duplicate.
      if (queue.length && navigator.sendBeacon &&
          navigator.sendBeacon(endpoint, JSON.stringify({ events: queue.slice(0, 500) }))) return;
    }
    if (sending || !queue.length || Date.now() < retryAt) return;
    var batch = queue.slice(0, 100);
    sending = batch.length;
    fetch(endpoint, { method: "POST", body: JSON.stringify({ events: batch }), keepalive: true,
                      headers: { "Content-Type": "text/plain" } })
      .then(function (r) {
        // 2xx: stored; 400/413/422: never acceptable, resending would not help.
        if (!r.ok && r.status !== 400 && r.status !== 413 && r.status !== 422) throw r.status;
        queue.splice(0, batch.length);
        failures = 0;
        retryAt = 0;
      })
      .catch(function () {
        failures++;
        retryAt = Date.now() + Math.min(60000, 1000 * Math.pow(2, failures));
      })
      .then(function () {
        sending = 0;
        save();
        if (queue.length >= BATCH) flush();
      });
  }

  var lastPage = null;
  function pageview() {
    if (location.href === lastPage) return;
    lastPage = location.href;
    track("page_view");
  }

  function observeWidgets() {
    if (!("IntersectionObserver" in window)) return;
    var seen = new WeakSet();
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (!e.isIntersecting || e.intersectionRatio < 0.5 || seen.has(e.target)) return;
        seen.add(e.target);
        io.unobserve(e.target);
        track("widget_impression", widgetProps(e.target, { viewport_percent: Math.round(e.intersectionRatio * 100) }));
      });
    }, { threshold: [0, 0.5, 1] });
    function scan() {
      document.querySelectorAll("[data-widget-tracking]").forEach(function (el) {
        if (!seen.has(el)) io.observe(el);
      });
    }
    scan();
    new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
  }
  function widgetProps(el, extra) {
    var w = el.dataset, p = extra || {};
    if (w.mappingId) p.mapping_id = parseInt(w.mappingId, 10);
    if (w.postId) p.post_id = parseInt(w.postId, 10);
    if (w.widgetIndex) p.widget_index = parseInt(w.widgetIndex, 10);
    if (w.deviceSlug) p.device_slug = w.deviceSlug;
    return p;
  }
  document.addEventListener("click", function (e) {
    var el = e.target && e.target.closest ? e.target.closest("[data-widget-tracking]") : null;
    if (el) track("widget_click", widgetProps(el));
  }, true);

  if (d.autoPageview !== "false") {
    ["pushState", "replaceState"].forEach(function (m) {
      var orig = history[m];
      history[m] = function () {
        var r = orig.apply(this, arguments);
        pageview();
        return r;
      };
    });
    addEventListener("popstate", pageview);
    addEventListener("hashchange", pageview);
    pageview();
  }
  observeWidgets();
  setInterval(flush, INTERVAL);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush(true);
  });
  addEventListener("pagehide", function () { flush(true); });
  addEventListener("online", function () { retryAt = 0; flush(); });
  if (queue.length) setTimeout(flush, 0);

  window.tally = { track: track, flush: flush };
  window.codAnalytics = { trackEvent: track, flush: flush };
})();
