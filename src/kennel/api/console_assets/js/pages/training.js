// Training jobs: the list (filtered by status), and one job's facts, status transitions,
// live log, metric charts, rule evaluations, profiler report and a Stop button.

import { get, post, seg } from "../api.js";
import {
  badge, button, chart, duration, errorBox, facts, field, fill, h, link, logView, money,
  pageHeader, section, setLog, table, toast, when,
} from "../ui.js";

const ACTIVE = /^(InProgress|Stopping)$/;
const STATUSES = ["InProgress", "Completed", "Failed", "Stopping", "Stopped"];
const REFRESH_MS = 3000;

const jobHref = (name) => `#/training-jobs/${seg(name)}`;

/** Seconds from start to end (or to now, for a job still running). */
export function jobSeconds(job) {
  const start = Date.parse(job.training_started_at || job.created_at);
  const end = job.ended_at ? Date.parse(job.ended_at) : Date.now();
  return Number.isNaN(start) ? null : Math.max(0, (end - start) / 1000);
}

// --- the list ---------------------------------------------------------------------

function statusFilter(initial, onChange) {
  const select = h(
    "select",
    { id: "training-status-filter" },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((s) => h("option", { value: s }, s)),
  );
  select.value = initial;
  select.addEventListener("change", () => onChange(select.value));
  return h("div", { class: "job-filters" }, field("Status", select));
}

function jobsTable(jobs) {
  return table({
    label: "Training jobs",
    columns: [
      { label: "Name", value: (j) => link(jobHref(j.name), j.name) },
      { label: "Status", value: (j) => badge(j.status) },
      { label: "Instances", value: (j) => `${j.instance_count} × ${j.instance_type}`, numeric: true },
      { label: "Duration", value: (j) => duration(jobSeconds(j)), numeric: true },
      { label: "Created", value: (j) => when(j.created_at) },
    ],
    rows: jobs,
    empty: "No training jobs here.",
  });
}

async function listPage(main, page) {
  let status = "";
  const body = h("div");
  const draw = async () => {
    const query = status ? `?status=${encodeURIComponent(status)}` : "";
    const { training_jobs: jobs = [] } = await get(`/api/v1/training-jobs${query}`, { signal: page.signal });
    fill(body, jobsTable(jobs));
  };
  const filter = statusFilter(status, (value) => {
    status = value;
    draw().catch((error) => error.name !== "AbortError" && fill(body, errorBox(error)));
  });
  fill(main, pageHeader("Training jobs"), section("All training jobs", filter, body));
  await draw();
  page.every(REFRESH_MS, draw);
}

// --- one job: facts ----------------------------------------------------------------

function hyperparameters(job) {
  const rows = Object.entries(job.hyperparameters || {});
  if (!rows.length) return "none";
  return h("ul", { class: "job-hp-list" }, rows.map(([k, v]) => h("li", {}, h("code", {}, k), " = ", h("code", {}, String(v)))));
}

function jobFacts(job) {
  return facts([
    ["Status", badge(job.status)],
    ["Secondary status", job.secondary_status || "—"],
    ["Message", job.status_message || "—"],
    job.failure_reason ? ["Failure reason", h("span", { class: "job-failure" }, job.failure_reason)] : null,
    ["Instances", `${job.instance_count} × ${job.instance_type}`],
    ["Entry point", h("code", {}, job.entry_point)],
    ["Hyperparameters", hyperparameters(job)],
    ["Duration", duration(jobSeconds(job))],
    ["Billable seconds", job.billable_seconds ?? "—"],
    ["Cost", money(job.cost_usd)],
    ["Model artifact", job.model_artifact_uri ? h("code", {}, job.model_artifact_uri) : "—"],
    ["Created", when(job.created_at)],
    ["Ended", when(job.ended_at)],
  ]);
}

function transitionsTable(job) {
  return table({
    label: "Status transitions",
    columns: [
      { label: "Status", value: (t) => badge(t.status) },
      { label: "Started", value: (t) => when(t.start_time) },
      { label: "Took", value: (t) => (t.end_time ? duration((Date.parse(t.end_time) - Date.parse(t.start_time)) / 1000) : "—"), numeric: true },
      { label: "Message", value: (t) => t.message || "" },
    ],
    rows: job.status_transitions || [],
    empty: "No transitions yet.",
  });
}

