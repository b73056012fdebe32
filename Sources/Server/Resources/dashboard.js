// Tally's dashboard: plain JavaScript over the public reporting API (GET
// /v1/properties/ID/metrics with a read key), nothing the API does not give to any client.
// State lives in the URL (?property=&range=&from=&to=&filters=) so a view can be shared; the
// read key stays in sessionStorage, never in the URL.
import { lineChart } from "/chart.js";

const $ = (id) => document.getElementById(id);
const KEY = "tally_read_key";
const TABLES = [
  { dim: "page_path", metrics: ["pageviews", "unique_visitors"] },
  { dim: "referrer_domain", metrics: ["pageviews", "unique_visitors"] },
  { dim: "campaign", metrics: ["pageviews", "unique_visitors"] },
  { dim: "country_code", metrics: ["pageviews", "unique_visitors"] },
  { dim: "device_type", metrics: ["pageviews", "unique_visitors"] },
  { dim: "browser", metrics: ["pageviews", "unique_visitors"] },
  { dim: "mapping_id", metrics: ["count:widget_impression", "count:widget_click", "ctr"], nonEmpty: true },
  { dim: "post_id", metrics: ["count:widget_impression", "count:widget_click", "ctr"], nonEmpty: true },
];
const NAMES = {
  pageviews: "Pageviews", unique_visitors: "Visitors", "count:widget_impression": "Impressions",
  "count:widget_click": "Clicks", ctr: "CTR",
};

function readState() {
  const q = new URLSearchParams(location.search);
  const filters = (q.get("filters") || "").split(";").filter(Boolean).map((f) => {
    const i = f.indexOf("==");
    return [f.slice(0, i), f.slice(i + 2)];
  }).filter(([d]) => d);
  return {
    property: q.get("property") || "default",
    range: q.get("range") || "7d",
    from: q.get("from") || "",
    to: q.get("to") || "",
    filters,
  };
}

function writeState(state, replace) {
  const q = new URLSearchParams({ property: state.property, range: state.range });
  if (state.range === "custom") { q.set("from", state.from); q.set("to", state.to); }
  if (state.filters.length) q.set("filters", state.filters.map(([d, v]) => `${d}==${v}`).join(";"));
  const url = `${location.pathname}?${q}`;
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
}

