// Models: the list, a form that makes one from a completed training job, and a model's
// page with the endpoints that serve it and a form that deploys it as a new endpoint.

import { ApiError, get, post, seg } from "../api.js";
import { badge, errorBox, facts, fill, field, h, link, pageHeader, section, table, when } from "../ui.js";

const MODELS = "/api/v1/models";
const CONFIGS = "/api/v1/endpoint-configs";
const ENDPOINTS = "/api/v1/endpoints";

const modelHref = (name) => `#/models/${seg(name)}`;

/** "training-job/NAME" as a link to the job; any other source (an upload's URI) as text. */
function sourceOf(model) {
  const job = /^training-job\/(.+)$/.exec(model.source || "");
  return job ? link(`#/training-jobs/${seg(job[1])}`, job[1]) : h("span", { class: "mono" }, model.source || "—");
}

/** A read whose failure the page shows in place; leaving the page still stops it. */
async function softly(promise) {
  try {
    return await promise;
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return { error };
  }
}

const onnxOf = (model) => (model.details?.onnx?.used ? "yes" : "no");

/** A form's submit handler that disables the button, shows errors in `status`, and
 * never lets a rejection escape (the console must log no uncaught errors). */
function submitting(form, status, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    status.replaceChildren(h("p", { class: "loading" }, submit.dataset.busy || "Working…"));
    try {
      await action();
      status.replaceChildren();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      submit.disabled = false;
    }
  });
}

// --- #/models ---------------------------------------------------------------------------

function createForm(app, jobs) {
  const name = h("input", { name: "name", required: true, spellcheck: "false", autocomplete: "off" });
  const job = h(
    "select",
    { name: "training_job", required: true },
    h("option", { value: "" }, jobs.length ? "Choose a completed job" : "No completed training jobs"),
    jobs.map((j) => h("option", { value: j.name }, j.name)),
  );
  // The job's name is the usual model name (as `kennel deploy JOB` does), until typed over.
  job.addEventListener("change", () => {
    if (!name.value || name.dataset.auto) {
      name.value = job.value;
      name.dataset.auto = "1";
    }
  });
  name.addEventListener("input", () => delete name.dataset.auto);
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "model-form", "aria-label": "Create a model from a training job" },
    h("div", { class: "form-row" }, field("Training job", job), field("Model name", name)),
    h("button", { type: "submit", class: "btn primary", dataset: { busy: "Creating the model (checking it, exporting ONNX)…" } }, "Create model"),
    status,
  );
  submitting(form, status, async () => {
    await post(MODELS, { name: name.value.trim(), training_job: job.value });
    app.go(`/models/${seg(name.value.trim())}`);
  });
  return form;
}

async function completedJobs(signal) {
  const body = await softly(get("/api/v1/training-jobs?status=Completed", { signal }));
  return { jobs: body.training_jobs || [], error: body.error };
}

function modelsTable(models) {
  return table({
    label: "Models",
    columns: [
      { label: "Name", value: (m) => link(modelHref(m.name), m.name) },
      { label: "Kind", value: (m) => m.kind },
      { label: "ONNX", value: onnxOf },
      { label: "Source", value: sourceOf },
      { label: "Created", value: (m) => when(m.created_at) },
    ],
    rows: models,
    empty: "No models yet. Create one from a completed training job above.",
  });
}

async function listPage(app, main, page) {
  const list = h("div");
  const [{ jobs, error }, body] = await Promise.all([
    completedJobs(page.signal),
    softly(get(MODELS, { signal: page.signal })),
  ]);
  fill(
    main,
    pageHeader("Models"),
    section(
      "Create a model from a training job",
      h("p", { class: "help model-help" }, "The job's model.tar.gz is copied and checked; kennel's built-in image models are also exported to ONNX."),
      error ? errorBox(error) : createForm(app, jobs),
    ),
    section("Models", list),
  );
  const draw = (models) => fill(list, modelsTable(models));
  if (body.error) fill(list, errorBox(body.error));
  else draw(body.models || []);
  page.every(5000, async () => draw((await get(MODELS, { signal: page.signal })).models || []));
}

// --- #/models/:name ---------------------------------------------------------------------

function modelFacts(model) {
  const d = model.details || {};
  return facts([
    ["ARN", h("span", { class: "mono" }, model.arn)],
    ["Kind", model.kind === "builtin-image-classifier" ? "Built-in image classifier (kennel's trainer)" : "Custom (code/inference.py)"],
    ["Framework", d.arch ? `PyTorch ${d.arch}${d.image_size ? `, ${d.image_size} px` : ""}` : null],
    ["Inference", d.onnx?.used ? `ONNX Runtime (checked, max diff ${Number(d.onnx.max_abs_diff).toExponential(1)})` : "the model's handler functions"],
    ["Classes", d.num_classes ? `${d.num_classes} (${(d.classes_preview || []).slice(0, 3).join(", ")}…)` : null],
    ["Artifact", h("span", { class: "mono" }, model.artifact_uri)],
    ["Source", sourceOf(model)],
    ["Environment", Object.keys(model.environment || {}).length ? Object.entries(model.environment).map(([k, v]) => `${k}=${v}`).join(", ") : null],
    ["Created", when(model.created_at)],
  ]);
}

