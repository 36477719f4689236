// Functions, like Lambda's console: the list; a function's facts, a Test panel with saved
// test events, concurrency settings, cold starts, recent invocations and metric charts.

import { del, get, put, request, seg } from "../api.js";
import { badge, button, chart, errorBox, facts, field, fill, h, link, pageHeader, section, table, toast, when } from "../ui.js";

const LAMBDA = "/2015-03-31/functions";
const SECRET_NAME = /secret|password|passwd|token|key|credential|private|auth/i;
const REPORT = /^REPORT RequestId: (\S+)\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB\tMax Memory Used: (\d+) MB(?:\tInit Duration: ([\d.]+) ms)?(.*)$/m;
const KEPT_INVOCATIONS = 200;

/** A list, or the error that kept it from loading (a section shows it; the page goes on). */
async function attempt(fn) {
  try {
    return { value: await fn() };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return { error };
  }
}

async function listFunctions(signal) {
  const all = [];
  let marker = "";
  for (let pages = 0; pages < 20; pages++) {
    const query = marker ? `?Marker=${seg(marker)}` : "";
    const body = await get(`${LAMBDA}${query}`, { signal });
    all.push(...(body.Functions || []));
    marker = body.NextMarker;
    if (!marker) break;
  }
  return all;
}

function listPage(app) {
  app.route("/functions", async (main, page) => {
    const body = h("div");
    fill(main, pageHeader("Functions"), body);
    const draw = async () => {
      const fns = await attempt(() => listFunctions(page.signal));
      if (fns.error) return fill(body, errorBox(fns.error));
      fill(
        body,
        section(
          `Functions (${fns.value.length})`,
          table({
            label: "Functions",
            columns: [
              { label: "Name", value: (f) => link(`#/functions/${seg(f.FunctionName)}`, f.FunctionName) },
              { label: "Runtime", value: (f) => f.Runtime || "—" },
              { label: "Handler", value: (f) => h("code", {}, f.Handler || "—") },
              { label: "Memory", value: (f) => `${f.MemorySize} MB`, numeric: true },
              { label: "Timeout", value: (f) => `${f.Timeout} s`, numeric: true },
              { label: "State", value: (f) => badge(f.State || "Active") },
              { label: "Last modified", value: (f) => when(f.LastModified) },
            ],
            rows: fns.value,
            empty: "No functions yet. Create one with `kennel functions create` or boto3's lambda client.",
          }),
        ),
      );
    };
    await draw();
    page.every(5000, draw);
  });
}

// --- facts ------------------------------------------------------------------------------

function environmentTable(variables) {
  const rows = Object.entries(variables || {}).map(([key, value]) => ({ key, value }));
  return table({
    label: "Environment variables",
    columns: [
      { label: "Key", value: (r) => h("code", {}, r.key) },
      { label: "Value", value: (r) => (SECRET_NAME.test(r.key) ? maskedValue(r.value) : h("code", {}, r.value)) },
    ],
    rows,
    empty: "No environment variables.",
  });
}

/** A value whose name looks secret: dots until someone asks to see it. */
function maskedValue(value) {
  const shown = h("code", { class: "fn-masked" }, "••••••••");
  const toggle = button("Show", () => {
    const showing = toggle.getAttribute("aria-pressed") === "true";
    shown.textContent = showing ? "••••••••" : value;
    toggle.setAttribute("aria-pressed", String(!showing));
    toggle.textContent = showing ? "Show" : "Hide";
  }, { class: "btn small", "aria-pressed": "false", "aria-label": "Show the value" });
  return h("span", { class: "fn-secret" }, shown, " ", toggle);
}

