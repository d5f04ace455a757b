// pacskit's web page: study list, study, viewer. Plain JavaScript, no build step.
// Searches and metadata come from /ui/api (names withheld unless the server shows them),
// images from DICOMweb's rendered and thumbnail resources: nothing DICOM is decoded here.
"use strict";

const WEB = "/dicom-web";
const API = "/ui/api";
const T = {  // DICOM JSON keys (PS3.18 F.2)
  PatientName: "00100010", PatientID: "00100020", StudyDate: "00080020", StudyTime: "00080030",
  AccessionNumber: "00080050", ModalitiesInStudy: "00080061", StudyDescription: "00081030",
  StudyInstanceUID: "0020000D", NumberOfStudyRelatedSeries: "00201206", NumberOfStudyRelatedInstances: "00201208",
  Modality: "00080060", SeriesDescription: "0008103E", SeriesInstanceUID: "0020000E", SeriesNumber: "00200011",
  NumberOfSeriesRelatedInstances: "00201209", SOPInstanceUID: "00080018", InstanceNumber: "00200013",
  NumberOfFrames: "00280008", Rows: "00280010", Columns: "00280011", WindowCenter: "00281050",
  WindowWidth: "00281051", BitsStored: "00280101", PixelRepresentation: "00280103", RescaleSlope: "00281053",
  RescaleIntercept: "00281052", PhotometricInterpretation: "00280004", ReferencedSOPSequence: "00081199",
  FailedSOPSequence: "00081198",
};
const PRESETS = {  // window center, width (Hounsfield units for CT)
  CT: [["Soft tissue", 40, 400], ["Lung", -600, 1500], ["Bone", 400, 1800], ["Brain", 40, 80], ["Liver", 60, 150]],
  PT: [["SUV 0–5", 2.5, 5]],
};
const SEARCH_FIELDS = [
  ["PatientID", "Patient ID", "text"], ["from", "Date from", "date"], ["to", "Date to", "date"],
  ["ModalitiesInStudy", "Modality", "text"], ["StudyDescription", "Description", "text"],
  ["AccessionNumber", "Accession", "text"],
];
const PAGE_SIZES = [25, 50, 100];

const state = { config: { showPatientNames: false }, me: null, dictionary: null, viewer: null, listQuery: "" };

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function value(ds, key) {
  const el = ds && ds[T[key] || key];
  if (!el || !el.Value || !el.Value.length) return "";
  const v = el.Value[0];
  if (v && typeof v === "object") return v.Alphabetic || "";
  return v;
}
function values(ds, key) {
  const el = ds && ds[T[key] || key];
  return el && el.Value ? el.Value : [];
}
function formatName(name) {
  const [family, given, middle] = String(name || "").split("^");
  return [family, [given, middle].filter(Boolean).join(" ")].filter(Boolean).join(", ");
}
function formatDate(d) {
  d = String(d || "");
  return d.length === 8 ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d;
}
function formatTime(t) {
  t = String(t || "");
  return t.length >= 4 ? `${t.slice(0, 2)}:${t.slice(2, 4)}` : t;
}
function status(text, kind) {
  const el = document.getElementById("status");
  el.textContent = text || "";
  el.className = `status ${kind || ""}`;
}

class HttpError extends Error {
  constructor(status, text) { super(text); this.status = status; }
}
async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/dicom+json, application/json" } });
  if (!response.ok) throw new HttpError(response.status, (await response.text()).trim() || response.statusText);
  return response.json();
}
function describe(error) {
  if (error.status === 404 && /deleted|no such/.test(error.message)) return `${error.message} — it is no longer in the archive.`;
  return error.message;
}

// ---- routing -------------------------------------------------------------------------------------------
function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const main = document.getElementById("main");
  if (state.viewer) { state.viewer.destroy(); state.viewer = null; }
  main.className = "";
  main.replaceChildren();
  if (parts[0] === "study" && parts[1]) return showStudy(main, parts[1]);
  if (parts[0] === "view" && parts[2]) return showViewer(main, parts[1], parts[2]);
  return showList(main, new URLSearchParams(query || ""));
}

// ---- study list ----------------------------------------------------------------------------------------
function qidoParams(form) {
  const out = new URLSearchParams();
  const get = (name) => (form.get(name) || "").trim();
  if (get("PatientID")) out.set("PatientID", get("PatientID"));
  if (get("AccessionNumber")) out.set("AccessionNumber", get("AccessionNumber"));
  if (get("ModalitiesInStudy")) out.set("ModalitiesInStudy", get("ModalitiesInStudy").toUpperCase());
  if (get("StudyDescription")) {
    const text = get("StudyDescription");
    out.set("StudyDescription", /[*?]/.test(text) ? text : `*${text}*`);
  }
  const from = get("from").replaceAll("-", ""), to = get("to").replaceAll("-", "");
  if (from || to) out.set("StudyDate", from === to ? from : `${from}-${to}`);
  return out;
}

