// Tuning jobs: the list, and one job's search, trials (best marked) and objective chart.

import { get, seg } from "../api.js";
import { badge, chart, facts, fill, h, link, pageHeader, section, table, when } from "../ui.js";

const ACTIVE = /^(InProgress|Stopping)$/;
const REFRESH_MS = 3000;

const tuningHref = (name) => `#/tuning-jobs/${seg(name)}`;
const trainingHref = (name) => `#/training-jobs/${seg(name)}`;
const fmt = (value) => (value === null || value === undefined ? "—" : Number(value).toPrecision(5).replace(/\.?0+$/, ""));

function counts(job) {
  const c = job.counters || {};
  return ["completed", "in_progress", "failed", "stopped", "pruned"]
    .filter((k) => c[k])
    .map((k) => `${c[k]} ${k.replace("_", " ")}`)
    .join(", ") || "none yet";
}

async function listPage(main, page) {
  const body = h("div");
  fill(main, pageHeader("Tuning jobs"), section("All tuning jobs", body));
  const draw = async () => {
    const { tuning_jobs: jobs = [] } = await get("/api/v1/tuning-jobs", { signal: page.signal });
    fill(
      body,
      table({
        label: "Tuning jobs",
        columns: [
          { label: "Name", value: (j) => link(tuningHref(j.name), j.name) },
          { label: "Status", value: (j) => badge(j.status) },
          { label: "Strategy", value: (j) => j.strategy },
          { label: "Objective", value: (j) => `${j.objective.type} ${j.objective.metric_name}` },
          { label: "Trials and their objective", value: (j) => `${(j.trials || []).length} / ${j.resource_limits.max_training_jobs}`, numeric: true },
          { label: "Best", value: (j) => fmt(j.best_training_job?.objective?.value), numeric: true },
          { label: "Created", value: (j) => when(j.created_at) },
        ],
        rows: jobs,
        empty: "No tuning jobs yet. Start one with `kennel tune create`.",
      }),
    );
  };
  await draw();
  page.every(REFRESH_MS, draw);
}

/** One line per range: "lr: 0.001 – 0.1 (Logarithmic)", "batch-size: 16, 32". */
function rangesList(ranges = {}) {
  const items = [
    ...(ranges.continuous || []).map((r) => `${r.name}: ${r.min_value} – ${r.max_value} (${r.scaling_type || "Auto"})`),
    ...(ranges.integer || []).map((r) => `${r.name}: ${r.min_value} – ${r.max_value}, integers`),
    ...(ranges.categorical || []).map((r) => `${r.name}: ${r.values.join(", ")}`),
  ];
  return items.length ? h("ul", { class: "tuning-ranges" }, items.map((text) => h("li", {}, h("code", {}, text)))) : "—";
}

function jobFacts(job) {
  const limits = job.resource_limits || {};
  const best = job.best_training_job;
  return facts([
    ["Status", badge(job.status)],
    ["Message", job.status_message || "—"],
    job.failure_reason ? ["Failure reason", job.failure_reason] : null,
    ["Strategy", job.strategy],
    ["Objective", `${job.objective.type} ${job.objective.metric_name}`],
    ["Early stopping", job.early_stopping || "Off"],
    ["Ranges", rangesList(job.spec?.parameter_ranges)],
    ["Trials", `${counts(job)} (at most ${limits.max_training_jobs}, ${limits.max_parallel_training_jobs} at a time)`],
    ["Best trial", best ? h("span", {}, link(trainingHref(best.training_job_name), best.training_job_name), ` (${fmt(best.objective?.value)})`) : "—"],
    job.completion_reason ? ["Why it ended", job.completion_reason] : null,
    ["Created", when(job.created_at)],
    ["Ended", when(job.ended_at)],
  ]);
}

