// The console's shell: sign-in, the navigation, and a hash router that gives each page
// a fresh `page` (its parameters, an AbortSignal, and timers that stop when you leave).

import { onSignedOut } from "./api.js";
import { button, errorBox, fill, h, pageHeader, toast } from "./ui.js";
import overview from "./pages/overview.js";
import datasets from "./pages/datasets.js";
import training from "./pages/training.js";
import tuning from "./pages/tuning.js";
import models from "./pages/models.js";
import endpoints from "./pages/endpoints.js";
import functions from "./pages/functions.js";
import iamPages from "./pages/iam.js";

const routes = [];
const navItems = [];
let session = null;
let current = null;

export const app = {
  /** route("/training-jobs/:name", async (main, page) => {...}); page.params.name */
  route(pattern, render) {
    const names = [];
    const source = pattern.replace(/:([a-zA-Z]+)/g, (_, name) => {
      names.push(name);
      return "([^/]+)";
    });
    routes.push({ regex: new RegExp(`^${source}$`), names, render });
  },
  /** A link in the navigation; `match` is the path prefix that marks it current. */
  nav(label, href, match = href.slice(1)) {
    navItems.push({ label, href, match });
  },
  get session() {
    return session;
  },
  go(path) {
    window.location.hash = `#${path}`;
  },
};

for (const register of [overview, datasets, training, tuning, models, endpoints, functions, iamPages]) {
  register(app);
}

class Page {
  constructor(params) {
    this.params = params;
    this.controller = new AbortController();
    this.timers = [];
    this.leaving = [];
  }
  get signal() {
    return this.controller.signal;
  }
  get left() {
    return this.controller.signal.aborted;
  }
  /** Run fn every `ms` while this page is shown (and the tab visible); errors show once. */
  every(ms, fn) {
    let failing = false;
    const tick = async () => {
      if (this.left || document.hidden) return;
      try {
        await fn();
        failing = false;
      } catch (error) {
        if (error.name === "AbortError" || this.left) return;
        if (!failing) toast(`Refreshing failed: ${error.message}`, "error");
        failing = true;
      }
    };
    this.timers.push(setInterval(tick, ms));
  }
  onLeave(fn) {
    this.leaving.push(fn);
  }
  leave() {
    this.controller.abort();
    this.timers.forEach(clearInterval);
    this.leaving.forEach((fn) => fn());
  }
}

function currentPath() {
  const hash = decodeURI(window.location.hash.slice(1));
  return hash.startsWith("/") ? hash : "/";
}