function columns() {
  const cols = [];
  if (state.config.showPatientNames) cols.push({ key: "PatientName", label: "Patient name", format: (ds) => formatName(value(ds, "PatientName")) });
  cols.push(
    { key: "PatientID", label: "Patient ID" },
    { key: "StudyDate", label: "Date", format: (ds) => `${formatDate(value(ds, "StudyDate"))} ${formatTime(value(ds, "StudyTime"))}`.trim() },
    { key: "StudyDescription", label: "Description", cls: "desc" },
    { key: "ModalitiesInStudy", label: "Modalities", format: (ds) => values(ds, "ModalitiesInStudy").join(", ") },
    { key: "AccessionNumber", label: "Accession" },
    { key: "NumberOfStudyRelatedSeries", label: "Series", cls: "num", numeric: true },
    { key: "NumberOfStudyRelatedInstances", label: "Instances", cls: "num", numeric: true },
  );
  return cols;
}

function showList(main, params) {
  const asked = Math.floor(Number(params.get("limit")));
  const limit = asked >= 1 && asked <= 500 ? asked : PAGE_SIZES[0];
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const sort = params.get("sort") || "StudyDate";
  const descending = params.has("sort") ? params.get("order") === "desc" : true;
  document.title = "Studies — pacskit";
  const form = h("form", { class: "search", role: "search", "aria-label": "Search studies" },
    SEARCH_FIELDS.map(([name, label, type]) => h("label", {}, label,
      h("input", { name, type, value: params.get(name) || "", autocomplete: "off",
        placeholder: name === "ModalitiesInStudy" ? "CT, MR…" : null }))),
    h("button", { class: "primary", type: "submit" }, "Search"),
    h("button", { type: "button", onclick: () => { location.hash = "#/"; } }, "Clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [name] of SEARCH_FIELDS) {
      const v = (new FormData(form).get(name) || "").trim();
      if (v) next.set(name, v);
    }
    if (limit !== PAGE_SIZES[0]) next.set("limit", limit);
    location.hash = `#/?${next}`;
  });
  const table = h("table", { class: "studies", "aria-label": "Studies" });
  const pager = h("div", { class: "pager" });
  const notice = state.notice ? h("p", { class: "notice ok", role: "status" }, state.notice) : null;
  state.notice = null;
  main.append(...[h("h1", {}, "Studies"), notice, form].filter(Boolean),
    h("div", { class: "toolbar" }, h("span", { class: "spacer" }), uploadControl(() => route())), table, pager);

  const cols = columns();
  const col = cols.find((c) => c.key === sort) || cols.find((c) => c.key === "StudyDate");
  const filters = qidoParams(new FormData(form));
  const query = new URLSearchParams(filters);
  query.set("limit", limit + 1);
  query.set("offset", offset);
  query.set("orderby", (col.key === "StudyDate" ? ["StudyDate", "StudyTime"] : [col.key])
    .map((k) => (descending ? `-${k}` : k)).join(","));
  const setHash = (changes) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) { if (v === null || v === "") next.delete(k); else next.set(k, v); }
    location.hash = `#/?${next}`;
  };
  status("Searching…");
  const total = getJSON(`${API}/studies/count?${filters}`).then((answer) => answer.count, () => null);
  getJSON(`${API}/studies?${query}`).then((studies) => {
    const more = studies.length > limit;
    studies = studies.slice(0, limit);
    table.append(h("thead", {}, h("tr", {}, cols.map((c) => h("th", {
      scope: "col", class: c.cls === "num" ? "num" : null,
      "aria-sort": c.key === col.key ? (descending ? "descending" : "ascending") : null,
    }, h("button", { type: "button", "data-sort": c.key,
      onclick: () => setHash({ sort: c.key, order: c.key === col.key && !descending ? "desc" : null, offset: null }) },
    c.label))))));
    const body = h("tbody");
    for (const ds of studies) {
      const uid = value(ds, "StudyInstanceUID");
      const href = `#/study/${encodeURIComponent(uid)}`;
      const cells = cols.map((c, i) => {
        const text = c.format ? c.format(ds) : value(ds, c.key);
        return h("td", { class: c.cls || null }, i === 0 ? h("a", { href }, text || "(none)") : text);
      });
      body.append(h("tr", { "data-study": uid, onclick: (e) => { if (!e.target.closest("a")) location.hash = href; } }, cells));
    }
    table.append(body);
    if (!studies.length) table.append(h("caption", { class: "empty" }, "No study matches."));
    const range = h("span", { "aria-live": "polite", class: "range" }, studies.length ? `${offset + 1}–${offset + studies.length}` : "0");
    pager.append(
      h("button", { type: "button", disabled: offset === 0, onclick: () => setHash({ offset: Math.max(0, offset - limit) || null }) }, "‹ Previous"),
      range,
      h("button", { type: "button", disabled: !more, onclick: () => setHash({ offset: offset + limit }) }, "Next ›"),
      h("label", { class: "field" }, "Per page", h("select", { onchange: (e) => setHash({ limit: e.target.value, offset: null }) },
        [...new Set([...PAGE_SIZES, limit])].sort((a, b) => a - b).map((n) => h("option", { value: n, selected: n === limit }, n)))));
    status(`${studies.length}${more ? "+" : ""} studies`);
    total.then((count) => {
      if (count === null) return;
      range.textContent = `${studies.length ? `${offset + 1}–${offset + studies.length}` : "0"} of ${count.toLocaleString("en")}`;
      status(`${count.toLocaleString("en")} stud${count === 1 ? "y" : "ies"}`);
    });
  }).catch((error) => { table.replaceWith(h("p", { class: "error", role: "alert" }, describe(error))); status(""); });
}

