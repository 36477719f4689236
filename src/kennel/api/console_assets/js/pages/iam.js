// IAM: a hub with the audit's findings and unused access; users, roles and customer
// managed policies; a policy editor that checks JSON as you type and validates with the
// server's own policy parser before saving a new version; a simulator on principals.

import { get, iam, post, seg } from "../api.js";
import { button, errorBox, facts, fill, field, h, link, pageHeader, section, table, toast, when } from "../ui.js";

const VALIDATE = "/api/v1/iam/validate-policy";

const userHref = (name) => `#/iam/users/${seg(name)}`;
const roleHref = (name) => `#/iam/roles/${seg(name)}`;
const policyHref = (arn) => `#/iam/policies/${seg(arn)}`;

/** A Query-protocol list: an empty one arrives as "" (an element without members). */
const list = (value) => (Array.isArray(value) ? value : []);

/** A policy document as IAM returns it (URL-encoded JSON), pretty-printed. */
function prettyDocument(encoded) {
  const text = decodeURIComponent(encoded || "");
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Run a call; an error (a denial) becomes {error} so the rest of the page still shows. */
async function attempt(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return { error };
  }
}

/** A page's first call; if it fails (a denial) the page keeps its heading above the error,
 * and the caller gets null and stops. */
async function first(main, title, promise) {
  try {
    return await promise;
  } catch (error) {
    if (error.name === "AbortError") throw error;
    fill(main, pageHeader(title), errorBox(error));
    return null;
  }
}

const shown = (result, render) => (result.error ? errorBox(result.error) : render(result.value));

/** Where a finding or log entry points: a link to the user, role or policy page. */
function principalLink(arn) {
  const resource = String(arn || "").split(":").slice(5).join(":");
  const [kind, ...rest] = resource.split("/");
  const name = rest[rest.length - 1];
  if (kind === "user" && name) return link(userHref(name), `user/${name}`);
  if (kind === "role" && name) return link(roleHref(name), `role/${name}`);
  if (kind === "policy" && name) return link(policyHref(arn), `policy/${name}`);
  return h("span", { class: "mono" }, resource || arn || "—");
}

function subnav(current) {
  const items = [["Overview", "#/iam"], ["Users", "#/iam/users"], ["Roles", "#/iam/roles"], ["Policies", "#/iam/policies"]];
  return h(
    "nav",
    { class: "iam-tabs", "aria-label": "IAM" },
    items.map(([label, href]) => h("a", { href, "aria-current": label === current ? "page" : null }, label)),
  );
}

function severity(word) {
  return h("span", { class: `iam-sev iam-sev-${word}` }, word);
}

/** A form's submit handler that disables the button, shows errors in `status` and never
 * lets a rejection escape (the console must log no uncaught errors). */
function onSubmit(form, status, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    if (!submit) return; // a read-only form (an AWS managed policy)
    submit.disabled = true;
    try {
      await action();
    } catch (error) {
      if (error.name !== "AbortError") status.replaceChildren(errorBox(error));
    } finally {
      submit.disabled = false;
    }
  });
}

// --- the policy editor ----------------------------------------------------------------------