function factsSection(config, urls) {
  const url = urls.value?.FunctionUrlConfigs?.[0];
  return section(
    "Configuration",
    facts([
      ["ARN", h("code", {}, config.FunctionArn)],
      ["State", h("span", {}, badge(config.State || "Active"), config.StateReason ? ` ${config.StateReason}` : "")],
      ["Runtime", config.Runtime],
      ["Handler", h("code", {}, config.Handler)],
      ["Role", h("code", {}, config.Role)],
      ["Memory", `${config.MemorySize} MB`],
      ["Timeout", `${config.Timeout} s`],
      ["Code size", `${Number(config.CodeSize || 0).toLocaleString()} bytes`],
      ["Architecture", (config.Architectures || []).join(", ")],
      config.Description ? ["Description", config.Description] : null,
      ["Last modified", when(config.LastModified)],
      ["Function URL", urls.error ? errorBox(urls.error) : url ? h("span", {}, h("code", {}, url.FunctionUrl), ` (auth ${url.AuthType})`) : "None"],
    ]),
    h("h3", {}, "Environment variables"),
    environmentTable(config.Environment?.Variables),
  );
}

// --- the Test panel ----------------------------------------------------------------------

const storageKey = (name) => `kennel.console.testEvents.${name}`;

function savedEvents(name) {
  try {
    const value = JSON.parse(localStorage.getItem(storageKey(name)) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {}; // a hand-edited or corrupt entry: start over rather than break the page
  }
}

function storeEvents(name, events) {
  localStorage.setItem(storageKey(name), JSON.stringify(events));
}

/** The event's JSON, or the parser's reason it is not JSON. */
export function parseEvent(text) {
  try {
    JSON.parse(text);
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: text.trim() ? error.message : "The event is empty: write a JSON value, e.g. {}." };
  }
}

/** Duration, billed duration, memory and init duration from a log's REPORT line. */
export function parseReport(log) {
  const found = REPORT.exec(log || "");
  if (!found) return null;
  return {
    requestId: found[1],
    duration: Number(found[2]),
    billed: Number(found[3]),
    memory: Number(found[4]),
    maxMemory: Number(found[5]),
    init: found[6] === undefined ? null : Number(found[6]),
    status: (found[7] || "").replace(/^\s*Status:\s*/, "").trim(),
  };
}