// ---- upload (STOW-RS, PS3.18 10.5) ---------------------------------------------------------------------
function uploadControl(done) {
  const input = h("input", { type: "file", id: "upload-files", multiple: true, accept: ".dcm,application/dicom,*/*" });
  const last = state.lastUpload;
  const progress = h("progress", { max: 1, value: last ? 1 : 0, hidden: !last, "aria-label": "Upload progress" });
  const outcome = h("span", { class: `outcome ${last ? last.kind : ""}`, role: "status", "aria-live": "polite" }, last ? last.text : "");
  input.addEventListener("change", () => {
    if (input.files.length) upload([...input.files], progress, outcome, done);
    input.value = "";
  });
  return h("div", { class: "upload" }, progress, outcome,
    h("label", { for: "upload-files", class: "button", tabindex: 0,
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } } }, "Upload files…"), input);
}

function upload(files, progress, outcome, done) {
  const boundary = `pacskit-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
  const parts = [];
  for (const file of files) parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, file, "\r\n");
  parts.push(`--${boundary}--\r\n`);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `${WEB}/studies`);
  xhr.setRequestHeader("Content-Type", `multipart/related; type="application/dicom"; boundary=${boundary}`);
  xhr.setRequestHeader("Accept", "application/dicom+json");
  progress.hidden = false;
  progress.value = 0;
  outcome.className = "outcome";
  outcome.textContent = `Uploading ${files.length} file${files.length > 1 ? "s" : ""}…`;
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = e.loaded / e.total; };
  xhr.onload = () => {
    progress.value = 1;
    let stored = 0, failed = 0;
    try {
      const answer = JSON.parse(xhr.responseText || "{}");
      stored = values(answer, "ReferencedSOPSequence").length;
      failed = values(answer, "FailedSOPSequence").length;
    } catch (_) { /* a text/plain error body */ }
    if (xhr.status >= 200 && xhr.status < 300 || xhr.status === 409) {
      outcome.className = `outcome ${failed ? "error" : "ok"}`;
      outcome.textContent = `${stored} stored${failed ? `, ${failed} failed` : ""}`;
      state.lastUpload = { text: outcome.textContent, kind: failed ? "error" : "ok" };
      if (stored) setTimeout(done, 0);
    } else {
      outcome.className = "outcome error";
      outcome.textContent = `Upload refused (${xhr.status}): ${xhr.responseText.trim().slice(0, 200)}`;
    }
  };
  xhr.onerror = () => { outcome.className = "outcome error"; outcome.textContent = "Upload failed: the connection was lost"; };
  xhr.send(new Blob(parts));
}

// ---- study ---------------------------------------------------------------------------------------------
async function loadSeries(study) {
  const series = await getJSON(`${API}/studies/${study}/series`);
  series.sort((a, b) => (Number(value(a, "SeriesNumber")) || 0) - (Number(value(b, "SeriesNumber")) || 0));
  return series;
}

function showStudy(main, study) {
  document.title = "Study — pacskit";
  const head = h("dl", { class: "study-head" });
  const title = h("h1", {}, "Study");
  const grid = h("div", { class: "series-grid", role: "list", "aria-label": "Series" });
  const actions = h("div", { class: "actions" });
  const notice = state.notice ? h("p", { class: "notice ok", role: "status" }, state.notice) : null;
  state.notice = null;
  main.append(h("p", {}, h("a", { href: `#/?${state.listQuery}` }, "‹ Studies")), ...[title, notice].filter(Boolean), head, actions,
    h("h2", {}, "Series"), grid);
  status("Loading…");
  Promise.all([getJSON(`${API}/studies?StudyInstanceUID=${study}`), loadSeries(study)]).then(([found, series]) => {
    const ds = found[0];
    if (!ds) throw new HttpError(404, `study ${study} is not in the archive`);
    const fields = [
      ...(state.config.showPatientNames ? [["Patient name", formatName(value(ds, "PatientName"))]] : []),
      ["Patient ID", value(ds, "PatientID")], ["Date", `${formatDate(value(ds, "StudyDate"))} ${formatTime(value(ds, "StudyTime"))}`],
      ["Description", value(ds, "StudyDescription")], ["Accession", value(ds, "AccessionNumber")],
      ["Modalities", values(ds, "ModalitiesInStudy").join(", ")],
      ["Series / instances", `${value(ds, "NumberOfStudyRelatedSeries")} / ${value(ds, "NumberOfStudyRelatedInstances")}`],
    ];
    head.append(...fields.flatMap(([k, v]) => [h("div", {}, h("dt", {}, k), h("dd", {}, v || "—"))]));
    title.textContent = value(ds, "StudyDescription") || "Study";
    document.title = `${title.textContent} — pacskit`;
    studyActions(actions, study, null);
    for (const s of series) {
      const uid = value(s, "SeriesInstanceUID");
      const count = Number(value(s, "NumberOfSeriesRelatedInstances")) || 0;
      const label = `Series ${value(s, "SeriesNumber")} ${value(s, "SeriesDescription")}`.trim();
      grid.append(h("a", { class: "series-card", role: "listitem", href: `#/view/${study}/${uid}`, "data-series": uid,
        "aria-label": `${label}, ${value(s, "Modality")}, ${count} instances` },
        h("div", { class: "thumb" }, h("img", { src: `${WEB}/studies/${study}/series/${uid}/thumbnail?viewport=190,150`, alt: "", loading: "lazy" })),
        h("div", { class: "meta" }, h("span", { class: "mod" }, value(s, "Modality")), value(s, "SeriesDescription") || "(no description)",
          h("span", { class: "count" }, `#${value(s, "SeriesNumber")} · ${count} instance${count === 1 ? "" : "s"}`))));
    }
    status("");
  }).catch((error) => { main.append(h("p", { class: "error", role: "alert" }, describe(error))); status(""); });
}