function rulesTable(job) {
  return table({
    label: "Rules and what they found",
    columns: [
      { label: "Rule", value: (r) => r.rule_configuration_name || r.rule },
      { label: "Kind", value: (r) => r.kind },
      { label: "Status", value: (r) => badge(r.status) },
      { label: "Details", value: (r) => r.status_details || "" },
      { label: "Checked", value: (r) => when(r.last_modified_time) },
    ],
    rows: job.rule_evaluations || [],
    empty: "No Debugger or profiler rules are configured for this job.",
  });
}

// --- one job: the Stop button with its confirmation -------------------------------

function stopControl(job, onStopped) {
  const box = h("div", { class: "stop-control" });
  const ask = () => {
    const confirmButton = button("Stop the job", confirm, { kind: "danger" });
    fill(
      box,
      h(
        "div",
        { class: "confirm", role: "group", "aria-label": "Confirm stopping" },
        h("span", {}, `Stop ${job.name}? The script gets a SIGTERM and 10 s to save.`),
        confirmButton,
        button("Cancel", reset),
      ),
    );
    confirmButton.focus();
  };
  const reset = () => fill(box, button("Stop", ask, { kind: "danger" }));
  async function confirm() {
    fill(box, h("span", { class: "loading" }, "Stopping…"));
    try {
      await post(`/api/v1/training-jobs/${seg(job.name)}/stop`, {});
      toast(`Stopping ${job.name}.`);
      onStopped();
    } catch (error) {
      reset();
      box.append(errorBox(error));
    }
  }
  reset();
  return box;
}

// --- one job: the live log ----------------------------------------------------------

/** A denied or failed read shows where its data would be, and that part stops refreshing. */
function shown(error, box) {
  if (error.name === "AbortError") throw error;
  fill(box, errorBox(error));
  return false;
}

/** Follows one host's log from an offset; `poll()` resolves false once there is no more. */
function logFollower(name, signal) {
  const pre = logView(`Log of ${name}`);
  const box = h("div", {}, pre);
  const state = { host: "algo-1", offset: 0, text: "", complete: false };
  const read = async () => {
    const params = new URLSearchParams({ host: state.host, offset: String(state.offset) });
    const host = state.host;
    const chunk = await get(`/api/v1/training-jobs/${seg(name)}/logs?${params}`, { signal });
    if (host !== state.host) return true; // the host changed while this was in flight
    state.offset = chunk.next_offset;
    if (chunk.data) {
      state.text += chunk.data;
      setLog(pre, state.text);
    } else if (!state.text) {
      setLog(pre, chunk.complete ? "(nothing was logged)" : "(nothing logged yet)");
    }
    // The job has ended and this read came back empty: the whole log has been read.
    state.complete = chunk.complete && !chunk.data;
    return !state.complete;
  };
  const poll = () => (state.complete ? Promise.resolve(false) : read().catch((error) => shown(error, box)));
  const switchHost = (host) => {
    Object.assign(state, { host, offset: 0, text: "", complete: false });
    fill(box, pre);
    setLog(pre, "");
    return poll();
  };
  return { box, poll, switchHost };
}

function logSection(job, follower) {
  const hosts = Array.from({ length: job.instance_count }, (_, i) => `algo-${i + 1}`);
  let picker = null;
  if (hosts.length > 1) {
    const select = h("select", { id: "log-host" }, hosts.map((host) => h("option", { value: host }, host)));
    select.addEventListener("change", () => follower.switchHost(select.value));
    picker = field("Host", select);
  }
  return section("Log", picker, follower.box);
}

// --- one job: metric charts --------------------------------------------------------

function metricTrace(points) {
  const bySteps = points.every((p) => p.step !== null && p.step !== undefined);
  return {
    trace: { type: "scatter", mode: "lines+markers", x: points.map((p) => (bySteps ? p.step : p.timestamp)), y: points.map((p) => p.value) },
    xTitle: bySteps ? "step" : "time",
  };
}