function decodeTail(header) {
  if (!header) return "";
  const bytes = Uint8Array.from(atob(header), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function resultView(outcome) {
  const report = parseReport(outcome.log);
  const failed = Boolean(outcome.functionError);
  return h(
    "div",
    { class: failed ? "error-box fn-result" : "ok-box fn-result", role: "status" },
    h("strong", {}, failed ? `Execution result: failed (${outcome.functionError})` : "Execution result: succeeded"),
    h("h3", {}, "Response"),
    h("pre", { class: "fn-response", tabindex: "0", "aria-label": "Response" }, pretty(outcome.body)),
    h("h3", {}, "Summary"),
    facts([
      ["Status code", String(outcome.status)],
      ["Executed version", outcome.version || "—"],
      ["Request ID", report ? h("code", {}, report.requestId) : "—"],
      ["Duration", report ? `${report.duration.toFixed(2)} ms` : "—"],
      ["Billed duration", report ? `${report.billed} ms` : "—"],
      ["Max memory used", report ? `${report.maxMemory} of ${report.memory} MB` : "—"],
      ["Init duration", report?.init !== null && report ? `${report.init.toFixed(2)} ms (cold start)` : "— (warm start)"],
    ]),
    h("h3", {}, "Log output (the last 4 KB)"),
    h("pre", { class: "log", tabindex: "0", role: "log", "aria-label": "Log output" }, outcome.log || "(no log)"),
  );
}

async function invoke(name, payload, signal) {
  const response = await request("POST", `${LAMBDA}/${seg(name)}/invocations`, {
    body: payload,
    headers: { "Content-Type": "application/json", "X-Amz-Log-Type": "Tail", "X-Amz-Invocation-Type": "RequestResponse" },
    signal,
  });
  return {
    status: response.status,
    body: await response.text(),
    functionError: response.headers.get("X-Amz-Function-Error"),
    version: response.headers.get("X-Amz-Executed-Version"),
    log: decodeTail(response.headers.get("X-Amz-Log-Result")),
  };
}

function testPanel(name, page, onInvoked) {
  const editor = h("textarea", { id: "fn-event", rows: "10", spellcheck: "false", "aria-describedby": "fn-event-error" }, "");
  editor.value = '{\n  "key1": "value1"\n}';
  const problem = h("p", { id: "fn-event-error", class: "fn-invalid", "aria-live": "polite" });
  const result = h("div", { class: "fn-result-area", "aria-live": "polite" });
  const chooser = h("select", { id: "fn-saved-events" });
  const eventName = h("input", { id: "fn-event-name", required: true, maxlength: "100", autocomplete: "off", spellcheck: "false" });
  const testButton = h("button", { type: "submit", class: "btn primary", "aria-describedby": "fn-event-error" }, "Test");

  const validate = () => {
    const parsed = parseEvent(editor.value);
    problem.textContent = parsed.ok ? "" : `Invalid JSON: ${parsed.reason}`;
    editor.setAttribute("aria-invalid", String(!parsed.ok));
    return parsed;
  };
  const refreshChooser = (selected = "") => {
    const events = savedEvents(name);
    fill(
      chooser,
      h("option", { value: "" }, Object.keys(events).length ? "Choose a saved event…" : "No saved events"),
      Object.keys(events).sort().map((key) => h("option", { value: key }, key)),
    );
    chooser.value = selected;
  };

  editor.addEventListener("input", validate);
  editor.addEventListener("keydown", (event) => {
    // Ctrl/Cmd+Enter runs the test from inside the editor, where Enter is a new line.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      testForm.requestSubmit();
    }
  });
  chooser.addEventListener("change", () => {
    const events = savedEvents(name);
    if (!chooser.value || !(chooser.value in events)) return;
    editor.value = events[chooser.value];
    eventName.value = chooser.value;
    validate();
  });

  const testForm = h("form", { class: "fn-test-form", "aria-label": "Test event" }, field("Event JSON", editor, "Ctrl+Enter runs the test."), problem, h("div", { class: "actions" }, testButton));
  testForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parsed = validate();
    if (!parsed.ok) {
      fill(result, h("div", { class: "error-box", role: "alert" }, h("strong", {}, "Not sent"), h("p", {}, `Fix the event first: ${parsed.reason}`)));
      editor.focus();
      return;
    }
    testButton.disabled = true;
    testButton.textContent = "Testing…";
    fill(result, h("p", { class: "loading" }, "Invoking…"));
    try {
      fill(result, resultView(await invoke(name, editor.value, page.signal)));
      onInvoked();
    } catch (error) {
      if (error.name === "AbortError") return;
      fill(result, errorBox(error));
    } finally {
      testButton.disabled = false;
      testButton.textContent = "Test";
    }
  });

  const saveForm = h(
    "form",
    { class: "form-row fn-save-form", "aria-label": "Saved test events" },
    field("Saved events", chooser),
    field("Event name", eventName),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "btn" }, "Save"), button("Delete", remove, { kind: "danger" })),
  );
  saveForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = eventName.value.trim();
    if (!key) return;
    if (!validate().ok) {
      toast("The event is not valid JSON; it was not saved.", "error");
      return;
    }
    const events = savedEvents(name);
    events[key] = editor.value;
    storeEvents(name, events);
    refreshChooser(key);
    toast(`Saved test event ${key}.`);
  });
  function remove() {
    const key = chooser.value || eventName.value.trim();
    const events = savedEvents(name);
    if (!key || !(key in events)) {
      toast("Choose a saved event to delete.", "error");
      return;
    }
    delete events[key];
    storeEvents(name, events);
    refreshChooser();
    toast(`Deleted test event ${key}.`);
  }

  refreshChooser();
  validate();
  return section("Test", h("p", { class: "help" }, "Invoke the function with an event and see its result and log, as Lambda's console does. Saved events stay in this browser."), saveForm, testForm, result);
}