// Actions need the server's /api (docs/web-actions.md); with none, no button is shown.
function studyActions(container, study, series) {
  if (!state.me) return;
  const path = series ? `studies/${study}/series/${series}` : `studies/${study}`;
  const outcome = h("span", { class: "outcome", role: "status", "aria-live": "polite" });
  const dicomdir = h("input", { type: "checkbox", id: "zip-dicomdir" });
  const download = h("a", { class: "button", href: `${WEB}/${path}?accept=application/zip`, download: "" }, "Download ZIP");
  dicomdir.addEventListener("change", () => {
    download.href = `${WEB}/${path}?accept=application/zip${dicomdir.checked ? "&dicomdir=true" : ""}`;
  });
  container.append(download, h("label", { for: "zip-dicomdir", class: "check" }, dicomdir, "with DICOMDIR"));
  if (state.config.ohifPort && !series) {
    const viewer = new URL(`/viewer?StudyInstanceUIDs=${encodeURIComponent(study)}`, location.href);
    viewer.port = String(state.config.ohifPort);
    container.append(h("a", { class: "button", href: viewer.href, target: "_blank", rel: "noopener" }, "Open in OHIF"));
  }
  const actions = state.me.actions || [];
  if (actions.includes("send") && state.nodes && state.nodes.length) {
    const select = h("select", { id: "send-node", "aria-label": "Node to send to" },
      state.nodes.map((n) => h("option", { value: n.name }, `${n.name} (${n.ae_title})`)));
    const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Send progress" });
    container.append(select, h("button", { type: "button", onclick: () => send(path, select.value, progress, outcome) }, "Send"), progress);
  }
  if (actions.includes("delete")) {
    container.append(h("button", { type: "button", class: "danger", onclick: () => remove(path, outcome) }, series ? "Delete series" : "Delete study"));
  }
  container.append(outcome);
}