function shell() {
  const root = document.getElementById("app");
  const menu = h("button", {
    type: "button",
    class: "btn menu-toggle",
    "aria-expanded": "false",
    "aria-controls": "nav",
    text: "Menu",
  });
  const nav = h(
    "nav",
    { id: "nav", "aria-label": "Console" },
    h("ul", {}, navItems.map((item) => h("li", {}, h("a", { href: item.href, dataset: { match: item.match } }, item.label)))),
  );
  menu.addEventListener("click", () => {
    const open = menu.getAttribute("aria-expanded") !== "true";
    menu.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
  nav.addEventListener("click", (event) => {
    if (event.target.closest("a")) {
      menu.setAttribute("aria-expanded", "false");
      nav.classList.remove("open");
    }
  });
  const header = h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/" }, "kennel"),
    menu,
    h(
      "div",
      { class: "who" },
      h("span", { class: "user", title: session.arn }, session.user),
      button("Sign out", signOut, { class: "btn small" }),
    ),
  );
  const main = h("main", { id: "main", tabindex: "-1" });
  fill(root, header, h("div", { class: "layout" }, nav, main));
  root.removeAttribute("aria-busy");
}

async function render() {
  if (!session) return;
  const path = currentPath();
  const main = document.getElementById("main");
  if (current) current.leave();
  for (const link of document.querySelectorAll("#nav a")) {
    const match = link.dataset.match;
    const here = match === "/" ? path === "/" : path.startsWith(match);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const route of routes) {
    const found = route.regex.exec(path);
    if (!found) continue;
    const params = Object.fromEntries(route.names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
    const page = new Page(params);
    current = page;
    fill(main, h("p", { class: "loading" }, "Loading…"));
    try {
      await route.render(main, page);
    } catch (error) {
      if (page.left || error.name === "AbortError") return;
      // Keep the page's name above the error: a denied page still says where you are.
      fill(main, pageHeader(navLabel(path)), errorBox(error));
    }
    if (!page.left) {
      const heading = main.querySelector("h1");
      document.title = `${heading ? heading.textContent : "kennel"} · kennel console`;
      if (window.__kennelFocusOnRender) (heading || main).focus();
      window.__kennelFocusOnRender = true;
    }
    return;
  }
  fill(main, h("h1", { tabindex: "-1" }, "Not found"), h("p", {}, `Nothing in the console at ${path}.`), h("a", { href: "#/" }, "Overview"));
}

/** The label of the navigation entry that holds `path` (the longest match). */
function navLabel(path) {
  const holders = navItems.filter((item) => (item.match === "/" ? path === "/" : path.startsWith(item.match)));
  holders.sort((a, b) => b.match.length - a.match.length);
  return holders.length ? holders[0].label : "kennel";
}

async function signOut() {
  await fetch("/console/api/signout", { method: "POST", credentials: "same-origin", headers: { "X-Kennel-Console": "1" } });
  session = null;
  if (current) current.leave();
  showSignIn();
}

function showSignIn(message) {
  const root = document.getElementById("app");
  const status = h("div", { class: "signin-status", "aria-live": "assertive" });
  if (message) status.append(h("p", { class: "error-box", role: "alert" }, message));
  const keyForm = h(
    "form",
    { class: "signin-form", "aria-label": "Sign in with an access key" },
    h("h2", {}, "With an access key"),
    h("div", { class: "field" }, h("label", { for: "access-key-id" }, "Access key ID"), h("input", { id: "access-key-id", name: "access_key_id", autocomplete: "username", required: true, spellcheck: "false" })),
    h("div", { class: "field" }, h("label", { for: "secret-access-key" }, "Secret access key"), h("input", { id: "secret-access-key", name: "secret_access_key", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit", class: "btn primary" }, "Sign in"),
  );
  const passwordForm = h(
    "form",
    { class: "signin-form", "aria-label": "Sign in with a password" },
    h("h2", {}, "With a console password"),
    h("div", { class: "field" }, h("label", { for: "user-name" }, "IAM user name"), h("input", { id: "user-name", name: "user_name", autocomplete: "username", required: true, spellcheck: "false" })),
    h("div", { class: "field" }, h("label", { for: "password" }, "Password"), h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit", class: "btn primary" }, "Sign in"),
  );
  const forms = h("div", { class: "signin-forms" }, keyForm, passwordForm);
  for (const form of [keyForm, passwordForm]) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      status.replaceChildren();
      const fields = Object.fromEntries(new FormData(form));
      try {
        const body = await postSignIn("/console/api/signin", fields);
        if (body.__type === "PasswordResetRequired") {
          fill(forms, newPasswordForm(status, fields.user_name, fields.password, body.message));
          document.getElementById("new-password").focus();
          return;
        }
        session = body;
        start();
      } catch (error) {
        status.append(h("p", { class: "error-box", role: "alert" }, error.message));
        submit.disabled = false;
      }
    });
  }
  fill(
    root,
    h(
      "main",
      { id: "main", class: "signin", tabindex: "-1" },
      h("h1", {}, "Sign in to kennel"),
      h("p", { class: "lead" }, "Use an IAM user's access key, or the console password an administrator set with `kennel iam users set-password`."),
      status,
      forms,
    ),
  );
  root.removeAttribute("aria-busy");
  document.title = "Sign in · kennel console";
  document.getElementById("access-key-id").focus();
}

/** POST a sign-in form; the session on success, the answer of a password that must be
 * changed first, or an Error with the server's message. */
async function postSignIn(url, fields) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Kennel-Console": "1" },
    body: JSON.stringify(fields),
  });
  const body = await response.json();
  if (response.status === 403 && body.__type === "PasswordResetRequired") return body;
  if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
  return body;
}

/** The form a user whose password must be reset fills in: the new password twice. */
function newPasswordForm(status, userName, oldPassword, reason) {
  const fresh = h("input", { id: "new-password", name: "new_password", type: "password", autocomplete: "new-password", required: true, maxlength: "128", "aria-describedby": "new-password-rules" });
  const confirm = h("input", { id: "confirm-password", name: "confirm_password", type: "password", autocomplete: "new-password", required: true });
  const form = h(
    "form",
    { class: "signin-form", "aria-label": "Choose a new password" },
    h("h2", {}, "Choose a new password"),
    h("p", {}, reason || "Your password must be changed before you sign in."),
    h("p", {}, "IAM user: ", h("strong", {}, userName)),
    h("div", { class: "field" }, h("label", { for: "new-password" }, "New password"), fresh, h("p", { id: "new-password-rules", class: "help" }, "Different from the old one, and following the rules above.")),
    h("div", { class: "field" }, h("label", { for: "confirm-password" }, "Confirm new password"), confirm),
    h("button", { type: "submit", class: "btn primary" }, "Change password and sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    if (fresh.value !== confirm.value) {
      confirm.setAttribute("aria-invalid", "true");
      status.append(h("p", { class: "error-box", role: "alert" }, "The two new passwords do not match."));
      confirm.focus();
      return;
    }
    confirm.removeAttribute("aria-invalid");
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      session = await postSignIn("/console/api/change-password", { user_name: userName, old_password: oldPassword, new_password: fresh.value });
      start();
    } catch (error) {
      status.append(h("p", { class: "error-box", role: "alert" }, error.message));
      submit.disabled = false;
    }
  });
  return form;
}

function start() {
  shell();
  window.__kennelFocusOnRender = false;
  render();
}

onSignedOut(() => {
  if (!session) return;
  session = null;
  if (current) current.leave();
  showSignIn("Your console session has ended. Sign in again.");
});

window.addEventListener("hashchange", render);

async function boot() {
  const response = await fetch("/console/api/session", { credentials: "same-origin" });
  const body = await response.json();
  if (body.signed_in) {
    session = body;
    start();
  } else {
    showSignIn();
  }
}

boot().catch((error) => {
  fill(document.getElementById("app"), errorBox(error));
});