/** Line and column (1-based) of a character offset in `text`. */
export function lineColumn(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

/** null when `text` is JSON; else {message, line, column, offset} from the parser's error. */
export function jsonProblem(text) {
  try {
    JSON.parse(text);
    return null;
  } catch (error) {
    const message = error.message.replace(/^JSON\.parse: /, "");
    const at = /position (\d+)/.exec(message);
    const explicit = /line (\d+) column (\d+)/.exec(message);
    const offset = at ? Number(at[1]) : text.length;
    const place = explicit ? { line: Number(explicit[1]), column: Number(explicit[2]) } : lineColumn(text, offset);
    // The place is said once, as line and column; the parser's offset means little to a person.
    const plain = message.replace(/\s*\(line \d+ column \d+\)/, "").replace(/ in JSON at position \d+/, "");
    return { message: plain, offset, ...place };
  }
}

function findingsList(findings) {
  if (!findings.length) return h("div", { class: "ok-box", role: "status" }, "No findings: the policy is valid.");
  return h(
    "ul",
    { class: "iam-findings", "aria-label": "Validation findings" },
    findings.map((f) =>
      h("li", {}, severity(f.severity), f.path ? h("code", { class: "iam-path" }, f.path) : null, h("span", {}, f.message)),
    ),
  );
}

/**
 * A labelled monospace <textarea> for a policy document, with a live JSON syntax line and
 * server-side validation. Returns {el, textarea, text(), check(), validate()}.
 */
function policyEditor({ label, value = "", kind = "identity", signal }) {
  const textarea = h("textarea", { class: "iam-editor", rows: 18, spellcheck: "false", autocomplete: "off", "aria-invalid": "false" });
  textarea.value = value;
  const syntax = h("p", { class: "iam-syntax", "aria-live": "polite" });
  const results = h("div", { class: "iam-results", "aria-live": "polite" });
  const check = () => {
    const problem = jsonProblem(textarea.value);
    textarea.setAttribute("aria-invalid", String(Boolean(problem)));
    if (!problem) {
      fill(syntax, h("span", { class: "iam-json-ok" }, "JSON syntax OK"));
      return null;
    }
    const go = button("Go to the error", () => {
      textarea.focus();
      textarea.setSelectionRange(problem.offset, Math.min(problem.offset + 1, textarea.value.length));
    }, { class: "btn small" });
    fill(syntax, h("span", { class: "iam-json-bad", role: "alert" }, `JSON syntax error at line ${problem.line}, column ${problem.column}: ${problem.message}`), " ", go);
    return problem;
  };
  let timer = null;
  textarea.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(check, 150);
  });
  /** Server findings (kennel's policy parser); a syntax error is answered locally first. */
  const validate = async () => {
    const problem = check();
    if (problem) {
      const where = `line ${problem.line}, column ${problem.column}`;
      const findings = [{ severity: "error", message: `Not valid JSON: ${problem.message}`, path: where }];
      fill(results, findingsList(findings));
      return findings;
    }
    fill(results, h("p", { class: "loading" }, "Validating…"));
    const body = await post(VALIDATE, { document: textarea.value, kind }, { signal });
    fill(results, findingsList(body.findings));
    return body.findings;
  };
  check();
  const el = h("div", { class: "iam-editor-box" }, field(label, textarea, "IAM policy JSON. Syntax is checked as you type; Validate runs kennel's policy checks without saving."), syntax, results);
  return { el, textarea, results, text: () => textarea.value, check, validate };
}

/** Validate, then save only when nothing is an error; shows why it refused. */
async function validThenSave(editor, save) {
  let findings;
  try {
    findings = await editor.validate();
  } catch (error) {
    // Not allowed to validate: the server still refuses a malformed document on save.
    if (!error.denied) throw error;
    findings = [];
  }
  const errors = findings.filter((f) => f.severity === "error");
  if (errors.length) {
    editor.results.prepend(h("p", { class: "error-box", role: "alert" }, `Not saved: ${errors[0].message}`));
    return false;
  }
  await save();
  return true;
}

// --- #/iam --------------------------------------------------------------------------------

async function counts(signal) {
  const [users, roles, policies, groups] = await Promise.all([
    attempt(iam("ListUsers", {}, { signal })),
    attempt(iam("ListRoles", {}, { signal })),
    attempt(iam("ListPolicies", { Scope: "Local" }, { signal })),
    attempt(iam("ListGroups", {}, { signal })),
  ]);
  const stat = (label, result, key, href) =>
    h(
      "a",
      { class: "stat", href, role: "listitem" },
      h("span", { class: "value" }, result.error ? "—" : list(result.value[key]).length),
      h("span", { class: "label" }, result.error ? `${label} (hidden from you)` : label),
    );
  const principals = [
    ...list(users.value?.Users).map((u) => ({ arn: u.Arn, label: `user/${u.UserName}` })),
    ...list(roles.value?.Roles).map((r) => ({ arn: r.Arn, label: `role/${r.RoleName}` })),
  ];
  const el = h(
    "div",
    { class: "stats", role: "list" },
    stat("users", users, "Users", "#/iam/users"),
    stat("roles", roles, "Roles", "#/iam/roles"),
    stat("customer managed policies", policies, "Policies", "#/iam/policies"),
    stat("groups", groups, "Groups", "#/iam"),
  );
  return { el, principals };
}

/** Findings as a list, not a table: the advice is long (commands) and must wrap at 390 px. */
function auditList(body) {
  const order = { high: 0, medium: 1, low: 2 };
  const rows = [...body.findings].sort((a, b) => (order[a.severity] ?? 3) - (order[b.severity] ?? 3));
  if (!rows.length) return h("p", { class: "empty" }, "No findings: nothing in the account's users, roles and policies needs attention.");
  return h(
    "ul",
    { class: "iam-audit", "aria-label": "Audit findings" },
    rows.map((f) =>
      h(
        "li",
        {},
        h("div", { class: "iam-audit-head" }, severity(f.severity), h("strong", {}, f.title)),
        h("p", {}, "Concerns ", principalLink(f.principal)),
        h("p", { class: "iam-detail" }, f.detail),
        h("p", { class: "iam-advice" }, h("span", { class: "iam-advice-label" }, "Advice: "), f.fix),
      ),
    ),
  );
}

