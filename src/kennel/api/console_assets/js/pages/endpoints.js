// Endpoints: the list, and an endpoint's page: status, variants and their instances,
// live metric charts, the scaling policy and its activities, model monitoring (schedule,
// alarm, the latest checks, past runs and their reports), and a test panel that sends
// an image (uploaded or by URL) and shows the top-5 classes with their scores.

import { del, get, request, seg } from "../api.js";
import { badge, button, chart, errorBox, facts, fill, field, h, link, pageHeader, section, table, toast, when } from "../ui.js";

const ENDPOINTS = "/api/v1/endpoints";
const METRIC_WINDOW_SECONDS = 900;
const TOP_K = 5;

const endpointHref = (name) => `#/endpoints/${seg(name)}`;

function instancesOf(endpoint) {
  const variants = endpoint.production_variants || [];
  const current = variants.reduce((n, v) => n + v.current_instance_count, 0);
  const desired = variants.reduce((n, v) => n + v.desired_instance_count, 0);
  return variants.length ? `${current} / ${desired}` : "—";
}

// --- #/endpoints ------------------------------------------------------------------------

function endpointsTable(endpoints) {
  return table({
    label: "Endpoints",
    columns: [
      { label: "Name", value: (e) => link(endpointHref(e.name), e.name) },
      { label: "Status", value: (e) => badge(e.status) },
      {
        label: "Variants",
        value: (e) => (e.production_variants || []).map((v) => `${v.variant_name} (${v.model_name}, ${v.instance_type})`).join(", ") || "—",
      },
      { label: "Instances (in service / desired)", value: instancesOf, numeric: true },
      { label: "Created", value: (e) => when(e.created_at) },
    ],
    rows: endpoints,
    empty: "No endpoints yet. Deploy a model from its page under Models.",
  });
}

async function listPage(main, page) {
  const list = h("div");
  fill(main, pageHeader("Endpoints", h("a", { class: "btn", href: "#/models" }, "Deploy a model")), section("Endpoints", list));
  const draw = async () => fill(list, endpointsTable((await get(ENDPOINTS, { signal: page.signal })).endpoints || []));
  await draw();
  page.every(4000, draw);
}

// --- #/endpoints/:name: status and variants -------------------------------------------

function statusFacts(endpoint) {
  const last = endpoint.last_deployment || {};
  return [
    endpoint.status === "Failed" && endpoint.failure_reason
      ? h("div", { class: "error-box", role: "alert" }, h("strong", {}, "Failed"), h("p", {}, endpoint.failure_reason))
      : null,
    facts([
      ["Status", badge(endpoint.status)],
      ["Config", endpoint.config_name],
      endpoint.pending_config_name ? ["Updating to", endpoint.pending_config_name] : null,
      last.status ? ["Last deployment", [badge(last.status), ` ${last.config_name || ""}`]] : null,
      ["ARN", h("span", { class: "mono" }, endpoint.arn)],
      ["Created", when(endpoint.created_at)],
      ["Modified", when(endpoint.modified_at)],
    ]),
  ];
}

function instancesTable(variant) {
  return table({
    label: `Instances of ${variant.variant_name}`,
    columns: [
      { label: "Instance", value: (i) => h("span", { class: "mono" }, i.id) },
      { label: "Address", value: (i) => h("span", { class: "mono" }, i.address) },
      { label: "Node", value: (i) => i.node_ip || i.node_id?.slice(0, 12) || "—" },
      { label: "Healthy", value: (i) => (i.healthy ? "yes" : "no") },
      { label: "Outstanding", value: (i) => i.outstanding, numeric: true },
      { label: "PID", value: (i) => i.pid ?? "—", numeric: true },
    ],
    rows: variant.instances,
    empty: "No instances yet.",
  });
}

function variantsView(endpoint) {
  const variants = endpoint.production_variants || [];
  if (!variants.length) return h("p", { class: "empty" }, endpoint.status === "Creating" ? "Starting the instances…" : "No variant is serving.");
  return variants.map((v) => [
    h("h3", {}, v.variant_name),
    facts([
      ["Model", link(`#/models/${seg(v.model_name)}`, v.model_name)],
      ["Instance type", v.instance_type],
      ["Instances (in service / desired)", `${v.current_instance_count} / ${v.desired_instance_count}`],
      ["Weight", v.current_weight],
    ]),
    instancesTable(v),
  ]);
}

