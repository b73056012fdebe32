// Tally's chart module: a line chart of time buckets as SVG, no dependencies.
// lineChart(element, buckets, series): buckets are labels; series [{name, values, className}].

const NS = "http://www.w3.org/2000/svg";

function el(name, attributes, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attributes || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least max.
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(max)));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export function lineChart(element, buckets, series, options = {}) {
  const width = options.width || 800, height = options.height || 240;
  const pad = { left: 48, right: 24, top: 12, bottom: 28 };
  const w = width - pad.left - pad.right, h = height - pad.top - pad.bottom;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (i) => pad.left + (buckets.length <= 1 ? w / 2 : (i * w) / (buckets.length - 1));
  const y = (v) => pad.top + h - (v / max) * h;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "line-chart",
                          "aria-label": options.label || series.map((s) => s.name).join(" and ") });
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    svg.append(el("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: pad.left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" },
                  Number.isInteger(v) ? v.toLocaleString() : v.toFixed(1)));
  }
  const step = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((b, i) => {
    if (i % step === 0 || i === buckets.length - 1) {
      svg.append(el("text", { x: x(i), y: height - 8, "text-anchor": "middle", class: "axis" }, String(b).slice(5)));
    }
  });
  for (const s of series) {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(el("polyline", { points, class: `series ${s.className || ""}`, fill: "none" }));
    s.values.forEach((v, i) => {
      const dot = el("circle", { cx: x(i), cy: y(v), r: 3, class: `dot ${s.className || ""}` });
      dot.append(el("title", {}, `${buckets[i]}: ${v.toLocaleString()} ${s.name}`));
      svg.append(dot);
    });
  }
  const legend = document.createElement("ul");
  legend.className = "legend";
  for (const s of series) {
    const li = document.createElement("li");
    li.className = s.className || "";
    li.textContent = s.name;
    legend.append(li);
  }
  element.replaceChildren(svg, legend);
}