function unusedForm(principals, signal) {
  const select = h("select", { name: "principal", required: true }, principals.map((p) => h("option", { value: p.arn }, p.label)));
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { "aria-label": "Unused access of a principal" },
    h("div", { class: "form-row" }, field("Principal", select), h("button", { type: "submit", class: "btn" }, "Show unused access")),
    status,
  );
  onSubmit(form, status, async () => {
    fill(status, h("p", { class: "loading" }, "Reading the access log…"));
    const body = await get(`/api/v1/iam/unused?principal=${seg(select.value)}`, { signal });
    fill(
      status,
      h("p", { class: "hint" }, `${body.calls} calls in the last 90 days.`),
      table({
        label: "Granted but unused",
        columns: [
          { label: "Policy", value: (u) => u.policy },
          { label: "Statement", value: (u) => u.sid || `#${u.statement_index}` },
          { label: "Never used", value: (u) => h("span", { class: "mono" }, u.actions.join(", ")) },
          { label: "Used", value: (u) => u.used.join(", ") || "—" },
        ],
        rows: body.unused,
        empty: "Everything this principal is granted has been used.",
      }),
    );
  });
  return principals.length ? form : h("p", { class: "empty" }, "No principals you may list.");
}

async function hub(main, page) {
  const stats = h("div");
  const audit = h("div", {}, h("p", { class: "loading" }, "Auditing…"));
  const unused = h("div");
  fill(
    main,
    pageHeader("IAM"),
    subnav("Overview"),
    stats,
    section("Audit findings", audit),
    section("Unused access", h("p", { class: "hint" }, "What a principal may do but never did: candidates to remove."), unused),
  );
  const drawCounts = async () => {
    const { el, principals } = await counts(page.signal);
    fill(stats, el);
    return principals;
  };
  const principals = await drawCounts();
  fill(unused, unusedForm(principals, page.signal));
  const findings = await attempt(get("/api/v1/iam/audit", { signal: page.signal }));
  fill(audit, shown(findings, auditList));
  page.every(5000, drawCounts);
}

// --- users ----------------------------------------------------------------------------------

async function usersPage(main, page) {
  fill(main, pageHeader("Users"), subnav("Users"));
  const users = await attempt(iam("ListUsers", {}, { signal: page.signal }));
  main.append(
    shown(users, (body) =>
      section(
        "Users",
        table({
          label: "IAM users",
          columns: [
            { label: "Name", value: (u) => link(userHref(u.UserName), u.UserName) },
            { label: "Created", value: (u) => when(u.CreateDate) },
            { label: "ARN", value: (u) => h("span", { class: "mono" }, u.Arn) },
          ],
          rows: list(body.Users),
          empty: "No users.",
        }),
      ),
    ),
  );
}

/** Attached (managed) and inline policies of a user or role, inline ones with their JSON. */
async function policiesOf(kind, name, signal) {
  const noun = kind === "user" ? "User" : "Role";
  const key = kind === "user" ? { UserName: name } : { RoleName: name };
  const [attached, inline] = await Promise.all([
    attempt(iam(`ListAttached${noun}Policies`, key, { signal })),
    attempt(iam(`List${noun}Policies`, key, { signal })),
  ]);
  const documents = await Promise.all(
    list(inline.value?.PolicyNames).map((policy) => attempt(iam(`Get${noun}Policy`, { ...key, PolicyName: policy }, { signal }))),
  );
  return [
    section(
      "Attached policies",
      shown(attached, (body) =>
        table({
          label: "Attached managed policies",
          columns: [
            { label: "Policy", value: (p) => link(policyHref(p.PolicyArn), p.PolicyName) },
            { label: "ARN", value: (p) => h("span", { class: "mono" }, p.PolicyArn) },
          ],
          rows: list(body.AttachedPolicies),
          empty: "No managed policies attached.",
        }),
      ),
    ),
    section(
      "Inline policies",
      shown(inline, () =>
        documents.length
          ? documents.map((d) =>
              shown(d, (body) => [h("h3", {}, body.PolicyName), h("pre", { class: "iam-json", tabindex: "0", "aria-label": `Inline policy ${body.PolicyName}` }, prettyDocument(body.PolicyDocument))]),
            )
          : h("p", { class: "empty" }, "No inline policies."),
      ),
    ),
  ];
}