// --- metrics ------------------------------------------------------------------------------

const CHARTS = [
  { title: "Invocations per period", metrics: ["Invocations"] },
  { title: "Latency (ms)", metrics: ["ModelLatency", "OverheadLatency"], scale: 0.001, perCall: true },
  { title: "Errors per period", metrics: ["Invocation4XXErrors", "Invocation5XXErrors", "ModelErrors"] },
  { title: "Instances", metrics: ["InstanceCount"] },
];

/** One trace per variant and metric. Latency is an average per call, so a period without
 * calls has none (a gap, not a misleading 0). */
function traces(variants, spec) {
  const out = [];
  for (const [variant, series] of Object.entries(variants)) {
    const calls = new Map((series.Invocations || []).map((p) => [p.timestamp, p.value]));
    for (const metric of spec.metrics) {
      const points = series[metric] || [];
      out.push({
        type: "scatter",
        // A lone period with calls between idle ones is a point, not a line.
        mode: spec.perCall ? "lines+markers" : "lines",
        marker: { size: 4 },
        name: Object.keys(variants).length > 1 ? `${variant} ${metric}` : metric,
        x: points.map((p) => new Date(p.timestamp)),
        y: points.map((p) => (spec.perCall && !calls.get(p.timestamp) ? null : p.value * (spec.scale || 1))),
      });
    }
  }
  return out;
}

function metricsView(name, page) {
  const boxes = CHARTS.map((spec) => h("div", { class: "chart", dataset: { metric: spec.metrics[0] } }));
  const note = h("p", { class: "help endpoint-note" }, `The last ${METRIC_WINDOW_SECONDS / 60} minutes, refreshed every 5 s.`);
  const status = h("div");
  const draw = async () => {
    const body = await get(`${ENDPOINTS}/${seg(name)}/metrics?since_seconds=${METRIC_WINDOW_SECONDS}`, { signal: page.signal });
    const variants = body.variants || {};
    if (!Object.keys(variants).length) {
      fill(status, h("p", { class: "empty" }, "No metrics yet: they are recorded once the endpoint serves."));
      return;
    }
    status.replaceChildren();
    // One time axis for all charts, so a moment lines up across them.
    const times = Object.values(variants).flatMap((series) => (series.InstanceCount || []).map((p) => new Date(p.timestamp)));
    const xaxis = { type: "date" };
    if (times.length) xaxis.range = [new Date(Math.min(...times)), new Date(Math.max(...times))];
    await Promise.all(
      CHARTS.map((spec, i) => chart(boxes[i], traces(variants, spec), { xaxis, yaxis: { rangemode: "tozero" } }, spec.title)),
    );
  };
  return { view: [note, status, h("div", { class: "grid endpoint-charts" }, boxes)], draw, status };
}

// --- scaling ------------------------------------------------------------------------------

function policiesTable(policies) {
  return table({
    label: "Scaling policies",
    columns: [
      { label: "Policy", value: (p) => p.policy_name },
      { label: "Metric", value: (p) => p.metric },
      { label: "Target", value: (p) => p.target_value, numeric: true },
      { label: "Cooldown out / in (s)", value: (p) => `${p.scale_out_cooldown} / ${p.scale_in_cooldown}`, numeric: true },
      { label: "Scale in", value: (p) => (p.disable_scale_in ? "disabled" : "enabled") },
      { label: "Alarms", value: (p) => (p.alarms || []).map((a) => h("div", {}, `${a.alarm}: `, badge(a.state))) },
    ],
    rows: policies,
    empty: "No policy: the instance count only changes by hand.",
  });
}

function activitiesTable(activities) {
  return table({
    label: "Scaling activities",
    columns: [
      { label: "Started", value: (a) => when(a.StartTime) },
      { label: "Status", value: (a) => badge(a.StatusCode) },
      { label: "Description", value: (a) => a.Description },
      { label: "Cause", value: (a) => a.Cause },
    ],
    rows: activities,
    empty: "No scaling activity yet.",
  });
}