function isoDate(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function rangeParams(state) {
  if (state.range === "today") { const t = isoDate(new Date()); return { from: t, to: t, interval: "hour" }; }
  if (state.range === "custom" && state.from && state.to) return { from: state.from, to: state.to, interval: "day" };
  return { period: state.range === "custom" ? "7d" : state.range, interval: "day" };
}

class APIError extends Error {}

async function metrics(state, params) {
  const q = new URLSearchParams(params);
  const range = rangeParams(state);
  for (const k of ["period", "from", "to"]) if (range[k]) q.set(k, range[k]);
  if (state.filters.length) q.set("filters", state.filters.map(([d, v]) => `${d}==${v}`).join(";"));
  const r = await fetch(`/v1/properties/${encodeURIComponent(state.property)}/metrics?${q}`, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY)}` },
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const message = body.error || body.reason || `HTTP ${r.status}`;
    throw new APIError(body.field ? `${body.field}: ${message}` : message, { cause: r.status });
  }
  return body.data || [];
}

function format(metric, v) {
  if (v === null || v === undefined) return "–";
  if (metric === "ctr") return `${(v * 100).toFixed(1)} %`;
  if (metric === "bounce_rate") return `${Number(v).toFixed(1)} %`;
  return Number(v).toLocaleString("en-US");
}

function renderFilters(state) {
  const box = $("filters");
  box.replaceChildren();
  for (const [i, [d, v]] of state.filters.entries()) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip";
    b.textContent = `${d} is ${v} ✕`;
    b.setAttribute("aria-label", `Remove filter ${d} is ${v}`);
    b.addEventListener("click", () => {
      state.filters.splice(i, 1);
      writeState(state);
      load();
    });
    box.append(b);
  }
}

function renderTable(state, spec, rows) {
  const table = $(`table-${spec.dim}`);
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const name of [spec.dim, ...spec.metrics]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = NAMES[name] || name;
    head.append(th);
  }
  const body = table.createTBody();
  if (!rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = spec.metrics.length + 1;
    td.textContent = "No data";
    return;
  }
  for (const row of rows) {
    const tr = body.insertRow();
    const value = row[spec.dim];
    const cell = document.createElement("th");
    cell.scope = "row";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "filter";
    button.textContent = value === null ? "(none)" : String(value);
    button.title = `Filter by ${spec.dim} ${button.textContent}`;
    button.addEventListener("click", () => {
      state.filters = state.filters.filter(([d]) => d !== spec.dim);
      state.filters.push([spec.dim, value === null ? "(none)" : String(value)]);
      writeState(state);
      load();
    });
    cell.append(button);
    tr.append(cell);
    for (const m of spec.metrics) {
      const td = tr.insertCell();
      td.textContent = format(m, row[m]);
      td.dataset.value = row[m];
    }
  }
}

let generation = 0;

async function load() {
  const state = readState();
  const mine = ++generation;
  $("property").value = state.property;
  $("range").value = state.range;
  $("custom").hidden = state.range !== "custom";
  $("from").value = state.from;
  $("to").value = state.to;
  renderFilters(state);
  $("error").textContent = "";
  document.body.setAttribute("aria-busy", "true");
  try {
    const range = rangeParams(state);
    const [totals, series, ...tables] = await Promise.all([
      metrics(state, { metrics: "pageviews,unique_visitors,sessions" }),
      metrics(state, { metrics: "pageviews,unique_visitors", interval: range.interval }),
      ...TABLES.map((t) => metrics(state, {
        metrics: t.metrics.join(","), group_by: t.dim, order_by: `${t.metrics[0]}:desc`, limit: "10",
      }).then((rows) => (t.nonEmpty ? rows.filter((r) => r[t.dim] !== null && r[t.metrics[0]] > 0) : rows))),
    ]);
    // Bounce rate is a session metric: refused (400) with a filter on an event dimension.
    const bounce = await metrics(state, { metrics: "bounce_rate" }).catch(() => [{ bounce_rate: null }]);
    if (mine !== generation) return;
    for (const m of ["pageviews", "unique_visitors", "sessions"]) {
      $(`total-${m}`).textContent = format(m, totals[0]?.[m] ?? 0);
      $(`total-${m}`).dataset.value = totals[0]?.[m] ?? 0;
    }
    const b = bounce[0]?.bounce_rate;
    $("total-bounce_rate").textContent = format("bounce_rate", b);
    $("total-bounce_rate").dataset.value = b ?? "";
    lineChart($("chart"), series.map((r) => r.bucket), [
      { name: "pageviews", values: series.map((r) => r.pageviews), className: "a" },
      { name: "unique visitors", values: series.map((r) => r.unique_visitors), className: "b" },
    ], { label: "Pageviews and unique visitors by " + range.interval });
    TABLES.forEach((t, i) => renderTable(state, t, tables[i]));
    document.body.dataset.loaded = String(mine);
  } catch (e) {
    if (mine !== generation) return;
    if (e instanceof APIError && (e.cause === 401 || e.cause === 403)) {
      sessionStorage.removeItem(KEY);
      showSignIn(e.message);
      return;
    }
    $("error").textContent = e.message;
  } finally {
    document.body.removeAttribute("aria-busy");
  }
}

function showSignIn(message) {
  $("signin").hidden = false;
  $("report").hidden = true;
  $("controls").hidden = true;
  $("signin-property").value = readState().property;
  $("signin-error").textContent = message || "";
  $("signin-key").focus();
}

function showReport() {
  $("signin").hidden = true;
  $("report").hidden = false;
  $("controls").hidden = false;
  load();
}

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $("signin-key").value.trim());
  const state = readState();
  state.property = $("signin-property").value.trim() || "default";
  writeState(state, true);
  showReport();
});

$("controls").addEventListener("submit", (e) => {
  e.preventDefault();
  const state = readState();
  state.property = $("property").value.trim() || "default";
  state.range = $("range").value;
  state.from = $("from").value;
  state.to = $("to").value;
  writeState(state);
  load();
});

$("range").addEventListener("change", () => {
  $("custom").hidden = $("range").value !== "custom";
  if ($("range").value !== "custom") $("controls").requestSubmit();
});

$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  showSignIn();
});

addEventListener("popstate", load);

if (sessionStorage.getItem(KEY)) showReport(); else showSignIn();
