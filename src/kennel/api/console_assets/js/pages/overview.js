// Overview: what runs now, and what it costs per hour at the instance types' prices.

import { get } from "../api.js";
import { badge, fill, h, link, money, pageHeader, section, table } from "../ui.js";

const RUNNING_JOB = /InProgress|Stopping/;

/** Each list on its own: a user allowed to see endpoints but not jobs still gets a page. */
async function load(path, key, signal) {
  try {
    const body = await get(path, { signal });
    return { items: body[key] || [] };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return { items: [], error };
  }
}

function hourly(types, type, count) {
  const price = types.get(type)?.price_per_hour;
  return price === undefined ? 0 : price * count;
}

export function costRows(types, jobs, endpoints, notebooks) {
  const rows = [];
  for (const job of jobs.filter((j) => RUNNING_JOB.test(j.status))) {
    rows.push({ kind: "Training job", name: job.name, href: `#/training-jobs/${encodeURIComponent(job.name)}`, status: job.status, type: job.instance_type, count: job.instance_count });
  }
  for (const endpoint of endpoints.filter((e) => e.status !== "Failed")) {
    for (const variant of endpoint.production_variants || []) {
      rows.push({ kind: "Endpoint", name: `${endpoint.name} (${variant.variant_name})`, href: `#/endpoints/${encodeURIComponent(endpoint.name)}`, status: endpoint.status, type: variant.instance_type, count: variant.current_instance_count });
    }
  }
  for (const notebook of notebooks.filter((n) => n.status === "InService")) {
    rows.push({ kind: "Notebook instance", name: notebook.name, href: null, status: notebook.status, type: notebook.instance_type, count: 1 });
  }
  for (const row of rows) row.perHour = hourly(types, row.type, row.count);
  return rows;
}

export default function register(app) {
  app.nav("Overview", "#/", "/");
  app.route("/", async (main, page) => {
    const summary = h("div");
    fill(main, pageHeader("Overview"), summary);
    const draw = async () => {
      const [types, jobs, tuning, endpoints, notebooks, fns] = await Promise.all([
        load("/api/v1/instance-types", "instance_types", page.signal),
        load("/api/v1/training-jobs", "training_jobs", page.signal),
        load("/api/v1/tuning-jobs", "tuning_jobs", page.signal),
        load("/api/v1/endpoints", "endpoints", page.signal),
        load("/api/v1/notebook-instances", "notebook_instances", page.signal),
        load("/2015-03-31/functions", "Functions", page.signal),
      ]);
      const byName = new Map(types.items.map((t) => [t.name, t]));
      const rows = costRows(byName, jobs.items, endpoints.items, notebooks.items);
      const total = rows.reduce((sum, row) => sum + row.perHour, 0);
      const stat = (label, value, href) =>
        h("a", { class: "stat", href }, h("span", { class: "value" }, value), h("span", { class: "label" }, label));
      const hidden = [jobs, tuning, endpoints, notebooks, fns].filter((l) => l.error);
      fill(
        summary,
        h(
          "div",
          { class: "stats", role: "list" },
          [
            stat("running training jobs", jobs.items.filter((j) => RUNNING_JOB.test(j.status)).length, "#/training-jobs"),
            stat("running tuning jobs", tuning.items.filter((j) => /InProgress|Stopping/.test(j.status)).length, "#/tuning-jobs"),
            stat("endpoints in service", endpoints.items.filter((e) => e.status === "InService").length, "#/endpoints"),
            stat("functions", fns.items.length, "#/functions"),
            stat("cost per hour now", money(total), "#/"),
          ].map((s) => (s.setAttribute("role", "listitem"), s)),
        ),
        hidden.length
          ? h("p", { class: "hint" }, `Some lists are hidden from you (${hidden.map((l) => l.error.message).slice(0, 1).join("")}).`)
          : null,
        section(
          "What runs, and what it costs",
          table({
            label: "Running resources and their hourly cost",
            columns: [
              { label: "Kind", value: (r) => r.kind },
              { label: "Name", value: (r) => (r.href ? link(r.href, r.name) : r.name) },
              { label: "Status", value: (r) => badge(r.status) },
              { label: "Instances", value: (r) => `${r.count} × ${r.type}`, numeric: true },
              { label: "Per hour", value: (r) => money(r.perHour), numeric: true },
            ],
            rows,
            empty: "Nothing is running: no training job, endpoint or notebook instance costs anything now.",
          }),
        ),
      );
    };
    await draw();
    page.every(5000, draw);
  });
}