function trialsTable(job, trials) {
  const best = job.best_training_job?.training_job_name;
  const names = [...new Set(trials.flatMap((t) => Object.keys(t.hyperparameters || {})))];
  const table_ = table({
    label: "Trials and their objective",
    columns: [
      { label: "#", value: (t) => t.number + 1, numeric: true },
      { label: "Training job", value: (t) => h("span", { class: "trial-name" }, link(trainingHref(t.training_job_name), t.training_job_name), t.training_job_name === best ? h("span", { class: "best-mark" }, " ★ best") : null) },
      { label: "Status", value: (t) => badge(t.pruned ? "Pruned" : t.status) },
      { label: job.objective.metric_name, value: (t) => fmt(t.objective), numeric: true },
      ...names.map((name) => ({ label: name, value: (t) => String(t.hyperparameters?.[name] ?? "—") })),
      { label: "Note", value: (t) => t.failure_reason || "" },
    ],
    rows: trials,
    empty: "No trials have started yet.",
  });
  for (const row of table_.querySelectorAll("tbody tr")) {
    if (row.textContent.includes("★ best")) row.classList.add("best");
  }
  return table_;
}

/** Objective per trial (in launch order) and the best so far, as the report draws it. */
function objectiveTraces(job) {
  const maximize = job.objective.type === "Maximize";
  const done = [...(job.trials || [])]
    .filter((t) => t.objective !== null && t.objective !== undefined)
    .sort((a, b) => a.number - b.number);
  let best = null;
  const bestSoFar = done.map((t) => {
    if (t.objective_status === "Succeeded" && (best === null || (maximize ? t.objective > best : t.objective < best))) best = t.objective;
    return best;
  });
  return [
    { type: "scatter", mode: "markers", name: "trial", x: done.map((t) => t.number + 1), y: done.map((t) => t.objective), text: done.map((t) => t.training_job_name) },
    { type: "scatter", mode: "lines", line: { shape: "hv" }, name: "best so far", x: done.map((t) => t.number + 1), y: bestSoFar },
  ];
}

async function detailPage(main, page) {
  const name = page.params.name;
  const factsBox = h("div");
  const trialsBox = h("div");
  const chartEl = h("div", { class: "chart objective-chart" });
  fill(
    main,
    h("p", { class: "breadcrumb" }, link("#/tuning-jobs", "Tuning jobs"), " / ", name),
    pageHeader(name),
    section("Tuning job", factsBox),
    section("Objective by trial", chartEl),
    section("Trials", trialsBox),
  );
  let shown = "";
  let trialsDenied = false;
  const draw = async () => {
    const job = await get(`/api/v1/tuning-jobs/${seg(name)}`, { signal: page.signal });
    let trials = job.trials || [];
    if (!trialsDenied) {
      try {
        trials = (await get(`/api/v1/tuning-jobs/${seg(name)}/training-jobs`, { signal: page.signal })).training_jobs;
      } catch (error) {
        if (error.name === "AbortError" || error.status !== 403) throw error;
        trialsDenied = true; // the table shows the trials describe lists instead
      }
    }
    const now = JSON.stringify([job, trials]);
    if (now === shown) return ACTIVE.test(job.status);
    shown = now;
    fill(factsBox, jobFacts(job));
    fill(trialsBox, trialsTable(job, trials));
    const traces = objectiveTraces(job);
    if (traces[0].x.length) {
      if (!chartEl.classList.contains("js-plotly-plot")) chartEl.replaceChildren();
      await chart(chartEl, traces, { margin: { l: 56, r: 16, t: 36, b: 80 }, legend: { orientation: "h", y: -0.35 }, xaxis: { title: { text: "trial" }, dtick: 1 }, yaxis: { title: { text: job.objective.metric_name } } }, `${job.objective.metric_name} by trial`);
    } else {
      fill(chartEl, h("p", { class: "empty" }, "No trial has reported the objective yet."));
    }
    return ACTIVE.test(job.status);
  };
  let running = await draw();
  page.every(REFRESH_MS, async () => {
    if (running) running = await draw();
  });
}

export default function register(app) {
  app.nav("Tuning jobs", "#/tuning-jobs");
  app.route("/tuning-jobs", listPage);
  app.route("/tuning-jobs/:name", detailPage);
}