async function keysTable(name, signal) {
  const keys = await attempt(iam("ListAccessKeys", { UserName: name }, { signal }));
  if (keys.error) return errorBox(keys.error);
  const rows = list(keys.value.AccessKeyMetadata);
  const used = await Promise.all(rows.map((k) => attempt(iam("GetAccessKeyLastUsed", { AccessKeyId: k.AccessKeyId }, { signal }))));
  rows.forEach((row, i) => (row.lastUsed = used[i].value?.AccessKeyLastUsed));
  return table({
    label: "Access keys",
    columns: [
      { label: "Access key ID", value: (k) => h("span", { class: "mono" }, k.AccessKeyId) },
      { label: "Status", value: (k) => h("span", { class: `badge ${k.Status === "Active" ? "good" : "neutral"}` }, k.Status) },
      { label: "Created", value: (k) => when(k.CreateDate) },
      { label: "Last used", value: (k) => (k.lastUsed?.LastUsedDate ? `${when(k.lastUsed.LastUsedDate)} (${k.lastUsed.ServiceName})` : "Never") },
    ],
    rows,
    empty: "No access keys.",
  });
}

/** Whether a console password is set: kennel's route answers null instead of a 404. */
async function consolePassword(name, signal) {
  const result = await attempt(get(`/api/v1/iam/users/${seg(name)}/login-profile`, { signal }));
  if (result.error) return result.error.denied ? "— (you may not see it)" : result.error.message;
  const profile = result.value.login_profile;
  if (!profile) return "Not set (access keys only)";
  return `Set ${when(profile.CreateDate)}${profile.PasswordResetRequired === true || profile.PasswordResetRequired === "true" ? ", must be changed at next sign-in" : ""}`;
}

async function userPage(main, page) {
  const name = page.params.name;
  const { signal } = page;
  const user = await first(main, name, iam("GetUser", { UserName: name }, { signal }));
  if (!user) return;
  const [groups, password, policies] = await Promise.all([
    attempt(iam("ListGroupsForUser", { UserName: name }, { signal })),
    consolePassword(name, signal),
    policiesOf("user", name, signal),
  ]);
  const keys = h("div", {}, await keysTable(name, signal));
  const u = user.User;
  fill(
    main,
    h("p", { class: "breadcrumb" }, link("#/iam/users", "Users"), " / "),
    pageHeader(name),
    section(
      "Summary",
      facts([
        ["ARN", h("span", { class: "mono" }, u.Arn)],
        ["User ID", u.UserId],
        ["Created", when(u.CreateDate)],
        ["Console password", password],
        u.PermissionsBoundary ? ["Permissions boundary", link(policyHref(u.PermissionsBoundary.PermissionsBoundaryArn), u.PermissionsBoundary.PermissionsBoundaryArn)] : null,
      ]),
    ),
    section("Groups", shown(groups, (body) => table({ label: "Groups", columns: [{ label: "Group", value: (g) => g.GroupName }, { label: "ARN", value: (g) => h("span", { class: "mono" }, g.Arn) }], rows: list(body.Groups), empty: "In no group." }))),
    ...policies,
    section("Access keys", keys),
    simulatePanel(u.Arn, signal),
  );
  // Key "last used" moves while the user works: refresh it while the page is open.
  page.every(5000, async () => fill(keys, await keysTable(name, signal)));
}

// --- roles ----------------------------------------------------------------------------------

async function rolesPage(main, page) {
  fill(main, pageHeader("Roles"), subnav("Roles"));
  const roles = await attempt(iam("ListRoles", {}, { signal: page.signal }));
  main.append(
    shown(roles, (body) =>
      section(
        "Roles",
        table({
          label: "IAM roles",
          columns: [
            { label: "Name", value: (r) => link(roleHref(r.RoleName), r.RoleName) },
            { label: "Description", value: (r) => r.Description || "—" },
            { label: "Last used", value: (r) => when(r.RoleLastUsed?.LastUsedDate) },
            { label: "Created", value: (r) => when(r.CreateDate) },
          ],
          rows: list(body.Roles),
          empty: "No roles.",
        }),
      ),
    ),
  );
}

