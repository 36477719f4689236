// Small building blocks every page uses: elements, tables, badges, charts, messages.

/**
 * h("a", {href: "#/x", class: "btn", onclick: fn, "aria-label": "..."}, "text", child, [more])
 * Children may be strings, numbers, nodes, arrays or null/false (skipped).
 * `text` sets textContent; `dataset` an object of data-* values; anything else an attribute.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A titled section of a page: <section aria-labelledby> with an <h2>. */
let sectionCount = 0;
export function section(title, ...children) {
  const id = `section-${++sectionCount}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** The page's heading, with optional actions (buttons) beside it. */
export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", { tabindex: "-1" }, title), h("div", { class: "actions" }, ...actions));
}

/**
 * A table that scrolls sideways on a narrow screen.
 * columns: [{label, value: row => text|node, numeric?: bool}]; rows: array.
 * empty: the text shown when there are no rows.
 */
export function table({ columns, rows, empty = "Nothing here yet.", caption, label }) {
  if (!rows || !rows.length) return h("p", { class: "empty" }, empty);
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.numeric ? "num" : null }, c.label)));
  const body = rows.map((row) =>
    h("tr", {}, columns.map((c) => h("td", { class: c.numeric ? "num" : null, "data-label": c.label }, c.value(row)))),
  );
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label || caption || "table" },
    h("table", {}, caption ? h("caption", {}, caption) : null, h("thead", {}, head), h("tbody", {}, body)),
  );
}

/** A link inside the console: link("#/endpoints/x", "x"). */
export const link = (href, text) => h("a", { href }, text);

const GOOD = /^(Completed|InService|Active|READY|NoIssuesFound|Successful|Enabled|Succeeded|OK)$/i;
const BAD = /^(Failed|Stopped|Error|IssuesFound|Denied|FAILED|RolledBack|MaxRuntimeExceeded|Inactive|ALARM|Violated|CompletedWithViolations)$/i;
const BUSY = /(InProgress|Creating|Updating|Pending|Stopping|Deleting|IN_PROGRESS|Starting|Training)/i;

/** A status word in a colour that says good / bad / busy; the word itself carries the meaning. */
export function badge(status) {
  const word = String(status ?? "—");
  const kind = GOOD.test(word) ? "good" : BAD.test(word) ? "bad" : BUSY.test(word) ? "busy" : "neutral";
  return h("span", { class: `badge ${kind}` }, word);
}

/** Definition list of [label, value] pairs (values may be nodes). */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "—")]),
  );
}

export function when(value) {
  if (!value) return "—";
  const date = new Date(typeof value === "number" ? value * 1000 : value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "—";
  let s = Math.round(Number(seconds));
  const h_ = Math.floor(s / 3600);
  s -= h_ * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h_ ? `${h_} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
}

export const money = (usd) =>
  usd === null || usd === undefined ? "—" : `$${Number(usd).toFixed(usd > 0 && usd < 1 ? 4 : 2)}`;

/** A button; kind "primary" | "danger" | undefined. */
export function button(label, onclick, { kind, type = "button", ...rest } = {}) {
  return h("button", { type, class: kind ? `btn ${kind}` : "btn", onclick, ...rest }, label);
}

/** A labelled form field around an input/select/textarea element (gets an id if it has none). */
let fieldCount = 0;
export function field(label, input, help) {
  if (!input.id) input.id = `field-${++fieldCount}`;
  const helpId = help ? `${input.id}-help` : null;
  if (helpId) input.setAttribute("aria-describedby", helpId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: input.id }, label),
    input,
    help ? h("p", { class: "help", id: helpId }, help) : null,
  );
}

/** An error shown where the thing failed: AWS's code, the message and kennel's hint. */
export function errorBox(error) {
  const denied = error && error.status === 403;
  return h(
    "div",
    { class: `error-box${denied ? " denied" : ""}`, role: "alert" },
    h("strong", {}, denied ? "Access denied" : error.code || "Error"),
    h("p", {}, error.message || String(error)),
    error.hint ? h("p", { class: "hint" }, error.hint) : null,
  );
}

/** A short message in the corner (errors stay until dismissed). */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}` }, h("span", {}, message));
  const close = () => item.remove();
  item.append(button("Dismiss", close, { "aria-label": "Dismiss message", class: "btn small" }));
  box.append(item);
  if (kind !== "error") setTimeout(close, 6000);
}

let plotlyLoading = null;
/** plotly.js, loaded the first time a page draws a chart (it is big). */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = h("script", { src: "assets/plotly.min.js" });
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("plotly.js did not load"));
      document.head.append(script);
    });
  }
  return plotlyLoading;
}

/**
 * Draw (or redraw) a chart into `el`: traces and layout as Plotly takes them. `title`
 * becomes the chart's accessible name.
 */
export async function chart(el, traces, layout = {}, title = "") {
  const Plotly = await loadPlotly();
  if (!el.isConnected) return;
  el.classList.add("chart");
  el.setAttribute("role", "figure"); // not "img": Plotly puts buttons inside
  if (title) el.setAttribute("aria-label", title);
  const base = {
    margin: { l: 48, r: 16, t: title ? 36 : 12, b: 40 },
    title: title ? { text: title, font: { size: 14 } } : undefined,
    autosize: true,
    height: 280,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    legend: { orientation: "h", y: -0.2 },
  };
  await Plotly.react(el, traces, { ...base, ...layout }, { displaylogo: false, responsive: true });
}

/** A <pre> for logs that keeps its scroll at the bottom while new lines arrive. */
export function logView(label) {
  return h("pre", { class: "log", tabindex: "0", role: "log", "aria-label": label, "aria-live": "off" });
}

export function setLog(pre, text) {
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  pre.textContent = text;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}