/** Endpoints whose current or pending config has a variant serving `model`. */
async function endpointsUsing(model, signal) {
  const [{ endpoints }, { endpoint_configs: configs }] = await Promise.all([
    get(ENDPOINTS, { signal }),
    get(CONFIGS, { signal }),
  ]);
  const serving = new Set(configs.filter((c) => c.variants.some((v) => v.model_name === model)).map((c) => c.name));
  return endpoints.filter((e) => serving.has(e.config_name) || serving.has(e.pending_config_name));
}

function usersTable(endpoints) {
  return table({
    label: "Endpoints using this model",
    columns: [
      { label: "Endpoint", value: (e) => link(`#/endpoints/${seg(e.name)}`, e.name) },
      { label: "Status", value: (e) => badge(e.status) },
      { label: "Config", value: (e) => e.config_name },
      { label: "Created", value: (e) => when(e.created_at) },
    ],
    rows: endpoints,
    empty: "No endpoint serves this model yet. Deploy it below.",
  });
}

function deployForm(app, model, types) {
  const name = h("input", { name: "endpoint", required: true, spellcheck: "false", autocomplete: "off", value: model });
  const type = h(
    "select",
    { name: "instance_type" },
    types.length
      ? types.map((t) => h("option", { value: t.name, selected: t.name === "ml.m5.large" }, `${t.name} (${t.vcpus} vCPU, ${t.memory_gib} GiB, $${t.price_per_hour}/h)`))
      : h("option", { value: "ml.m5.large" }, "ml.m5.large (the catalog could not be read)"),
  );
  const count = h("input", { name: "count", type: "number", min: "1", max: "20", value: "1", required: true });
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "model-form", "aria-label": "Deploy this model" },
    h("div", { class: "form-row" }, field("Endpoint name", name), field("Instance type", type), field("Initial instance count", count)),
    h("button", { type: "submit", class: "btn primary", dataset: { busy: "Creating the endpoint…" } }, "Deploy"),
    status,
  );
  submitting(form, status, async () => {
    const endpoint = name.value.trim();
    await deploy(model, endpoint, type.value, Number(count.value));
    app.go(`/endpoints/${seg(endpoint)}`);
  });
  return form;
}

/** What `kennel deploy MODEL --name NAME` does: a config named after the endpoint and
 * the time (configs cannot change, so each deploy makes a new one), then the endpoint. */
async function deploy(model, endpoint, instanceType, count) {
  // Checked first so a taken name leaves no unused config behind (a list, not a describe:
  // a 404 would be logged in the browser's console as an error).
  const { endpoints } = await get(ENDPOINTS);
  if (endpoints.some((e) => e.name === endpoint)) {
    throw new ApiError(409, "ResourceInUse", `Endpoint ${endpoint} already exists.`, `Pick another name, or move it to this model with: kennel deploy ${model} --name ${endpoint}`);
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const config = `${endpoint.slice(0, 40)}-${stamp}`;
  const variant = { model_name: model, instance_type: instanceType, initial_instance_count: count };
  await post(CONFIGS, { name: config, variants: [variant] });
  await post(ENDPOINTS, { name: endpoint, config_name: config });
}

async function detailPage(app, main, page) {
  const name = page.params.name;
  const model = await get(`${MODELS}/${seg(name)}`, { signal: page.signal });
  const users = h("div");
  const types = await softly(get("/api/v1/instance-types", { signal: page.signal }));
  fill(
    main,
    h("p", { class: "breadcrumb" }, link("#/models", "Models")),
    pageHeader(name),
    section("Model", modelFacts(model)),
    section("Endpoints using it", users),
    section("Deploy", h("p", { class: "help model-help" }, "Creates an endpoint config and an endpoint serving this model."), deployForm(app, name, types.instance_types || [])),
  );
  const drawUsers = async () => fill(users, usersTable(await endpointsUsing(name, page.signal)));
  try {
    await drawUsers();
  } catch (error) {
    if (error.name === "AbortError") throw error;
    fill(users, errorBox(error));
    return;
  }
  page.every(5000, drawUsers);
}

export default function register(app) {
  app.nav("Models", "#/models");
  app.route("/models", (main, page) => listPage(app, main, page));
  app.route("/models/:name", (main, page) => detailPage(app, main, page));
}