// --- concurrency -------------------------------------------------------------------------

function reservedForm(name, redraw) {
  const input = h("input", { id: "fn-reserved", type: "number", min: "0", step: "1", required: true, inputmode: "numeric" });
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "form-row", "aria-label": "Set reserved concurrency" },
    field("Reserve concurrency", input, "0 throttles every invocation."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "btn primary" }, "Save"), button("Remove reservation", removeIt, { kind: "danger" })),
  );
  const act = async (call, message) => {
    status.replaceChildren();
    try {
      await call();
      toast(message);
      await redraw();
    } catch (error) {
      fill(status, errorBox(error));
    }
  };
  const path = `/2017-10-31/functions/${seg(name)}/concurrency`;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(() => put(path, { ReservedConcurrentExecutions: Number(input.value) }), `Reserved ${input.value} for ${name}.`);
  });
  function removeIt() {
    act(() => del(path), `${name} now uses the unreserved pool.`);
  }
  return [form, status];
}

const qualifierOf = (arn) => arn.split(":").pop();

function provisionedTable(name, configs, status, redraw) {
  const remove = (qualifier) => async () => {
    status.replaceChildren();
    try {
      await del(`/2019-09-30/functions/${seg(name)}/provisioned-concurrency?Qualifier=${seg(qualifier)}`);
      toast(`Removed provisioned concurrency of ${name}:${qualifier}.`);
      await redraw();
    } catch (error) {
      fill(status, errorBox(error));
    }
  };
  return table({
    label: "Provisioned concurrency",
    columns: [
      { label: "Qualifier", value: (c) => qualifierOf(c.FunctionArn) },
      { label: "Status", value: (c) => badge(c.Status) },
      { label: "Requested", value: (c) => c.RequestedProvisionedConcurrentExecutions, numeric: true },
      { label: "Allocated", value: (c) => c.AllocatedProvisionedConcurrentExecutions, numeric: true },
      { label: "Available", value: (c) => c.AvailableProvisionedConcurrentExecutions, numeric: true },
      { label: "Reason", value: (c) => c.StatusReason || "" },
      { label: "", value: (c) => button("Remove", remove(qualifierOf(c.FunctionArn)), { class: "btn small danger", "aria-label": `Remove provisioned concurrency of ${qualifierOf(c.FunctionArn)}` }) },
    ],
    rows: configs,
    empty: "No provisioned concurrency.",
  });
}

function provisionedForm(name, qualifiers, status, redraw) {
  if (qualifiers === null) return null;
  if (!qualifiers.length) return h("p", { class: "help" }, "Provisioned concurrency needs a published version or an alias: publish one first.");
  const choice = h("select", { id: "fn-pc-qualifier", required: true }, qualifiers.map((q) => h("option", { value: q }, q)));
  const count = h("input", { id: "fn-pc-count", type: "number", min: "1", step: "1", required: true, inputmode: "numeric" });
  const form = h(
    "form",
    { class: "form-row", "aria-label": "Set provisioned concurrency" },
    field("Version or alias", choice),
    field("Provisioned concurrency", count),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "btn primary" }, "Save provisioned")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    try {
      await put(`/2019-09-30/functions/${seg(name)}/provisioned-concurrency?Qualifier=${seg(choice.value)}`, { ProvisionedConcurrentExecutions: Number(count.value) });
      toast(`Provisioning ${count.value} for ${name}:${choice.value}.`);
      await redraw();
    } catch (error) {
      fill(status, errorBox(error));
    }
  });
  return form;
}