async function action(method, url, body) {
  const response = await fetch(url, {
    method, headers: { "X-Pacskit-Action": "1", "Content-Type": "application/json", Accept: "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new HttpError(response.status, answer.error || response.statusText);
  return answer;
}

async function send(path, node, progress, outcome) {
  outcome.className = "outcome";
  outcome.textContent = `Sending to ${node}…`;
  progress.hidden = false;
  const stop = h("button", { type: "button", class: "stop-send" }, "Stop");
  progress.after(stop);
  try {
    let job = await action("POST", `/api/${path}/send`, { node });
    stop.onclick = () => { stop.disabled = true; action("DELETE", `/api/jobs/${job.id}`).catch(() => {}); };
    while (job.state === "queued" || job.state === "running") {
      progress.value = job.total ? job.done / job.total : 0;
      await new Promise((resolve) => setTimeout(resolve, 300));
      job = await getJSON(`/api/jobs/${job.id}`);
    }
    progress.value = job.state === "stopped" ? progress.value : 1;
    outcome.className = `outcome ${job.state === "done" && !job.failed ? "ok" : "error"}`;
    outcome.textContent = `${{ done: "Sent", stopped: "Stopped" }[job.state] || "Failed"}: ${job.message}`;
  } catch (error) {
    outcome.className = "outcome error";
    outcome.textContent = `Send refused: ${describe(error)}`;
  } finally {
    stop.remove();
  }
}

async function remove(path, outcome) {
  const what = path.includes("/series/") ? "series" : "study";
  if (!confirm(`Delete this ${what} and all its files from the archive? This cannot be undone.`)) return;
  try {
    const answer = await action("DELETE", `/api/${path}`);
    outcome.className = "outcome ok";
    outcome.textContent = `Deleted ${answer.deleted.instances} instances`;
    state.notice = `Deleted the ${what}: ${answer.deleted.instances} instances`;
    location.hash = what === "study" ? `#/?${state.listQuery}` : `#/study/${path.split("/")[1]}`;
  } catch (error) {
    outcome.className = "outcome error";
    outcome.textContent = `Delete refused: ${describe(error)}`;
  }
}

// ---- viewer --------------------------------------------------------------------------------------------
function showViewer(main, study, series) {
  main.className = "viewer-main";
  state.viewer = new Viewer(main, study, series);
}

class Viewer {
  constructor(main, study, series) {
    this.study = study;
    this.series = series;
    this.frames = [];          // [{sop, frame, frames, number}]
    this.index = 0;
    this.window = null;        // {c, w} asked for, or null: the instance's own VOI
    this.zoom = 1; this.panX = 0; this.panY = 0;
    this.tool = "wl";
    this.cache = new Map();    // url -> Promise<ImageBitmap>
    this.meta = new Map();     // sop -> metadata
    this.bitmap = null;
    this.alive = true;
    this.build(main);
    this.load().catch((error) => this.message(describe(error)));
  }

  build(main) {
    this.canvas = h("canvas", { tabindex: 0, role: "img", "aria-label": "Image viewport: arrow keys or wheel change image, drag adjusts window/level" });
    this.overlays = { tl: h("div", { class: "overlay tl" }), tr: h("div", { class: "overlay tr" }),
      bl: h("div", { class: "overlay bl" }), br: h("div", { class: "overlay br" }) };
    this.msg = h("div", { class: "message", hidden: true, role: "alert" });
    this.viewport = h("div", { class: "viewport" }, this.canvas, ...Object.values(this.overlays), this.msg);
    this.slider = h("input", { type: "range", min: 1, max: 1, value: 1, id: "image-slider" });
    this.slider.addEventListener("input", () => this.go(Number(this.slider.value) - 1));
    this.presets = h("select", { id: "wl-preset", "aria-label": "Window preset" });
    this.presets.addEventListener("change", () => this.preset(this.presets.value));
    const tool = (name, label, key) => h("button", { type: "button", "data-tool": name, "aria-pressed": String(name === this.tool),
      title: `${label} (${key})`, onclick: () => this.setTool(name) }, label);
    this.attrToggle = h("button", { type: "button", "aria-pressed": "false", id: "attrs-toggle", onclick: () => this.toggleAttrs() }, "Attributes");
    const tools = h("div", { class: "tools", role: "toolbar", "aria-label": "Viewer tools" },
      h("a", { class: "button", href: `#/study/${this.study}` }, "‹ Study"),
      tool("wl", "Window/level", "w"), tool("pan", "Pan", "p"), tool("zoom", "Zoom", "z"),
      this.presets, h("button", { type: "button", onclick: () => this.reset(), title: "Reset (r)" }, "Reset"),
      h("label", { for: "image-slider" }, "Image", this.slider), this.attrToggle, ...this.seriesActions());
    this.strip = h("nav", { class: "strip", "aria-label": "Series of the study" });
    this.filter = h("input", { type: "search", placeholder: "Filter attributes", "aria-label": "Filter attributes" });
    this.filter.addEventListener("input", () => this.showAttrs());
    this.attrTable = h("table", { "aria-label": "Attributes of the current instance" });
    this.attrs = h("aside", { class: "attrs", "aria-label": "Attributes" }, this.filter, this.attrTable);
    this.root = h("div", { class: "viewer" }, this.strip, h("div", { class: "stage" }, tools, this.viewport), this.attrs);
    main.append(this.root);
    this.bindInput();
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.viewport);
  }

  seriesActions() {
    if (!state.me) return [];
    const path = `studies/${this.study}/series/${this.series}`;
    const outcome = h("span", { class: "outcome", role: "status", "aria-live": "polite" });
    const out = [h("a", { class: "button", href: `${WEB}/${path}?accept=application/zip`, download: "" }, "Download series")];
    if ((state.me.actions || []).includes("delete")) {
      out.push(h("button", { type: "button", class: "danger", onclick: () => remove(path, outcome) }, "Delete series"));
    }
    return [...out, outcome];
  }

  destroy() {
    this.alive = false;
    this.resizeObserver.disconnect();
    window.removeEventListener("keydown", this.onKey);
  }

  message(text) {
    this.msg.textContent = text;
    this.msg.hidden = !text;
  }

  async load() {
    status("Loading…");
    const [instances, series] = await Promise.all([
      getJSON(`${API}/studies/${this.study}/series/${this.series}/instances`), loadSeries(this.study)]);
    if (!this.alive) return;
    for (const s of series) {
      const uid = value(s, "SeriesInstanceUID");
      this.strip.append(h("a", { href: `#/view/${this.study}/${uid}`, "aria-current": String(uid === this.series) },
        h("img", { src: `${WEB}/studies/${this.study}/series/${uid}/thumbnail?viewport=150,150`, alt: "", loading: "lazy" }),
        `${value(s, "Modality")} #${value(s, "SeriesNumber")} · ${value(s, "NumberOfSeriesRelatedInstances")}`));
      if (uid === this.series) this.seriesDs = s;
    }
    instances.sort((a, b) => (Number(value(a, "InstanceNumber")) || 0) - (Number(value(b, "InstanceNumber")) || 0));
    for (const ds of instances) {
      if (!value(ds, "Rows")) continue;
      const count = Number(value(ds, "NumberOfFrames")) || 1;
      for (let f = 1; f <= count; f++) {
        this.frames.push({ sop: value(ds, "SOPInstanceUID"), frame: f, frames: count, number: value(ds, "InstanceNumber") });
      }
    }
    status("");
    if (!this.frames.length) { this.message("This series has no images."); return; }
    this.slider.max = this.frames.length;
    const modality = this.seriesDs ? value(this.seriesDs, "Modality") : "";
    this.modality = modality;
    this.presets.replaceChildren(h("option", { value: "" }, "Default window"),
      ...(PRESETS[modality] || []).map(([name, c, w], i) => h("option", { value: String(i) }, `${name} (${c}/${w})`)));
    this.canvas.focus();
    await this.go(Math.floor(0));
  }

  url(item, window) {
    const base = `${WEB}/studies/${this.study}/series/${this.series}/instances/${item.sop}`;
    const path = item.frames > 1 ? `${base}/frames/${item.frame}/rendered` : `${base}/rendered`;
    const params = new URLSearchParams({ accept: "image/png" });
    if (window) params.set("window", `${Math.round(window.c * 100) / 100},${Math.max(1, Math.round(window.w * 100) / 100)}`);
    return `${path}?${params}`;
  }

  image(url) {
    if (!this.cache.has(url)) {
      const promise = fetch(url).then(async (response) => {
        if (!response.ok) throw new HttpError(response.status, (await response.text()).trim());
        return createImageBitmap(await response.blob());
      });
      promise.catch(() => this.cache.delete(url));
      this.cache.set(url, promise);
      if (this.cache.size > 96) this.cache.delete(this.cache.keys().next().value);
    }
    return this.cache.get(url);
  }

  async go(index) {
    if (!this.frames.length) return;
    this.index = Math.max(0, Math.min(this.frames.length - 1, index));
    this.slider.value = this.index + 1;
    await this.show();
    for (const step of [1, 2, 3, -1]) {  // the next images, before they are asked for
      const next = this.frames[this.index + step];
      if (next) this.image(this.url(next, this.window)).catch(() => {});
    }
  }

  async show() {
    const item = this.frames[this.index];
    const wanted = this.url(item, this.window);
    this.wanted = wanted;
    if (this.inFlight) { this.pending = true; return; }
    this.inFlight = true;
    this.canvas.dataset.busy = "1";
    try {
      const bitmap = await this.image(wanted);
      if (!this.alive) return;
      this.bitmap = bitmap;
      this.shown = wanted;
      this.canvas.dataset.src = wanted;
      this.message("");
      this.draw();
      this.loadMeta(item.sop);
    } catch (error) {
      this.message(describe(error));
    } finally {
      this.inFlight = false;
    }
    this.pending = false;
    if (this.wanted !== this.shown && this.alive && !this.msg.textContent) await this.show();
    else delete this.canvas.dataset.busy;
  }

  async loadMeta(sop) {
    if (!this.meta.has(sop)) {
      this.meta.set(sop, getJSON(`${API}/studies/${this.study}/series/${this.series}/instances/${sop}/metadata`).then((m) => m[0]));
    }
    try {
      const ds = await this.meta.get(sop);
      if (this.frames[this.index].sop !== sop || !this.alive) return;
      this.current = ds;
      this.overlay();
      if (this.root.classList.contains("with-attrs")) this.showAttrs();
    } catch (error) { this.meta.delete(sop); }
  }

  draw() {
    const rect = this.viewport.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(rect.width * ratio));
    this.canvas.height = Math.max(1, Math.round(rect.height * ratio));
    const ctx = this.canvas.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.bitmap) return;
    const fit = Math.min(this.canvas.width / this.bitmap.width, this.canvas.height / this.bitmap.height);
    const scale = fit * this.zoom;
    const w = this.bitmap.width * scale, h2 = this.bitmap.height * scale;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.bitmap, (this.canvas.width - w) / 2 + this.panX * ratio, (this.canvas.height - h2) / 2 + this.panY * ratio, w, h2);
    this.overlay();
  }

  overlay() {
    const item = this.frames[this.index];
    if (!item) return;
    const s = this.seriesDs;
    this.overlays.tl.textContent = [
      s ? `${value(s, "Modality")}  ${value(s, "SeriesDescription")}` : "",
      s ? `Series ${value(s, "SeriesNumber")}` : "",
      `Image ${this.index + 1} / ${this.frames.length}`,
      item.frames > 1 ? `Frame ${item.frame} / ${item.frames}` : "",
    ].filter(Boolean).join("\n");
    const ds = this.current;
    this.overlays.tr.textContent = ds ? [value(ds, "PatientID") && `ID ${value(ds, "PatientID")}`,
      state.config.showPatientNames ? formatName(value(ds, "PatientName")) : "",
      formatDate(value(ds, "StudyDate"))].filter(Boolean).join("\n") : "";
    const win = this.window || this.ownWindow();
    this.overlays.bl.textContent = `${win ? `W ${Math.round(win.w)}  L ${Math.round(win.c)}` : "W/L auto"}\nZoom ${Math.round(this.zoom * 100)}%`;
    this.overlays.br.textContent = ds ? `${value(ds, "Columns")} × ${value(ds, "Rows")}\n${value(ds, "PhotometricInterpretation")}` : "";
  }

  ownWindow() {
    const ds = this.current;
    if (!ds || value(ds, "WindowWidth") === "") return null;
    return { c: Number(value(ds, "WindowCenter")), w: Number(value(ds, "WindowWidth")) };
  }

  startWindow() {
    const own = this.window || this.ownWindow();
    if (own) return own;
    const ds = this.current || {};
    const bits = Number(value(ds, "BitsStored")) || 8;
    const slope = Number(value(ds, "RescaleSlope")) || 1, intercept = Number(value(ds, "RescaleIntercept")) || 0;
    const signed = Number(value(ds, "PixelRepresentation")) === 1;
    const low = (signed ? -(2 ** (bits - 1)) : 0) * slope + intercept, width = (2 ** bits) * slope;
    return { c: low + width / 2, w: width };
  }

  setWindow(win) {
    this.window = win;
    this.overlay();
    this.show();
  }

  preset(choice) {
    if (choice === "") { this.setWindow(null); return; }
    const [, c, w] = (PRESETS[this.modality] || [])[Number(choice)] || [];
    if (w) this.setWindow({ c, w });
  }

  reset() {
    this.zoom = 1; this.panX = 0; this.panY = 0;
    this.presets.value = "";
    this.window = null;
    this.draw();
    this.show();
  }

  setTool(name) {
    this.tool = name;
    for (const b of this.root.querySelectorAll("[data-tool]")) b.setAttribute("aria-pressed", String(b.dataset.tool === name));
  }

  toggleAttrs() {
    const on = this.root.classList.toggle("with-attrs");
    this.attrToggle.setAttribute("aria-pressed", String(on));
    if (on) this.showAttrs();
    this.draw();
  }

  async showAttrs() {
    if (!state.dictionary) state.dictionary = getJSON(`${API}/dictionary`).catch(() => ({}));
    const names = await state.dictionary;
    const ds = this.current;
    if (!ds) return;
    const filter = this.filter.value.trim().toLowerCase();
    const rows = [];
    const add = (item, depth) => {
      for (const [tag, el] of Object.entries(item).sort()) {
        const keyword = names[tag] || (parseInt(tag.slice(0, 4), 16) % 2 ? "(private)" : "");
        const text = describeValue(el);
        const label = `${"  ".repeat(depth)}(${tag.slice(0, 4)},${tag.slice(4)})`;
        if (!filter || `${tag} ${keyword} ${text}`.toLowerCase().includes(filter)) {
          rows.push(h("tr", {}, h("td", { class: "tag" }, label), h("td", { class: "kw", title: keyword }, keyword), h("td", { class: "vr" }, el.vr || ""), h("td", {}, text)));
        }
        if (el.vr === "SQ" && el.Value && depth < 2) el.Value.slice(0, 5).forEach((child) => add(child, depth + 1));
      }
    };
    add(ds, 0);
    this.attrTable.replaceChildren(h("colgroup", {}, h("col", { class: "c-tag" }), h("col", { class: "c-kw" }),
      h("col", { class: "c-vr" }), h("col", {})), h("tbody", {}, rows));
  }

  bindInput() {
    const vp = this.viewport;
    vp.addEventListener("wheel", (e) => {
      e.preventDefault();
      if (e.ctrlKey) this.zoomBy(e.deltaY < 0 ? 1.1 : 1 / 1.1);
      else this.go(this.index + (e.deltaY > 0 ? 1 : -1));
    }, { passive: false });
    vp.addEventListener("contextmenu", (e) => e.preventDefault());
    vp.addEventListener("pointerdown", (e) => {
      this.canvas.focus();
      const mode = e.button === 2 ? "wl" : e.button === 1 ? "pan" : this.tool;
      const start = { x: e.clientX, y: e.clientY, win: this.startWindow(), zoom: this.zoom, panX: this.panX, panY: this.panY };
      vp.setPointerCapture(e.pointerId);
      const move = (m) => {
        const dx = m.clientX - start.x, dy = m.clientY - start.y;
        if (mode === "wl") {
          const step = Math.max(start.win.w, 1) / 256;
          this.presets.value = "";
          this.setWindow({ c: start.win.c + dy * step, w: Math.max(1, start.win.w + dx * step) });
        } else if (mode === "pan") {
          this.panX = start.panX + dx; this.panY = start.panY + dy; this.draw();
        } else {
          this.zoom = Math.max(0.1, Math.min(20, start.zoom * Math.exp(-dy / 200))); this.draw();
        }
      };
      const up = () => { vp.removeEventListener("pointermove", move); vp.removeEventListener("pointerup", up); };
      vp.addEventListener("pointermove", move);
      vp.addEventListener("pointerup", up);
    });
    this.onKey = (e) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
      const keys = {
        ArrowDown: () => this.go(this.index + 1), ArrowRight: () => this.go(this.index + 1),
        ArrowUp: () => this.go(this.index - 1), ArrowLeft: () => this.go(this.index - 1),
        PageDown: () => this.go(this.index + 10), PageUp: () => this.go(this.index - 10),
        Home: () => this.go(0), End: () => this.go(this.frames.length - 1),
        "+": () => this.zoomBy(1.25), "=": () => this.zoomBy(1.25), "-": () => this.zoomBy(0.8),
        r: () => this.reset(), w: () => this.setTool("wl"), p: () => this.setTool("pan"), z: () => this.setTool("zoom"),
        a: () => this.toggleAttrs(), Escape: () => { location.hash = `#/study/${this.study}`; },
      };
      if (e.shiftKey && e.key.startsWith("Arrow")) {  // window/level by keyboard: a 32nd of the width a step
        const win = this.startWindow(), step = Math.max(win.w, 1) / 32;
        const change = { ArrowUp: [step, 0], ArrowDown: [-step, 0], ArrowRight: [0, step], ArrowLeft: [0, -step] }[e.key];
        this.presets.value = "";
        this.setWindow({ c: win.c + change[0], w: Math.max(1, win.w + change[1]) });
        e.preventDefault();
        return;
      }
      if (/^[0-9]$/.test(e.key)) {
        const n = Number(e.key);
        if (n === 0 || (PRESETS[this.modality] || [])[n - 1]) { this.presets.value = n ? String(n - 1) : ""; this.preset(this.presets.value); }
        e.preventDefault();
        return;
      }
      if (keys[e.key] && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); keys[e.key](); }
    };
    window.addEventListener("keydown", this.onKey);
  }

  zoomBy(factor) {
    this.zoom = Math.max(0.1, Math.min(20, this.zoom * factor));
    this.draw();
  }
}

function describeValue(el) {
  if (!el) return "";
  if (el.BulkDataURI) return "(bulk data)";
  if (el.InlineBinary) return "(binary)";
  if (!el.Value) return "";
  if (el.vr === "SQ") return `${el.Value.length} item${el.Value.length === 1 ? "" : "s"}`;
  return el.Value.map((v) => (v && typeof v === "object" ? v.Alphabetic || "" : v)).join("\\").slice(0, 300);
}

// ---- start ---------------------------------------------------------------------------------------------
async function start() {
  try { state.config = await getJSON(`${API}/config`); } catch (_) { /* defaults: names withheld */ }
  if (state.config.actions) {
    try {
      state.me = await getJSON("/api/me");
      if ((state.me.actions || []).includes("send")) state.nodes = (await getJSON("/api/nodes")).nodes;
    } catch (_) { state.me = null; }
  }
  window.addEventListener("hashchange", () => {
    const hash = location.hash.replace(/^#/, "");
    if (hash.startsWith("/?") || hash === "/" || hash === "") state.listQuery = hash.split("?")[1] || "";
    route();
  });
  route();
}
start();