function scalingView(body) {
  if (!body.variants.length) {
    return h(
      "p",
      { class: "empty" },
      "Not registered for automatic scaling: the instance count stays as deployed. ",
      "Register a variant with ",
      h("code", {}, `kennel endpoints scaling register ${body.endpoint}`),
      ".",
    );
  }
  return body.variants.map((v) => [
    h("h3", {}, v.variant),
    facts([
      ["Capacity (min – max)", `${v.min_capacity} – ${v.max_capacity}`],
      ["Instances (in service / desired)", `${v.in_service_instances ?? "—"} / ${v.desired_instances ?? "—"}`],
    ]),
    policiesTable(v.policies),
    h("h4", {}, "Recent activities"),
    activitiesTable(v.activities),
  ]);
}

// --- monitoring ---------------------------------------------------------------------------

const MONITORING_RUNS = 10;

/** 4 significant digits, without trailing zeros: 0.05, 1000, 1e-7. */
const number = (value) => (value === null || value === undefined ? "—" : String(Number(Number(value).toPrecision(4))));

function checksTable(execution) {
  const checks = (execution.result || {}).checks || [];
  return table({
    label: "Checks of the latest run",
    columns: [
      { label: "Check", value: (c) => c.name },
      { label: "Statistic", value: (c) => number(c.statistic), numeric: true },
      { label: "Threshold", value: (c) => number(c.threshold), numeric: true },
      { label: "p-value", value: (c) => number(c.p_value), numeric: true },
      { label: "Violated", value: (c) => (c.violated ? badge("Violated") : "no") },
      { label: "Note", value: (c) => c.note || "" },
    ],
    rows: checks,
    empty: (execution.result || {}).note || "The latest run made no check.",
  });
}

function executionsTable(name, executions) {
  const report = (e) => `${ENDPOINTS}/${seg(name)}/monitoring/executions/${seg(e.id)}/report`;
  return table({
    label: "Monitoring runs",
    columns: [
      { label: "Started", value: (e) => when(e.started_at) },
      { label: "Trigger", value: (e) => e.trigger },
      { label: "Status", value: (e) => badge(e.status) },
      { label: "Window", value: (e) => `${when(e.window_start)} – ${when(e.window_end)}` },
      { label: "Records", value: (e) => number((e.metrics || {}).records), numeric: true },
      { label: "Violations", value: (e) => number((e.metrics || {}).violations), numeric: true },
      {
        label: "Report",
        value: (e) =>
          e.report_key ? h("a", { href: report(e), target: "_blank", rel: "noopener" }, "Open") : e.failure_reason || "—",
      },
    ],
    rows: executions,
    empty: `No monitoring run yet: \`kennel endpoints monitor ${name} --run\` runs one.`,
  });
}

function monitoringView(name, schedule, executions) {
  const alarm = (schedule && schedule.alarm) || {};
  const about = schedule
    ? facts([
        ["Schedule", `every ${schedule.interval_seconds} s over the last ${schedule.window_seconds || schedule.interval_seconds} s`],
        ["Alarm", h("span", {}, badge(alarm.state), alarm.reason ? ` ${alarm.reason}` : "")],
        alarm.function ? ["Alarm function", link(`#/functions/${seg(alarm.function)}`, alarm.function)] : null,
        ["Last run", when(schedule.last_run_at)],
      ])
    : h(
        "p",
        { class: "empty" },
        "Not monitored on a schedule. Create one with ",
        h("code", {}, `kennel endpoints monitoring-schedule ${name} --every 3600`),
        ".",
      );
  const latest = executions.find((e) => e.status !== "Failed" && e.status !== "InProgress");
  return [
    about,
    latest ? [h("h3", {}, `Latest checks (${when(latest.started_at)})`), checksTable(latest)] : null,
    h("h3", {}, "Recent runs"),
    executionsTable(name, executions),
  ];
}