async function qualifiersOf(name, signal) {
  const [versions, aliases] = await Promise.all([
    attempt(() => get(`${LAMBDA}/${seg(name)}/versions`, { signal })),
    attempt(() => get(`${LAMBDA}/${seg(name)}/aliases`, { signal })),
  ]);
  if (versions.error && aliases.error) return null; // not allowed to list them: offer no form
  const published = (versions.value?.Versions || []).map((v) => v.Version).filter((v) => v !== "$LATEST");
  return [...published, ...(aliases.value?.Aliases || []).map((a) => a.Name)];
}

function concurrencySection(name, page) {
  const body = h("div", { class: "fn-concurrency" });
  const reservedBox = h("div");
  const provisionedBox = h("div");
  const provisionedStatus = h("div", { "aria-live": "polite" });
  let formDrawn = false;
  const reservedNow = h("div", { "aria-live": "polite" });
  // The form is drawn once; refreshing only redraws the numbers, not what the user types.
  fill(reservedBox, reservedNow, reservedForm(name, () => drawReserved()));
  const drawReserved = async () => {
    const [reserved, account] = await Promise.all([
      attempt(() => get(`/2019-09-30/functions/${seg(name)}/concurrency`, { signal: page.signal })),
      attempt(() => get("/2016-08-19/account-settings", { signal: page.signal })),
    ]);
    if (reserved.error) return fill(reservedNow, errorBox(reserved.error));
    const current = reserved.value?.ReservedConcurrentExecutions;
    const limits = account.value?.AccountLimit;
    fill(
      reservedNow,
      h("p", { class: "fn-reserved-now" }, "Reserved concurrency: ", h("strong", { id: "fn-reserved-value" }, current === undefined ? "none (uses the unreserved pool)" : String(current))),
      limits ? h("p", { class: "help" }, `Account: ${limits.ConcurrentExecutions} concurrent executions, ${limits.UnreservedConcurrentExecutions} unreserved.`) : null,
    );
  };
  const drawProvisioned = async () => {
    const list = await attempt(() => get(`/2019-09-30/functions/${seg(name)}/provisioned-concurrency?List=ALL`, { signal: page.signal }));
    const configs = list.value?.ProvisionedConcurrencyConfigs || [];
    const tableBox = list.error ? errorBox(list.error) : provisionedTable(name, configs, provisionedStatus, drawProvisioned);
    const existing = provisionedBox.querySelector(".fn-pc-table");
    if (formDrawn && existing) return fill(existing, tableBox); // keep what the user is typing
    const form = provisionedForm(name, await qualifiersOf(name, page.signal), provisionedStatus, drawProvisioned);
    fill(provisionedBox, h("div", { class: "fn-pc-table" }, tableBox), form, provisionedStatus);
    formDrawn = true;
  };
  fill(body, h("h3", {}, "Reserved concurrency"), reservedBox, h("h3", {}, "Provisioned concurrency"), provisionedBox);
  return { element: section("Concurrency", body), drawReserved, drawProvisioned };
}

// --- cold starts, invocations and metrics ---------------------------------------------------

/** One invocation from its log text (START..REPORT). */
function invocationOf(event) {
  const report = parseReport(event.message);
  return {
    id: event.id,
    requestId: event.request_id,
    version: event.version,
    timestamp: event.timestamp,
    report,
    failed: /\[ERROR\]|Status: (error|timeout)/i.test(event.message),
  };
}

/** Follows the function's logs with after_id; keeps the newest invocations. */
function invocationFollower(name, page) {
  let lastId = null;
  let kept = [];
  return async () => {
    for (let round = 0; round < 20; round++) {
      const query = lastId === null ? `since=${Date.now() - 3600_000}` : `after_id=${lastId}`;
      const body = await get(`/api/v1/functions/${seg(name)}/logs?${query}&limit=1000`, { signal: page.signal });
      const events = body.events || [];
      if (events.length) lastId = events[events.length - 1].id;
      else if (lastId === null) lastId = 0;
      kept = kept.concat(events.map(invocationOf)).slice(-KEPT_INVOCATIONS);
      if (events.length < 1000) break;
    }
    return kept;
  };
}