async function rolePage(main, page) {
  const name = page.params.name;
  const { signal } = page;
  const body = await first(main, name, iam("GetRole", { RoleName: name }, { signal }));
  if (!body) return;
  const role = body.Role;
  const policies = await policiesOf("role", name, signal);
  fill(
    main,
    h("p", { class: "breadcrumb" }, link("#/iam/roles", "Roles"), " / "),
    pageHeader(name),
    section(
      "Summary",
      facts([
        ["ARN", h("span", { class: "mono" }, role.Arn)],
        ["Description", role.Description || "—"],
        ["Created", when(role.CreateDate)],
        ["Last used", role.RoleLastUsed?.LastUsedDate ? when(role.RoleLastUsed.LastUsedDate) : "Never"],
        ["Max session", `${Number(role.MaxSessionDuration) / 3600} h`],
        role.PermissionsBoundary ? ["Permissions boundary", link(policyHref(role.PermissionsBoundary.PermissionsBoundaryArn), role.PermissionsBoundary.PermissionsBoundaryArn)] : null,
      ]),
    ),
    section("Trust policy", h("p", { class: "hint" }, "Who may assume this role."), h("pre", { class: "iam-json", tabindex: "0", "aria-label": "Trust policy" }, prettyDocument(role.AssumeRolePolicyDocument))),
    ...policies,
    simulatePanel(role.Arn, signal),
  );
}

// --- the simulator ----------------------------------------------------------------------------

function decisionText(result) {
  const where = result.statement?.policy ? ` (statement ${result.statement.sid || `#${result.statement.index}`} of ${result.statement.policy})` : "";
  if (result.allowed) return `Allowed by an Allow${where}.`;
  if (result.reason === "explicit-deny") return `Denied by an explicit Deny${where}.`;
  if (result.blocked_by_boundary) return "Denied: the permissions boundary does not allow it.";
  if (result.reason === "session-policy") return "Denied by the session policy.";
  return "Denied: no policy allows it (implicit deny).";
}

function simulatePanel(principal, signal) {
  const action = h("input", { name: "action", required: true, spellcheck: "false", autocomplete: "off", placeholder: "sagemaker:ListEndpoints" });
  const resource = h("input", { name: "resource", spellcheck: "false", autocomplete: "off", value: "*" });
  const status = h("div", { class: "iam-simulation", "aria-live": "polite" });
  const form = h(
    "form",
    { "aria-label": "Simulate a request" },
    h("div", { class: "form-row" }, field("Action", action), field("Resource", resource), h("button", { type: "submit", class: "btn primary" }, "Simulate")),
    status,
  );
  onSubmit(form, status, async () => {
    const body = await post("/api/v1/iam/simulate", { principal, actions: [action.value.trim()], resources: [resource.value.trim() || "*"] }, { signal });
    fill(
      status,
      body.results.map((r) =>
        h(
          "div",
          { class: `iam-decision ${r.allowed ? "ok-box" : "error-box"}` },
          h("span", { class: `badge ${r.allowed ? "good" : "bad"}` }, r.allowed ? "Allowed" : "Denied"),
          " ",
          h("span", { class: "mono" }, `${r.action} on ${r.resource}`),
          h("p", {}, decisionText(r)),
          r.message ? h("p", { class: "hint" }, r.message) : null,
        ),
      ),
    );
  });
  return section("Simulate", h("p", { class: "hint" }, "Would this principal be allowed? Evaluated by the same policies the API enforces; nothing is called."), form);
}

// --- policies -------------------------------------------------------------------------------

const STARTER = JSON.stringify(
  { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["sagemaker:ListEndpoints"], Resource: "*" }] },
  null,
  2,
);

function createPolicyForm(app, signal) {
  const name = h("input", { name: "name", required: true, spellcheck: "false", autocomplete: "off" });
  const description = h("input", { name: "description", autocomplete: "off" });
  const editor = policyEditor({ label: "Policy document", value: STARTER, signal });
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { "aria-label": "Create a policy" },
    h("div", { class: "form-row" }, field("Policy name", name), field("Description", description)),
    editor.el,
    h("div", { class: "iam-buttons" }, button("Validate", () => editor.validate().catch((e) => fill(editor.results, errorBox(e)))), h("button", { type: "submit", class: "btn primary" }, "Create policy")),
    status,
  );
  onSubmit(form, status, async () => {
    status.replaceChildren();
    await validThenSave(editor, async () => {
      const body = await iam("CreatePolicy", { PolicyName: name.value.trim(), PolicyDocument: editor.text(), Description: description.value || undefined }, { signal });
      toast(`Created ${body.Policy.PolicyName}`);
      app.go(`/iam/policies/${seg(body.Policy.Arn)}`);
    });
  });
  return form;
}