async function monitoringOf(name, signal) {
  const base = `${ENDPOINTS}/${seg(name)}`;
  // The list, filtered to this endpoint: no schedule is an empty list, not a 404 (runs
  // may still be made on demand).
  const [listed, found] = await Promise.all([
    get(`/api/v1/monitoring-schedules?endpoint=${seg(name)}`, { signal }),
    get(`${base}/monitoring/executions?limit=${MONITORING_RUNS}`, { signal }),
  ]);
  return monitoringView(name, listed.schedules[0] || null, found.executions);
}

// --- the test panel -----------------------------------------------------------------------

/** "042.Cairn_terrier" -> "Cairn terrier": the breed, without the data set's numbering. */
export const breed = (label) => String(label).replace(/^\d+\./, "").replace(/_/g, " ");

/** The top-k [{label, score}] from an answer: kennel's top-k shape, or raw scores ([[...]]),
 * which are turned into probabilities when they are not already. */
export function topScores(answer, k = TOP_K) {
  if (answer && Array.isArray(answer.predictions)) {
    return (answer.predictions[0] || []).slice(0, k).map((p) => ({ label: p.label ?? `class ${p.index}`, score: Number(p.score) }));
  }
  const row = Array.isArray(answer) && Array.isArray(answer[0]) ? answer[0].map(Number) : null;
  if (!row || row.some(Number.isNaN)) return null;
  const total = row.reduce((a, b) => a + b, 0);
  let scores = row;
  if (row.some((s) => s < 0 || s > 1) || Math.abs(total - 1) > 1e-3) {
    const top = Math.max(...row);
    const exp = row.map((s) => Math.exp(s - top));
    const sum = exp.reduce((a, b) => a + b, 0);
    scores = exp.map((e) => e / sum);
  }
  return scores
    .map((score, i) => ({ label: `class ${i}`, score }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

function scoreList(rows) {
  return h(
    "ol",
    { class: "scores", "aria-label": `Top ${rows.length} classes` },
    rows.map((row) => {
      const bar = h("span");
      bar.style.width = `${Math.max(0, Math.min(1, row.score)) * 100}%`;
      return h(
        "li",
        { dataset: { score: row.score } },
        h("span", { class: "label", title: row.label }, breed(row.label)),
        h("span", { class: "num score" }, `${(row.score * 100).toFixed(1)} %`),
        h("span", { class: "bar", "aria-hidden": "true" }, bar),
      );
    }),
  );
}

async function invoke(name, file, url, signal) {
  const headers = { Accept: "application/json", "X-Amzn-SageMaker-Custom-Attributes": `top_k=${TOP_K}` };
  const started = performance.now();
  const response = file
    ? await request("POST", `/endpoints/${seg(name)}/invocations`, {
        body: file,
        headers: { ...headers, "Content-Type": file.type || "application/x-image" },
        signal,
      })
    : await request("POST", `/endpoints/${seg(name)}/invocations`, { json: { url }, headers, signal });
  const text = await response.text();
  const latency = performance.now() - started;
  let answer = text;
  try {
    answer = JSON.parse(text);
  } catch {
    // Not JSON: a custom model's own answer, shown as it is.
  }
  return { answer, latency, variant: response.headers.get("x-amzn-invoked-production-variant") };
}

function resultView({ answer, latency, variant }) {
  const rows = topScores(answer);
  const meta = h("p", { class: "test-meta" }, `Round trip ${latency.toFixed(1)} ms`, variant ? ` · variant ${variant}` : "");
  if (!rows) return [meta, h("pre", { class: "log" }, typeof answer === "string" ? answer : JSON.stringify(answer, null, 2))];
  return [h("h3", {}, `Top ${rows.length}`), scoreList(rows), meta];
}

function testPanel(name, page) {
  const file = h("input", { type: "file", accept: "image/*", name: "image" });
  const url = h("input", { type: "url", name: "url", placeholder: "https://example.com/dog.jpg", spellcheck: "false", autocomplete: "off" });
  const preview = h("img", { class: "preview", alt: "The image to send", hidden: true });
  const result = h("div", { class: "test-result", "aria-live": "polite" });
  let blobUrl = null;
  const clearPreview = () => {
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = null;
    preview.hidden = true;
    preview.removeAttribute("src");
  };
  page.onLeave(clearPreview);
  // Whichever was chosen last is sent: choosing a file clears the URL and the reverse.
  file.addEventListener("change", () => {
    clearPreview();
    const chosen = file.files[0];
    if (!chosen) return;
    url.value = "";
    blobUrl = URL.createObjectURL(chosen);
    preview.src = blobUrl;
    preview.hidden = false;
  });
  url.addEventListener("input", () => {
    if (!url.value) return;
    file.value = "";
    clearPreview();
  });
  const submit = h("button", { type: "submit", class: "btn primary" }, "Test");
  const form = h(
    "form",
    { class: "test-panel", "aria-label": "Test the endpoint" },
    h(
      "div",
      { class: "form-row" },
      field("Image file", file, "A JPEG or PNG from this computer."),
      field("or image URL", url, "The endpoint fetches it (public addresses only, unless allowed)."),
    ),
    preview,
    h("div", {}, submit),
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files[0] || null;
    if (!chosen && !url.value.trim()) {
      fill(result, h("div", { class: "error-box", role: "alert" }, h("strong", {}, "Nothing to send"), h("p", {}, "Choose an image file or type an image URL.")));
      return;
    }
    submit.disabled = true;
    fill(result, h("p", { class: "loading" }, "Invoking…"));
    try {
      fill(result, resultView(await invoke(name, chosen, url.value.trim(), page.signal)));
    } catch (error) {
      if (error.name !== "AbortError") fill(result, errorBox(error));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// --- #/endpoints/:name --------------------------------------------------------------------

/** Keeps refreshing a part of the page; a failure shows where the part is. */
async function live(page, ms, box, draw) {
  const run = async () => {
    try {
      await draw();
    } catch (error) {
      if (error.name === "AbortError" || page.left) return;
      fill(box, errorBox(error));
    }
  };
  await run();
  page.every(ms, run);
}

function deleteButton(app, name) {
  const remove = async () => {
    if (!window.confirm(`Delete endpoint ${name}? Its instances stop; the model and config stay.`)) return;
    try {
      await del(`${ENDPOINTS}/${seg(name)}`);
      toast(`Deleting endpoint ${name}.`);
      app.go("/endpoints");
    } catch (error) {
      toast(`Could not delete ${name}: ${error.message}`, "error");
    }
  };
  return button("Delete", remove, { kind: "danger" });
}

async function detailPage(app, main, page) {
  const name = page.params.name;
  const first = await get(`${ENDPOINTS}/${seg(name)}`, { signal: page.signal });
  const status = h("div");
  const variants = h("div");
  const scaling = h("div");
  const monitoring = h("div");
  const metrics = metricsView(name, page);
  fill(
    main,
    h("p", { class: "breadcrumb" }, link("#/endpoints", "Endpoints")),
    pageHeader(name, deleteButton(app, name)),
    h("div", { class: "grid endpoint-top" }, section("Status", status), section("Test", testPanel(name, page))),
    section("Production variants", variants),
    section("Metrics", metrics.view),
    section("Scaling", scaling),
    section("Monitoring", monitoring),
  );
  const drawEndpoint = (endpoint) => {
    fill(status, statusFacts(endpoint));
    fill(variants, variantsView(endpoint));
  };
  drawEndpoint(first);
  page.every(2000, async () => drawEndpoint(await get(`${ENDPOINTS}/${seg(name)}`, { signal: page.signal })));
  // Each part on its own: a user who may describe the endpoint but not read its metrics,
  // scaling or monitoring still sees the rest of the page.
  await Promise.all([
    live(page, 5000, metrics.status, metrics.draw),
    live(page, 5000, scaling, async () => fill(scaling, scalingView(await get(`${ENDPOINTS}/${seg(name)}/scaling`, { signal: page.signal })))),
    live(page, 10000, monitoring, async () => fill(monitoring, await monitoringOf(name, page.signal))),
  ]);
}

export default function register(app) {
  app.nav("Endpoints", "#/endpoints");
  app.route("/endpoints", (main, page) => listPage(main, page));
  app.route("/endpoints/:name", (main, page) => detailPage(app, main, page));
}