function coldStartTable(invocations) {
  const rows = invocations.filter((i) => i.report && i.report.init !== null).reverse().slice(0, 20);
  return table({
    label: "Recent cold starts",
    columns: [
      { label: "When", value: (i) => when(i.timestamp / 1000) },
      { label: "Version", value: (i) => i.version },
      { label: "Init duration", value: (i) => `${i.report.init.toFixed(2)} ms`, numeric: true },
      { label: "Duration", value: (i) => `${i.report.duration.toFixed(2)} ms`, numeric: true },
      { label: "Request ID", value: (i) => h("code", {}, i.requestId) },
    ],
    rows,
    empty: "No cold starts in the last hour.",
  });
}

function invocationTable(invocations) {
  const rows = invocations.slice().reverse().slice(0, 20);
  return table({
    label: "Recent invocations",
    columns: [
      { label: "When", value: (i) => when(i.timestamp / 1000) },
      { label: "Result", value: (i) => badge(i.failed ? "Error" : "Succeeded") },
      { label: "Start", value: (i) => (i.report?.init !== null && i.report ? "cold" : "warm") },
      { label: "Duration", value: (i) => (i.report ? `${i.report.duration.toFixed(2)} ms` : "—"), numeric: true },
      { label: "Billed", value: (i) => (i.report ? `${i.report.billed} ms` : "—"), numeric: true },
      { label: "Memory used", value: (i) => (i.report ? `${i.report.maxMemory} MB` : "—"), numeric: true },
      { label: "Request ID", value: (i) => h("code", {}, i.requestId) },
    ],
    rows,
    empty: "No invocations in the last hour.",
  });
}

function asyncTable(events) {
  return table({
    label: "Asynchronous invocations",
    columns: [
      { label: "Queued", value: (e) => when(e.created_at) },
      { label: "Status", value: (e) => badge(e.status) },
      { label: "Attempts", value: (e) => e.attempts, numeric: true },
      { label: "Finished", value: (e) => when(e.finished_at) },
      { label: "Last error", value: (e) => (e.last_error ? h("code", {}, typeof e.last_error === "string" ? e.last_error : `${e.last_error.errorType || "Error"}: ${e.last_error.errorMessage || ""}`) : "") },
    ],
    rows: events.slice(0, 20),
    empty: "No asynchronous invocations.",
  });
}

const series = (metrics, key) => metrics[key] || [];
const trace = (points, name, extra = {}) => ({ x: points.map((p) => p.timestamp), y: points.map((p) => p.value), name, type: "scatter", mode: points.length < 30 ? "lines+markers" : "lines", ...extra });

function drawCharts(boxes, metrics) {
  const draw = (...args) => chart(...args).catch((error) => toast(`A chart could not be drawn: ${error.message}`, "error"));
  const m = metrics.metrics || {};
  const period = metrics.period_seconds;
  const note = `per ${period >= 60 ? `${period / 60} min` : `${period} s`}`;
  draw(boxes.counts, [trace(series(m, "Invocations"), "Invocations"), trace(series(m, "Errors"), "Errors"), trace(series(m, "Throttles"), "Throttles"), trace(series(m, "ColdStarts"), "Cold starts")], { yaxis: { rangemode: "tozero" } }, `Invocations, errors, throttles (${note})`);
  draw(boxes.duration, [trace(series(m, "Duration"), "Average"), trace(series(m, "DurationP99"), "p99")], { yaxis: { rangemode: "tozero", title: { text: "ms" } } }, "Duration (ms)");
  draw(boxes.concurrency, [trace(series(m, "ConcurrentExecutions"), "Concurrent executions", { line: { shape: "hv" } })], { yaxis: { rangemode: "tozero" } }, "Concurrent executions");
}

