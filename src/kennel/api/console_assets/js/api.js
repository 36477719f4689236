// Calls to kennel's API from the console: the same routes the CLI and boto3 use,
// authenticated by the console's session cookie (see kennel/api/_console.py).

export class ApiError extends Error {
  constructor(status, code, message, hint) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || `HTTP${status}`;
    this.hint = hint || "";
  }
  get denied() {
    return this.status === 403 && /AccessDenied/.test(this.code);
  }
  get signedOut() {
    return /UnrecognizedClient|ExpiredToken|NotSignedIn/.test(this.code);
  }
}

const listeners = { signedOut: [] };

/** Called with the error when a request finds the session gone (expired, signed out). */
export function onSignedOut(fn) {
  listeners.signedOut.push(fn);
}

async function errorOf(response) {
  const text = await response.text();
  let code = response.headers.get("x-amzn-ErrorType") || "";
  code = code.split(":")[0];
  let message = "";
  let hint = "";
  try {
    const body = JSON.parse(text);
    message = body.message || body.Message || "";
    hint = body.hint || "";
    code = code || body.__type || body.code || "";
  } catch {
    const xml = new DOMParser().parseFromString(text, "application/xml");
    const pick = (tag) => xml.getElementsByTagName(tag)[0]?.textContent || "";
    if (pick("Code")) {
      code = pick("Code");
      message = pick("Message");
    } else {
      message = text.slice(0, 500);
    }
  }
  return new ApiError(response.status, code, message, hint);
}

/**
 * One request. `json` is sent as a JSON body; `body` as is. Resolves to the Response;
 * a non-2xx status rejects with an ApiError (AWS's code, message and kennel's hint).
 */
export async function request(method, path, { json, body, headers = {}, signal } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { "X-Kennel-Console": "1", ...headers },
    signal,
  };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.signedOut) listeners.signedOut.forEach((fn) => fn(error));
    throw error;
  }
  return response;
}

async function jsonOf(response) {
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => request("GET", path, opts).then(jsonOf);
export const post = (path, json, opts = {}) => request("POST", path, { ...opts, json }).then(jsonOf);
export const put = (path, json, opts = {}) => request("PUT", path, { ...opts, json }).then(jsonOf);
export const del = (path, opts) => request("DELETE", path, opts).then(jsonOf);
export const text = (path, opts) => request("GET", path, opts).then((r) => r.text());

/** A path segment, escaped. */
export const seg = (value) => encodeURIComponent(value);

// --- IAM (AWS's Query protocol: a form POST to "/", answered in XML) ---------------

function xmlToValue(node) {
  const elements = [...node.children];
  if (!elements.length) return node.textContent;
  if (elements.every((e) => e.tagName === "member")) return elements.map(xmlToValue);
  const out = {};
  for (const child of elements) out[child.tagName] = xmlToValue(child);
  return out;
}

function flatten(prefix, value, form) {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => flatten(`${prefix}.member.${i + 1}`, item, form));
  } else if (typeof value === "object") {
    for (const [k, v] of Object.entries(value)) flatten(prefix ? `${prefix}.${k}` : k, v, form);
  } else {
    form.append(prefix, String(value));
  }
}

/**
 * An IAM (or STS) action, e.g. iam("ListUsers") or iam("GetPolicyVersion", {PolicyArn, VersionId}).
 * Resolves to the action's <ActionResult> element as plain objects; lists ("member") are arrays.
 * Note: IAM returns policy documents URL-encoded, as AWS does; decode with decodeURIComponent.
 */
export async function iam(action, params = {}, { service = "iam", signal } = {}) {
  const form = new URLSearchParams({ Action: action, Version: service === "sts" ? "2011-06-15" : "2010-05-08" });
  flatten("", params, form);
  const response = await request("POST", "/", {
    body: form,
    headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Kennel-Service": service },
    signal,
  });
  const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
  const result = xml.getElementsByTagName(`${action}Result`)[0];
  return result ? xmlToValue(result) : {};
}

/** An Application Auto Scaling action (AWS JSON 1.1), e.g. autoscaling("DescribeScalingPolicies", {...}). */
export async function autoscaling(action, body = {}, { signal } = {}) {
  const response = await request("POST", "/", {
    body: JSON.stringify(body),
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": `AnyScaleFrontendService.${action}`,
    },
    signal,
  });
  return jsonOf(response);
}