async function policiesPage(main, page, app) {
  const create = h("details", { class: "card iam-create" }, h("summary", {}, "Create policy"), createPolicyForm(app, page.signal));
  fill(main, pageHeader("Policies"), subnav("Policies"));
  const policies = await attempt(iam("ListPolicies", { Scope: "Local" }, { signal: page.signal }));
  main.append(
    shown(policies, (body) =>
      section(
        "Customer managed policies",
        table({
          label: "Customer managed policies",
          columns: [
            { label: "Name", value: (p) => link(policyHref(p.Arn), p.PolicyName) },
            { label: "Attachments", value: (p) => p.AttachmentCount, numeric: true },
            { label: "Default version", value: (p) => p.DefaultVersionId },
            { label: "Updated", value: (p) => when(p.UpdateDate) },
            { label: "Description", value: (p) => p.Description || "—" },
          ],
          rows: list(body.Policies),
          empty: "No customer managed policies yet.",
        }),
      ),
    ),
    create,
  );
}

/** A policy's page; `notice` is shown under the editor (what the last save did). */
async function policyPage(main, page, notice = null) {
  const arn = page.params.arn;
  const { signal } = page;
  const found = await first(main, "Policy", iam("GetPolicy", { PolicyArn: arn }, { signal }));
  if (!found) return;
  const policy = found.Policy;
  const [version, versions] = await Promise.all([
    iam("GetPolicyVersion", { PolicyArn: arn, VersionId: policy.DefaultVersionId }, { signal }),
    attempt(iam("ListPolicyVersions", { PolicyArn: arn }, { signal })),
  ]);
  const editor = policyEditor({ label: `Policy document (${policy.DefaultVersionId})`, value: prettyDocument(version.PolicyVersion.Document), signal });
  // AWS managed policies cannot be changed: shown read-only, still validatable.
  const builtin = arn.startsWith("arn:aws:iam::aws:policy/");
  editor.textarea.readOnly = builtin;
  const status = h("div", { "aria-live": "polite" }, builtin ? h("p", { class: "hint" }, "An AWS managed policy: read-only. Copy it into a new policy to change it.") : null, notice ? h("p", { class: "ok-box", role: "status", tabindex: "-1" }, notice) : null);
  const save = async () => {
    status.replaceChildren();
    await validThenSave(editor, async () => {
      const body = await iam("CreatePolicyVersion", { PolicyArn: arn, PolicyDocument: editor.text(), SetAsDefault: true }, { signal });
      // Drawn again so the summary and the editor's label name the new default version.
      await policyPage(main, page, `Saved as version ${body.PolicyVersion.VersionId}, now the default.`);
    });
  };
  const form = h(
    "form",
    { "aria-label": "Edit the policy document" },
    editor.el,
    h(
      "div",
      { class: "iam-buttons" },
      button("Validate", () => editor.validate().catch((e) => fill(editor.results, errorBox(e)))),
      builtin ? null : h("button", { type: "submit", class: "btn primary" }, "Save as new version"),
    ),
    status,
  );
  onSubmit(form, status, save);
  fill(
    main,
    h("p", { class: "breadcrumb" }, link("#/iam/policies", "Policies"), " / "),
    pageHeader(policy.PolicyName),
    section(
      "Summary",
      facts([
        ["ARN", h("span", { class: "mono" }, policy.Arn)],
        ["Description", policy.Description || "—"],
        ["Default version", policy.DefaultVersionId],
        ["Versions", shown(versions, (b) => list(b.Versions).map((v) => v.VersionId).join(", "))],
        ["Attachments", policy.AttachmentCount],
        ["Updated", when(policy.UpdateDate)],
      ]),
    ),
    section("Document", form),
  );
  // After a save the button that had focus is gone: keep keyboard users where they were.
  if (notice) status.firstChild.focus();
}

export default function register(app) {
  app.nav("IAM", "#/iam");
  app.route("/iam", hub);
  app.route("/iam/users", usersPage);
  app.route("/iam/users/:name", userPage);
  app.route("/iam/roles", rolesPage);
  app.route("/iam/roles/:name", rolePage);
  app.route("/iam/policies", (main, page) => policiesPage(main, page, app));
  app.route("/iam/policies/:arn", policyPage);
}