function activitySection(name, page) {
  const range = h("select", { id: "fn-metrics-range" }, [["900", "Last 15 minutes"], ["3600", "Last hour"], ["10800", "Last 3 hours"]].map(([v, l]) => h("option", { value: v }, l)));
  const boxes = { counts: h("div"), duration: h("div"), concurrency: h("div") };
  const chartStatus = h("div");
  const coldBox = h("div");
  const invocationsBox = h("div");
  const asyncBox = h("div");
  const follow = invocationFollower(name, page);
  const drawMetrics = async () => {
    const metrics = await attempt(() => get(`/api/v1/functions/${seg(name)}/metrics?since_seconds=${range.value}`, { signal: page.signal }));
    if (metrics.error) return fill(chartStatus, errorBox(metrics.error));
    chartStatus.replaceChildren();
    drawCharts(boxes, metrics.value);
  };
  const drawActivity = async () => {
    const [invocations, events] = await Promise.all([attempt(follow), attempt(() => get(`/api/v1/functions/${seg(name)}/events?limit=20`, { signal: page.signal }))]);
    fill(coldBox, invocations.error ? errorBox(invocations.error) : coldStartTable(invocations.value));
    fill(invocationsBox, invocations.error ? errorBox(invocations.error) : invocationTable(invocations.value));
    fill(asyncBox, events.error ? errorBox(events.error) : asyncTable(events.value.events || []));
  };
  range.addEventListener("change", drawMetrics);
  const element = h(
    "div",
    {},
    section("Metrics", h("div", { class: "form-row fn-range" }, field("Period shown", range)), chartStatus, h("div", { class: "fn-charts" }, boxes.counts, boxes.duration, boxes.concurrency)),
    section("Cold starts", h("p", { class: "help" }, "Invocations that started a new execution environment, with the time its init took."), coldBox),
    section("Recent invocations", invocationsBox),
    section("Asynchronous invocations", asyncBox),
  );
  return { element, drawMetrics, drawActivity };
}

// --- the function's page ----------------------------------------------------------------------

function detailPage(app) {
  app.route("/functions/:name", async (main, page) => {
    const name = page.params.name;
    const header = pageHeader(name, link("#/functions", "All functions"));
    const crumb = h("p", { class: "breadcrumb" }, link("#/functions", "Functions"), " / ", name);
    let fn;
    try {
      fn = await get(`${LAMBDA}/${seg(name)}`, { signal: page.signal });
    } catch (error) {
      if (error.name === "AbortError" || page.left) throw error;
      fill(main, crumb, header, errorBox(error));
      return;
    }
    const urls = await attempt(() => get(`/2021-10-31/functions/${seg(name)}/urls`, { signal: page.signal }));
    const factsBox = h("div", {}, factsSection(fn.Configuration, urls));
    const concurrency = concurrencySection(name, page);
    const activity = activitySection(name, page);
    const refreshActivity = () => Promise.all([activity.drawActivity(), activity.drawMetrics()]);
    fill(main, crumb, header, h("div", { class: "fn-layout" }, testPanel(name, page, () => activity.drawActivity().catch(() => {})), factsBox), concurrency.element, activity.element);
    await Promise.all([concurrency.drawReserved(), concurrency.drawProvisioned(), refreshActivity()]);
    let revision = fn.Configuration.RevisionId;
    page.every(4000, async () => {
      const again = await get(`${LAMBDA}/${seg(name)}`, { signal: page.signal });
      // Redraw the facts only when they changed: a value someone chose to show stays shown.
      if (again.Configuration.RevisionId !== revision || again.Configuration.State !== fn.Configuration.State) {
        revision = again.Configuration.RevisionId;
        fn = again;
        fill(factsBox, factsSection(again.Configuration, urls));
      }
      await Promise.all([concurrency.drawReserved(), concurrency.drawProvisioned(), refreshActivity()]);
    });
  });
}

export default function register(app) {
  app.nav("Functions", "#/functions");
  listPage(app);
  detailPage(app);
}
