// Data sets: the list, and one set's classes, counts per split, a chart and sample images.

import { get, request, seg } from "../api.js";
import { badge, chart, errorBox, facts, fill, h, link, pageHeader, section, table, when } from "../ui.js";

const SPLITS = ["train", "valid", "test"];
const SAMPLES_PER_CLASS = 3;
const SAMPLE_CLASSES = 24;

const count = (set, split, cls) => set.splits?.[split]?.counts?.[cls] ?? 0;
const splitTotal = (set, split) => set.splits?.[split]?.images ?? 0;

function listPage(main, page) {
  const body = h("div");
  fill(main, pageHeader("Data sets"), body);
  const draw = async () => {
    const { datasets = [] } = await get("/api/v1/datasets", { signal: page.signal });
    fill(
      body,
      section(
        "All data sets",
        table({
          label: "Data sets",
          columns: [
            { label: "Name", value: (d) => link(`#/datasets/${seg(d.name)}`, d.name) },
            { label: "Status", value: (d) => badge(d.status) },
            { label: "Classes", value: (d) => d.num_classes, numeric: true },
            ...SPLITS.map((split) => ({ label: split, value: (d) => splitTotal(d, split), numeric: true })),
            { label: "Created", value: (d) => when(d.created_at) },
          ],
          rows: datasets,
          empty: "No data sets yet. Create one with `kennel datasets create NAME --from PATH` (or --demo).",
        }),
      ),
    );
  };
  return draw();
}

function classTable(set) {
  return table({
    label: "Images per class and split",
    columns: [
      { label: "Class", value: (cls) => cls },
      ...SPLITS.map((split) => ({ label: split, value: (cls) => count(set, split, cls), numeric: true })),
    ],
    rows: set.classes,
    empty: "This data set has no classes.",
  });
}

function drawCounts(el, set) {
  const traces = SPLITS.filter((split) => set.splits?.[split]).map((split) => ({
    type: "bar",
    name: split,
    x: set.classes,
    y: set.classes.map((cls) => count(set, split, cls)),
  }));
  const height = Math.max(280, Math.min(600, 200 + set.classes.length * 2));
  return chart(el, traces, { barmode: "stack", height, xaxis: { automargin: true }, yaxis: { title: { text: "images" } } }, "Images per class");
}

/** A sample as a blob URL: fetched with the session cookie, so it is authorized like the API. */
async function sampleImage(set, cls, index, signal, urls) {
  const split = SPLITS.find((s) => count(set, s, cls) > index);
  if (!split) return null;
  const path = `/api/v1/datasets/${seg(set.name)}/samples/${split}/${seg(cls)}/${index}`;
  const response = await request("GET", path, { signal });
  const url = URL.createObjectURL(await response.blob());
  urls.push(url);
  return h(
    "figure",
    {},
    h("img", { src: url, alt: `${cls}: ${split} image ${index + 1}`, loading: "lazy", decoding: "async" }),
    h("figcaption", {}, `${split} #${index + 1}`),
  );
}

async function fillSamples(box, set, page) {
  const urls = [];
  page.onLeave(() => urls.forEach((u) => URL.revokeObjectURL(u)));
  const shown = set.classes.slice(0, SAMPLE_CLASSES);
  const rows = shown.map((cls) => {
    const thumbs = h("div", { class: "thumbs", role: "list", "aria-label": `Samples of ${cls}` });
    return { cls, thumbs, el: h("div", { class: "sample-class" }, h("h3", {}, cls), thumbs) };
  });
  fill(
    box,
    rows.map((r) => r.el),
    set.classes.length > shown.length ? h("p", { class: "hint" }, `Samples of the first ${shown.length} of ${set.classes.length} classes.`) : null,
  );
  // One class at a time: a set of 133 breeds would otherwise fire hundreds of requests at once.
  for (const row of rows) {
    if (page.left) return;
    try {
      const figures = await Promise.all([...Array(SAMPLES_PER_CLASS).keys()].map((i) => sampleImage(set, row.cls, i, page.signal, urls)));
      fill(row.thumbs, figures.filter(Boolean).map((f) => (f.setAttribute("role", "listitem"), f)));
      if (!row.thumbs.children.length) fill(row.thumbs, h("p", { class: "empty" }, "No images."));
    } catch (error) {
      if (error.name === "AbortError" || page.left) return;
      fill(row.thumbs, errorBox(error));
      if (error.status === 403) return;
    }
  }
}

async function detailPage(main, page) {
  const name = page.params.name;
  const set = await get(`/api/v1/datasets/${seg(name)}`, { signal: page.signal });
  const chartEl = h("div", { class: "chart" });
  const samples = h("div", { class: "samples" }, h("p", { class: "loading" }, "Loading samples…"));
  fill(
    main,
    h("p", { class: "breadcrumb" }, link("#/datasets", "Data sets"), " / ", name),
    pageHeader(name),
    section(
      "Summary",
      facts([
        ["Status", badge(set.status)],
        ["Classes", set.num_classes],
        ["Images", `${set.total_images} (${SPLITS.map((s) => `${s} ${splitTotal(set, s)}`).join(", ")})`],
        ["Size", `${(set.total_bytes / 2 ** 20).toFixed(1)} MiB`],
        ["Source", h("span", { class: "mono" }, set.source)],
        ["Stored at", h("span", { class: "mono" }, set.artifact_uri || "—")],
        ["Created", when(set.created_at)],
      ]),
    ),
    section("Images per class", chartEl),
    section("Classes", classTable(set)),
    section("Sample images", samples),
  );
  drawCounts(chartEl, set).catch((error) => fill(chartEl, errorBox(error)));
  fillSamples(samples, set, page);
}

export default function register(app) {
  app.nav("Data sets", "#/datasets");
  app.route("/datasets", listPage);
  app.route("/datasets/:name", detailPage);
}