function metricCharts(name, signal) {
  const box = h("div", { class: "metric-charts" }, h("p", { class: "empty" }, "No metrics yet."));
  const drawn = new Map();
  const refresh = () => draw().catch((error) => shown(error, box));
  const draw = async () => {
    const { metrics = {} } = await get(`/api/v1/training-jobs/${seg(name)}/metrics`, { signal });
    const names = Object.keys(metrics).sort();
    if (names.length && !drawn.size) box.replaceChildren();
    for (const metric of names) {
      const points = metrics[metric];
      let entry = drawn.get(metric);
      if (!entry) {
        entry = { el: h("div", { class: "chart metric-chart", dataset: { metric } }), count: -1 };
        drawn.set(metric, entry);
        box.append(entry.el);
      }
      if (entry.count === points.length) continue;
      entry.count = points.length;
      const { trace, xTitle } = metricTrace(points);
      // Steps are whole numbers: no tick at 1.5 when there are only a few.
      const xaxis = xTitle === "step" ? { title: { text: xTitle }, tickformat: "d", dtick: Math.max(1, Math.ceil(points.length / 8)) } : { title: { text: xTitle } };
      await chart(entry.el, [trace], { xaxis, showlegend: false }, metric);
    }
    return true;
  };
  return { box, refresh };
}

// --- one job: profiler report --------------------------------------------------------

function reportSection(name) {
  const url = `/api/v1/training-jobs/${seg(name)}/report`;
  const holder = h("div");
  // The report is its own page with inline scripts: it is framed from its URL (which the
  // session cookie authorizes), not srcdoc, so it runs under its own response's policy,
  // sandboxed so that it cannot reach the console.
  const show = () => {
    fill(holder, h("iframe", { class: "report", src: url, title: `Profiler report of ${name}`, sandbox: "allow-scripts", loading: "lazy" }));
  };
  return section(
    "Profiler report",
    h(
      "div",
      { class: "report-actions" },
      button("Show the report here", show),
      h("a", { href: url, target: "_blank", rel: "noopener" }, "Open it in a new tab"),
    ),
    holder,
  );
}

// --- one job: the page -----------------------------------------------------------------

async function detailPage(main, page) {
  const name = page.params.name;
  const path = `/api/v1/training-jobs/${seg(name)}`;
  let job = await get(path, { signal: page.signal });
  const actions = h("div", { class: "job-actions" });
  const factsBox = h("div");
  const transitions = h("div", { class: "job-transitions" });
  const rules = h("div", { class: "job-rules" });
  const follower = logFollower(name, page.signal);
  const metrics = metricCharts(name, page.signal);
  let shownJob = "";
  let stoppable = null;
  // Redrawn only when something changed, so focus and a half-done confirmation survive.
  const render = () => {
    const now = JSON.stringify(job);
    if (now === shownJob) return;
    shownJob = now;
    fill(factsBox, jobFacts(job));
    fill(transitions, transitionsTable(job));
    fill(rules, rulesTable(job));
    const canStop = job.status === "InProgress";
    if (canStop !== stoppable) fill(actions, canStop ? stopControl(job, refreshJob) : null);
    stoppable = canStop;
  };
  async function refreshJob() {
    job = await get(path, { signal: page.signal });
    render();
    return job;
  }
  fill(
    main,
    h("p", { class: "breadcrumb" }, link("#/training-jobs", "Training jobs"), " / ", name),
    pageHeader(name, actions),
    section("Job", factsBox),
    section("Status transitions", transitions),
    logSection(job, follower),
    section("Metrics", metrics.box),
    section("Rule evaluations", rules),
    reportSection(name),
  );
  render();
  await Promise.all([follower.poll(), metrics.refresh()]);
  follow(page, job, { refreshJob, follower, metrics });
}

/** While the job runs, its facts, log and metrics every few seconds; once it has ended,
 * one last read of each, then nothing (an ended job does not change). */
function follow(page, job, { refreshJob, follower, metrics }) {
  let running = ACTIVE.test(job.status);
  let logOpen = true;
  let metricsOpen = running;
  page.every(REFRESH_MS, async () => {
    if (running) {
      running = ACTIVE.test((await refreshJob()).status);
    }
    if (metricsOpen) metricsOpen = (await metrics.refresh()) && running;
    if (logOpen) logOpen = await follower.poll();
  });
}

export default function register(app) {
  app.nav("Training jobs", "#/training-jobs");
  app.route("/training-jobs", listPage);
  app.route("/training-jobs/:name", detailPage);
}
