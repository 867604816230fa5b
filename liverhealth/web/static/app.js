// LiverHealth web page: upload, live progress, the NiiVue viewer, findings, the reader's review (edit,
// undo, save, sign), downloads, saved results. Every number shown comes from the server's segmentation
// and every edit is made and measured there; the page only says where a click landed.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { csrf: "", job: null, events: null, nv: null, summary: null, labels: null, reviewBusy: false,
  reviews: 0, submitting: false, jobStatus: null, labelsLoading: false, selected: null };
const LABEL_COLOURS = { R: [0, 40, 230], G: [0, 200, 40], B: [0, 60, 40], A: [0, 255, 255], I: [0, 1, 2],
  labels: ["", "liver", "tumour"] };

function showError(message, where = "error") {
  $(where).textContent = message || "";
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  if (response.status === 401) { window.location = "/login"; throw new Error("Log in first."); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `The server answered ${response.status}.`);
  return body;
}

function fmt(value, digits, unit) {
  return value === null || value === undefined ? "n/a" : `${value.toFixed(digits)} ${unit}`;
}

// viewer ----------------------------------------------------------------------------------------
function makeViewer() {
  const nv = new niivue.Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: false, isColorbar: false,
    crosshairColor: [1, 1, 0, 0.6], dragMode: 9, logLevel: "error", isRadiologicalConvention: true });
  nv.attachToCanvas($("viewer"));
  nv.setSliceType(nv.sliceTypeAxial);
  nv.onLocationChange = (data) => {
    const values = data && data.values ? data.values : [];
    const hu = values.length ? Math.round(values[0].value) : null;
    const label = values.length > 1 ? ["", " · liver", " · tumour"][Math.round(values[1].value)] || "" : "";
    const zyx = data && data.mm && nv.volumes.length ? mmToZyx(nv.volumes[0], data.mm) : null;
    const count = nv.volumes.length ? nv.volumes[0].hdr.dims[3] : "?";
    // slices count from 1 at the feet end (presentation.slice_number); rows and columns are the label map's
    $("cursor").textContent = hu === null ? "" :
      `slice ${zyx ? zyx[0] + 1 : "?"} of ${count}, row ${zyx ? zyx[1] : "?"}, column ${zyx ? zyx[2] : "?"}: ` +
      `${hu} ${state.isHu === false ? "grey" : "HU"}${label}`;
  };
  const draw = nv.drawScene.bind(nv);
  nv.drawScene = () => { const drawn = draw(); drawCaliper(); return drawn; }; // the caliper follows every redraw
  state.nv = nv;
  return nv;
}

function clearViewer() {
  const nv = state.nv;
  if (!nv) return;
  while (nv.volumes.length) nv.removeVolume(nv.volumes[nv.volumes.length - 1]);
  nv.drawScene();
  delete $("viewer").dataset.loaded;
  delete $("viewer").dataset.slice;
}

// the selected lesion's outline and RECIST axes, drawn over NiiVue on the slice they were measured on
function drawCaliper() {
  const layer = $("caliper-layer");
  const nv = state.nv;
  const rect = layer.getBoundingClientRect();
  const dpr = (nv && nv.uiData.dpr) || window.devicePixelRatio || 1;
  if (layer.width !== Math.round(rect.width * dpr) || layer.height !== Math.round(rect.height * dpr)) {
    layer.width = Math.round(rect.width * dpr);
    layer.height = Math.round(rect.height * dpr);
  }
  const ctx = layer.getContext("2d");
  ctx.clearRect(0, 0, layer.width, layer.height);
  const caliper = state.selected;
  layer.dataset.drawn = "0";
  if (!caliper || !nv || !nv.volumes.length || nv.opts.sliceType !== nv.sliceTypeAxial) return;
  const here = mmToZyx(nv.volumes[0], nv.frac2mm(nv.scene.crosshairPos));
  if (!here || here[0] !== caliper.slice_index) return;
  const toCanvas = (mm) => nv.frac2canvasPos(nv.mm2frac(mm)); // device pixels of the canvas
  const path = (points, closed) => {
    ctx.beginPath();
    points.forEach((mm, n) => { const [x, y] = toCanvas(mm); if (n) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    if (closed) ctx.closePath();
    ctx.stroke();
  };
  ctx.lineWidth = 1.5 * dpr;
  ctx.strokeStyle = "rgb(0, 229, 255)";
  for (const contour of caliper.outline_mm) path(contour, true);
  ctx.lineWidth = 2 * dpr;
  ctx.strokeStyle = "rgb(255, 255, 255)";
  path(caliper.long_axis_mm, false);
  ctx.setLineDash([4 * dpr, 3 * dpr]);
  path(caliper.short_axis_mm, false);
  ctx.setLineDash([]);
  const [x, y] = toCanvas(caliper.long_axis_mm[1]);
  ctx.font = `${12 * dpr}px system-ui, sans-serif`;
  ctx.fillStyle = "rgb(255, 255, 255)";
  ctx.fillText(`#${caliper.lesion_id} ${caliper.long_length.toFixed(1)} × ${caliper.short_length.toFixed(1)} mm`,
    x + 6 * dpr, y);
  layer.dataset.drawn = String(caliper.lesion_id);
}

// the viewer and the findings fit the window: the canvas ends above the fold, whatever the screen
function fitViewer() {
  const box = $("viewer-box");
  if ($("study-view").hidden) return;
  const below = box.nextElementSibling ? box.nextElementSibling.getBoundingClientRect().height + 12 : 0;
  const top = box.getBoundingClientRect().top + window.scrollY;
  const height = Math.max(320, Math.min(900, Math.floor(window.innerHeight - top - below - 8)));
  if (box.style.height !== `${height}px`) {
    box.style.height = `${height}px`;
    if (state.nv) state.nv.resizeListener();
  }
  const side = document.querySelector(".side");
  const sideTop = side.getBoundingClientRect().top + window.scrollY;
  side.style.maxHeight = `${Math.max(400, Math.floor(window.innerHeight - sideTop - 8))}px`;
}

async function showVolume(url, isHu, live = () => true) {
  const nv = state.nv || makeViewer();
  state.isHu = isHu;
  await nv.loadVolumes([{ url, colormap: "gray", cal_min: isHu ? -160 : 0, cal_max: isHu ? 240 : 255 }]);
  if (!live()) { // cancelled while it loaded: the page stays clean (unless the next study is on screen)
    if (!$("viewer").dataset.loaded) clearViewer();
    return;
  }
  $("viewer").dataset.loaded = "ct";
}

async function showLabels(url, live = () => true) {
  const nv = state.nv;
  const labels = await niivue.NVImage.loadFromUrl({ url, opacity: $("opacity").value / 100 });
  if (!live()) return;
  labels.setColormapLabel(LABEL_COLOURS);
  nv.addVolume(labels); // uploads the textures and redraws
  state.labels = labels;
  $("viewer").dataset.loaded = "labels";
}

async function reloadLabels(url) {
  // the edited label map replaces the layer's voxels in place: its colours, opacity and order stay.
  // Only the overlays from it up are blended again (updateGLVolume would redo the CT too: 20-30 s for
  // 129 slices under software WebGL instead of well under one).
  const fresh = await niivue.NVImage.loadFromUrl({ url, name: "labels.nii.gz" });
  state.labels.img.set(fresh.img);
  const nv = state.nv;
  for (let layer = nv.volumes.indexOf(state.labels); layer < nv.volumes.length; layer++) {
    nv.refreshLayers(nv.volumes[layer], layer);
  }
  nv.drawScene();
}

function det3(m) {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

function mmToZyx(volume, mm) {
  // RAS mm -> (slice, row, column) of the server's label map: the NIfTI's affine maps (column, row,
  // slice) to mm (imaging/writers.py), so solve it (Cramer's rule) and take the nearest voxel centre.
  // NiiVue's own vox is in its RAS-reoriented grid, which is not the label map's order.
  const affine = volume.hdr.affine;
  const a = [0, 1, 2].map((r) => affine[r].slice(0, 3));
  const b = [0, 1, 2].map((r) => mm[r] - affine[r][3]);
  const det = det3(a);
  const [i, j, k] = [0, 1, 2].map((c) => det3(a.map((row, r) => row.map((v, n) => (n === c ? b[r] : v)))) / det);
  const zyx = [k, j, i].map((v) => Math.floor(v + 0.5));
  const dims = [volume.hdr.dims[3], volume.hdr.dims[2], volume.hdr.dims[1]];
  return zyx.every((v, n) => v >= 0 && v < dims[n]) ? zyx : null;
}

async function toggleUncertainty() {
  const nv = state.nv;
  const url = state.summary && state.summary.uncertainty_url;
  if (!nv || !url) return;
  const opacity = $("uncertainty").checked ? 0.7 : 0;
  if (!state.uncertainty && opacity) {
    // magenta ("violet"): neither the crosshair's yellow nor the labels' green and red
    state.uncertainty = await niivue.NVImage.loadFromUrl({ url, colormap: "violet", cal_min: 1, cal_max: 100, opacity });
    nv.addVolume(state.uncertainty);
  } else if (state.uncertainty) {
    nv.setOpacity(nv.volumes.indexOf(state.uncertainty), opacity);
  }
  $("viewer").dataset.uncertainty = opacity ? "shown" : "hidden";
}

function setWindow(width, centre) {
  const volume = state.nv && state.nv.volumes[0];
  if (!volume) return;
  volume.cal_min = centre - width / 2;
  volume.cal_max = centre + width / 2;
  state.nv.updateGLVolume();
}

function goTo(rasMm, slice) {
  const nv = state.nv;
  if (!nv || !nv.volumes.length) return;
  nv.scene.crosshairPos = nv.mm2frac(rasMm);
  nv.drawScene(); // a redraw moves the slice; updateGLVolume would blend every layer again (seconds under software WebGL)
  nv.createOnLocationChange(); // the cursor line names the slice gone to
  $("viewer").dataset.slice = String(slice);
  drawCaliper();
}

function selectLesion(lesion) {
  // outline the lesion and draw its RECIST axes on the slice they were measured on, and go there
  const calipers = (state.summary && state.summary.calipers) || [];
  const caliper = calipers.find((c) => c.lesion_id === lesion.lesion_id) || null;
  state.selected = caliper;
  for (const row of $("lesions").querySelectorAll("tbody tr")) {
    row.classList.toggle("selected", Number(row.dataset.lesion) === lesion.lesion_id);
  }
  if (caliper) {
    const [a, b] = caliper.long_axis_mm;
    goTo(a.map((v, n) => (v + b[n]) / 2), caliper.slice_index);
  } else {
    goTo(lesion.ras_mm, lesion.largest_slice);
  }
}

function zoom(factor) {
  const nv = state.nv;
  if (!nv) return;
  const pan = nv.scene.pan2Dxyzmm;
  nv.setPan2Dxyzmm([pan[0], pan[1], pan[2], Math.min(8, Math.max(0.5, pan[3] * factor))]);
}

// a job ------------------------------------------------------------------------------------------
function resetStudy() {
  state.summary = null;
  state.selected = null;
  state.labelsLoading = false;
  state.uncertainty = null;
  $("uncertainty").checked = false;
  $("uncertainty").disabled = true;
  $("confidence-note").textContent = "";
  $("measurements").innerHTML = "";
  $("lesions").querySelector("tbody").innerHTML = "";
  $("model-info").textContent = "";
  $("report").textContent = "";
  $("downloads").innerHTML = "";
  $("comparison").textContent = "";
  $("comparison-image").hidden = true;
  $("save-box").hidden = true;
  $("saved").textContent = "";
  resetReview();
  showError("");
  drawCaliper();
}

function setStatus(text, jobState) {
  // the job's line, or the page's own last step while the browser still loads the labels
  state.jobStatus = { text, state: jobState };
  showStatus();
}

function showStatus() {
  const job = state.jobStatus || { text: "", state: "" };
  const viewerStep = "Sending the labels to the viewer.";
  $("status").textContent = !state.labelsLoading ? job.text :
    job.state === "done" ? viewerStep : `${viewerStep} ${job.text}`;
  if (job.state) $("status").dataset.state = job.state;
}

function uploadReady() {
  state.submitting = false;
  $("upload").disabled = false;
}

function jobEnded(jobId, jobState, message) {
  // done, failed, cancelled or interrupted: the button is free; a job that left nothing leaves a clean page
  if (state.job !== jobId) return;
  $("cancel").hidden = true;
  $("progress").hidden = true;
  uploadReady();
  if (jobState === "cancelled") {
    resetStudy();
    clearViewer();
    setStatus(message || "Cancelled; nothing was kept.", jobState);
  } else if (jobState === "failed" || jobState === "interrupted") {
    clearViewer();
    resetStudy();
    setStatus(message || jobState, jobState);
    showError(message);
  }
}

function follow(jobId, uploaded = false) {
  if (state.events) state.events.close();
  state.job = jobId;
  if (!uploaded) uploadReady(); // a reopened or retrieved study: the upload that may have run is no longer shown
  $("cancel").hidden = false;
  const events = new EventSource(`/api/jobs/${jobId}/events`);
  state.events = events;
  events.addEventListener("error", () => {
    if (events.readyState !== EventSource.CLOSED || state.job !== jobId) return;
    api(`/api/jobs/${jobId}`).then((job) => {  // the server restarted: say what became of the job
      setStatus(job.message || job.state, job.state);
      if (["done", "failed", "cancelled", "interrupted"].includes(job.state)) jobEnded(jobId, job.state, job.message);
    }).catch((err) => { if (state.job === jobId) showError(err.message); });
  });
  let draft = "";
  const live = () => state.job === jobId && $("status").dataset.state !== "cancelled"; // events of this job only
  events.addEventListener("state", (e) => {
    const data = JSON.parse(e.data);
    if (state.job !== jobId) return;
    setStatus(data.message || data.state, data.state);
    if (["done", "failed", "cancelled", "interrupted"].includes(data.state)) {
      events.close();
      jobEnded(jobId, data.state, data.message);
      if (data.state === "done") {
        $("save-box").hidden = !!(state.summary && state.summary.saved_result_id);
        startReview();
      }
    }
  });
  events.addEventListener("progress", (e) => {
    const data = JSON.parse(e.data);
    if (!live()) return;
    $("progress").hidden = false;
    $("progress").max = data.total;
    $("progress").value = data.done;
    setStatus(data.message || `Segmenting: slice ${data.done} of ${data.total}.`, state.jobStatus && state.jobStatus.state);
  });
  events.addEventListener("retrieve", (e) => {
    const data = JSON.parse(e.data);
    if (!live()) return;
    $("progress").hidden = false;
    $("progress").max = data.total;
    $("progress").value = data.done;
    setStatus(`Retrieving from the PACS: image ${data.done} of ${data.total}.`, state.jobStatus && state.jobStatus.state);
  });
  events.addEventListener("volume", (e) => {
    const data = JSON.parse(e.data);
    if (!live()) return;
    showVolume(data.url, data.is_hu, live)
      .catch((err) => { if (live()) showError(`The viewer could not show the CT: ${err}`); });
  });
  events.addEventListener("result", (e) => {
    const data = JSON.parse(e.data);
    if (!live()) return;
    state.summary = data;
    showResult(data);
    state.labelsLoading = true;
    showStatus();
    showLabels(data.labels_url, live).then(() => { if (live()) goTo(data.key_ras_mm, data.key_slice); })
      .catch((err) => { if (live()) showError(`The viewer could not show the labels: ${err}`); })
      .finally(() => { if (state.job === jobId) { state.labelsLoading = false; showStatus(); } });
  });
  events.addEventListener("draft", (e) => {
    if (!live()) return;
    draft += JSON.parse(e.data).text;
    $("report").textContent = `Machine-written draft (streaming, not reviewed):\n${draft}`;
  });
  events.addEventListener("report", (e) => {
    const data = JSON.parse(e.data);
    if (!live()) return;
    $("report").textContent = data.text;
    $("draft").value = data.draft || "";
    showDownloads(data.files);
  });
  events.onerror = () => { /* the browser reconnects with Last-Event-ID; the server resumes there */ };
}

function showLesions(data) {
  const body = $("lesions").querySelector("tbody");
  body.innerHTML = "";
  const lesions = [...data.lesions];
  if ($("lesion-order").value === "check") {  // least confident first; unknown confidence last
    lesions.sort((a, b) => (a.confidence ?? 2) - (b.confidence ?? 2));
  }
  for (const lesion of lesions) {
    const tr = document.createElement("tr");
    tr.dataset.lesion = lesion.lesion_id;
    tr.dataset.slice = lesion.measured_slice ?? lesion.largest_slice; // the array index the click goes to
    if (state.selected && state.selected.lesion_id === lesion.lesion_id) tr.classList.add("selected");
    if (lesion.unsure) tr.classList.add("unsure");
    if (lesion.edited) tr.classList.add("edited");
    const cells = [lesion.edited ? `${lesion.lesion_id} ✎` : lesion.lesion_id, fmt(lesion.volume_ml, 2, "mL"),
      `${fmt(lesion.longest_diameter_mm, 1, "")}× ${fmt(lesion.perpendicular_diameter_mm, 1, "")}`,
      lesion.slice_label || String(lesion.slice_number), lesion.confidence_text || "–"];
    for (const cell of cells) { const td = document.createElement("td"); td.textContent = cell; tr.append(td); }
    tr.addEventListener("click", () => { selectLesion(lesion); editLesion(lesion.lesion_id); });
    body.append(tr);
  }
  const calibrated = data.lesions.some((lesion) => lesion.unsure !== null && lesion.unsure !== undefined);
  const liver = data.liver_confidence == null ? "" : `Model confidence along the liver edge: ${Math.round(100 * data.liver_confidence)} %. `;
  $("confidence-note").textContent = liver + (data.lesions.length && !calibrated && data.lesions[0].confidence != null ?
    "This model's confidence is not calibrated: no lesion is flagged." : "");
}

function showResult(data) {
  const rows = [
    ["Liver volume", fmt(data.liver_volume_ml, 1, "mL")],
    ["Tumour volume", fmt(data.tumour_volume_ml, 2, "mL")],
    ["Tumour burden", fmt(data.tumour_burden_pct, 1, "% of liver")],
    ["Lesions", String(data.lesions.length)],
    ["RECIST 1.1 targets", data.recist_targets.length ?
      `${data.recist_targets.map((t) => "#" + t).join(", ")}; sum ${data.recist_sum_mm.toFixed(1)} mm` : "none ≥ 10 mm"],
    ["Key slice", data.key_slice_text || ""],
  ];
  const dl = $("measurements");
  dl.innerHTML = "";
  for (const [term, value] of rows) {
    const dt = document.createElement("dt"); dt.textContent = term;
    const dd = document.createElement("dd"); dd.textContent = value;
    dl.append(dt, dd);
  }
  if (state.selected) { // after an edit the selected lesion's caliper is the re-measured one
    state.selected = (data.calipers || []).find((c) => c.lesion_id === state.selected.lesion_id) || null;
  }
  showLesions(data);
  drawCaliper();
  $("uncertainty").disabled = !data.uncertainty_url;
  $("model-info").textContent = `${data.model.name} (${data.model.id}). Validation: ${data.model.validation}.`;
  showDownloads(data.files);
}

function showDownloads(files) {
  $("send").hidden = !(state.pacs && files.includes("seg.dcm"));
  const list = $("downloads");
  list.innerHTML = "";
  for (const name of files) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/api/jobs/${state.job}/files/${name}`;
    a.textContent = name;
    a.download = name;
    a.id = `download-${name.replace(/\W/g, "-")}`;
    li.append(a);
    list.append(li);
  }
}

function freshKey() {
  // one idempotency key per submission: the server answers a repeat of it with the same job
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function upload(event) {
  event.preventDefault();
  if (state.submitting) return; // one job per submission: the button stays disabled until it ends
  const files = $("folder").files.length ? Array.from($("folder").files) : Array.from($("file").files);
  if (!files.length) { showError("Choose a CT file or a DICOM folder first."); return; }
  state.submitting = true;
  $("upload").disabled = true;
  if (state.events) state.events.close();
  state.job = null;
  resetStudy();
  clearViewer();
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  form.append("model", $("model").value);
  form.append("patient_name", $("patient-name").value);
  form.append("patient_id", $("patient-id").value);
  if ($("include-patient").checked) form.append("include_patient", "on");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/jobs");
  xhr.setRequestHeader("X-CSRF-Token", state.csrf);
  xhr.setRequestHeader("Idempotency-Key", freshKey());
  xhr.upload.onprogress = (e) => {
    if (!e.lengthComputable) return;
    $("progress").hidden = false;
    $("progress").max = e.total;
    $("progress").value = e.loaded;
    setStatus(`Uploading: ${(e.loaded / 2 ** 20).toFixed(0)} of ${(e.total / 2 ** 20).toFixed(0)} MB.`, "uploading");
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
    if (xhr.status === 401) { window.location = "/login"; return; }
    if (xhr.status !== 200) {
      $("progress").hidden = true;
      setStatus("The upload was refused.", "refused");
      showError(body.detail || `The server answered ${xhr.status}.`);
      uploadReady();
      return;
    }
    setStatus(`Uploaded (${body.kind}). Waiting for a worker.`, "queued");
    follow(body.job_id, true);
  };
  xhr.onerror = () => {
    uploadReady();
    showError("The upload did not reach the server. Check the connection and try again.");
  };
  xhr.send(form);
}

async function save() {
  try {
    const saved = await api(`/api/jobs/${state.job}/save`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ store_patient: $("store-patient").checked }) });
    $("saved").textContent = `Saved as result ${saved.result_id}.`;
  } catch (err) { showError(err.message); }
}

// the reader's review ----------------------------------------------------------------------------
function currentTool() {
  return document.querySelector("input[name=tool]:checked").value;
}

function resetReview() {
  state.labels = null;
  $("edit-panel").disabled = true;
  $("tool-view").checked = true;
  delete $("viewer-box").dataset.tool;
  $("undo").disabled = true;
  $("redo").disabled = true;
  $("review-state").textContent = "the model's result";
  $("review-message").textContent = "";
  $("sign-box").hidden = true;
  $("impression").value = "";
  $("draft").value = "";
  $("signed").textContent = "";
}

function startReview() {
  $("edit-panel").disabled = false;
  $("sign-box").hidden = false;
}

function brushBody(op, zyx) {
  const [z, y, x] = zyx;
  return { op, slice: z, row: y, col: x, radius_mm: Number($("brush-radius").value), label: Number($("brush-label").value) };
}

function clickBody(op, zyx) {
  if (op === "paint" || op === "erase") return brushBody(op, zyx);
  return op === "relabel" ? { op, voxel: zyx, to: 1 } : { op, voxel: zyx };
}

function onViewerPointerDown(event) {
  state.pointerDown = [event.clientX, event.clientY];
  // NiiVue keeps the focus where it was (it prevents the mouse's default): leave the last text field,
  // so that Ctrl+Z after a click undoes the outline rather than the field's typing
  if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
}

function clickedFrac(event) {
  // where on the volume a click landed, as NiiVue maps canvas pixels (its own click handling does the same)
  const nv = state.nv;
  const rect = $("viewer").getBoundingClientRect();
  const dpr = nv.uiData.dpr || window.devicePixelRatio || 1;
  const frac = nv.canvasPos2frac([(event.clientX - rect.left) * dpr, (event.clientY - rect.top) * dpr]);
  return frac && frac[0] >= 0 ? frac : null;
}

function onViewerClick(event) {
  const op = currentTool();
  const down = state.pointerDown || [event.clientX, event.clientY];
  const dragged = Math.hypot(event.clientX - down[0], event.clientY - down[1]) > 4;
  if (!op || dragged || event.button !== 0 || !state.labels || $("edit-panel").disabled) return;
  const nv = state.nv;
  const frac = clickedFrac(event);
  const mm = frac ? nv.frac2mm(frac, 0, true) : null;
  const zyx = mm ? mmToZyx(nv.volumes[0], mm) : null;
  if (!zyx) { showError("Click inside the image."); return; }
  nv.scene.crosshairPos = frac; // the crosshair marks where the edit goes
  nv.drawScene();
  $("viewer").dataset.clickMm = Array.from(mm.slice(0, 3)).map((v) => v.toFixed(2)).join(",");
  $("viewer").dataset.clickVoxel = zyx.join(",");
  review("edit", clickBody(op, zyx));
}

function editLesion(lesionId) {
  const op = currentTool();
  if ((op === "remove_lesion" || op === "relabel") && !$("edit-panel").disabled) {
    review("edit", op === "relabel" ? { op, lesion: lesionId, to: 1 } : { op, lesion: lesionId });
  }
}

async function review(step, body = {}) {
  if (state.reviewBusy) { showError("The last edit is still being made; try again in a moment."); return; }
  state.reviewBusy = true;
  $("edit-panel").dataset.busy = "1";
  const started = performance.now();
  showError("");
  try {
    const answer = await api(`/api/jobs/${state.job}/review/${step}`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    await showReview(answer, started);
  } catch (err) {
    showError(err.message);
    return;
  } finally {
    state.reviewBusy = false;
    delete $("edit-panel").dataset.busy;
  }
  state.reviews += 1; // the page is ready for the next step: tests wait on this
  $("viewer").dataset.reviewed = String(state.reviews);
}

async function showReview(answer, started) {
  state.summary = Object.assign({}, state.summary, answer.findings, { labels_url: answer.labels_url,
    files: answer.files, saved_result_id: answer.saved_result_id });
  showResult(state.summary);
  $("report").textContent = answer.report_text ||
    "The report was made on the model's outline; it is made again from these findings when you sign.";
  $("undo").disabled = !answer.can_undo;
  $("redo").disabled = !answer.can_redo;
  $("review-state").textContent = answer.state;
  await reloadLabels(answer.labels_url);
  const shownMs = Math.round(performance.now() - started);
  $("review-message").textContent = `${answer.message} (server ${Math.round(answer.server_ms)} ms; on screen after ${shownMs} ms)`;
  if (answer.signed_by) $("signed").textContent = answer.message;
  $("viewer").dataset.shownMs = String(shownMs);
}

function fillBetween() {
  // the fields take slice numbers as the page shows them (from 1); the API takes array indices
  review("edit", { op: "fill_between", label: Number($("brush-label").value),
    slice_a: Number($("fill-a").value) - 1, slice_b: Number($("fill-b").value) - 1 });
}

function onKey(event) {
  // Ctrl+Z / Ctrl+Shift+Z undo and redo the outline; in a text field they stay the field's own
  if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z" || $("edit-panel").disabled) return;
  const typing = "textarea, input[type=text], input:not([type])";
  if (event.target.closest && event.target.closest(typing)) return;
  event.preventDefault();
  if (event.shiftKey && !$("redo").disabled) review("redo");
  else if (!event.shiftKey && !$("undo").disabled) review("undo");
}

function wireReview() {
  $("viewer").addEventListener("pointerdown", onViewerPointerDown);
  $("viewer").addEventListener("click", onViewerClick);
  for (const radio of document.querySelectorAll("input[name=tool]")) {
    radio.addEventListener("change", () => {
      if (currentTool()) $("viewer-box").dataset.tool = currentTool(); else delete $("viewer-box").dataset.tool;
    });
  }
  $("undo").addEventListener("click", () => review("undo"));
  $("redo").addEventListener("click", () => review("redo"));
  $("fill").addEventListener("click", fillBetween);
  $("save-revision").addEventListener("click", () => review("save", { store_patient: $("store-patient").checked }));
  $("sign").addEventListener("click", () => review("sign", { impression: $("impression").value, draft: $("draft").value }));
  document.addEventListener("keydown", onKey);
}

// the PACS --------------------------------------------------------------------------------------
async function pacsFind(event) {
  event.preventDefault();
  showError("");
  try {
    const body = await api("/api/pacs/find", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ patient_id: $("pacs-patient").value, accession: $("pacs-accession").value,
        study_date: $("pacs-date").value, modality: "CT" }) });
    const tbody = $("pacs-studies").querySelector("tbody");
    tbody.innerHTML = "";
    for (const study of body.studies) {
      const tr = document.createElement("tr");
      for (const cell of [study.study_date, study.accession, study.modalities, study.description || study.study_uid]) {
        const td = document.createElement("td"); td.textContent = cell; tr.append(td);
      }
      const td = document.createElement("td");
      const open = document.createElement("button"); open.textContent = "Open"; open.className = "pacs-open";
      open.addEventListener("click", () => pacsOpen(study.study_uid));
      td.append(open); tr.append(td); tbody.append(tr);
    }
    if (!body.studies.length) showError("No study on the PACS matches.");
  } catch (err) { showError(err.message); }
}

async function pacsOpen(studyUid) {
  resetStudy();
  try {
    const body = await api("/api/pacs/open", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ study_uid: studyUid, model: $("model").value }) });
    follow(body.job_id);
  } catch (err) { showError(err.message); }
}

async function pacsSend() {
  try {
    const sent = await api(`/api/jobs/${state.job}/send`, { method: "POST" });
    $("saved").textContent = `Sent to the PACS: ${sent.sent} new, ${sent.already_there} already there.`;
  } catch (err) { showError(err.message); }
}

// saved results: the worklist (patient, then studies by date, then each study's latest results) -------
function groupRow(className, text) {
  const tr = document.createElement("tr"); tr.className = className;
  const td = document.createElement("td"); td.colSpan = 9; td.textContent = text; tr.append(td);
  return tr;
}

function studyHeading(study) {
  const when = study.date ? `${study.date}${study.time.length >= 4 ? ` ${study.time.slice(0, 2)}:${study.time.slice(2, 4)}` : ""}`
    + (study.dates_shifted ? " (shifted)" : "") : "no study date";
  return [when, study.description, study.accession && `accession ${study.accession}`, study.source]
    .filter(Boolean).join(" · ");
}

async function search(event) {
  if (event) event.preventDefault();
  showError("", "results-error");
  try {
    const body = await api("/api/results/worklist", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ patient: $("search-patient").value, model: $("search-model").value,
        since: $("search-since").value, until: $("search-until").value }) });
    const tbody = $("results").querySelector("tbody");
    tbody.innerHTML = "";
    for (const patient of body.patients) {
      const details = [patient.sex && `sex ${patient.sex}`, patient.birth_date && `born ${patient.birth_date}`].filter(Boolean);
      tbody.append(groupRow("patient", patient.label + (details.length ? ` (${details.join(", ")})` : "")));
      for (const study of patient.studies) {
        const heading = groupRow("study", studyHeading(study));
        heading.dataset.study = study.study_id;
        tbody.append(heading);
        for (const r of study.results) {
          const tr = document.createElement("tr");
          tr.dataset.result = r.result_id;
          const cells = [r.result_id, r.saved, r.model, r.state, fmt(r.liver_volume_ml, 1, "mL"),
            fmt(r.tumour_volume_ml, 2, "mL"), r.lesions, r.owner || ""];
          for (const cell of cells) { const td = document.createElement("td"); td.textContent = cell; tr.append(td); }
          const actions = document.createElement("td");
          const open = document.createElement("button"); open.textContent = "Open"; open.className = "open";
          open.addEventListener("click", () => reopen(r.result_id));
          const del = document.createElement("button"); del.textContent = "Delete"; del.className = "delete";
          del.addEventListener("click", () => remove(r.result_id));
          const compare = document.createElement("button"); compare.textContent = "Compare"; compare.className = "compare";
          compare.title = "Read the open study against this one (as the prior)";
          compare.addEventListener("click", () => compareWith(r.result_id));
          actions.append(open, compare, del);
          tr.append(actions);
          tbody.append(tr);
        }
      }
    }
    if (!body.patients.length) showError("No saved results match.", "results-error");
  } catch (err) { showError(err.message, "results-error"); }
}

async function reopen(resultId) {
  try {
    const body = await api(`/api/results/${resultId}/open`, { method: "POST" });
    showTab("study");
    resetStudy();
    follow(body.job_id);
  } catch (err) { showError(err.message, "results-error"); }
}

async function compareWith(resultId) {
  if (!state.job || $("status").dataset.state !== "done") {
    showError("Open or upload the follow-up study first; then press Compare on its prior.", "results-error");
    return;
  }
  const prior = resultId === "auto" ? "the latest earlier study of this patient" : `saved result ${resultId}`;
  try {
    showError("", "results-error");
    $("status").textContent = `Comparing with ${prior}…`;
    const request = resultId === "auto" ? { prior_auto: true } : { prior_result_id: resultId };
    const body = await api(`/api/jobs/${state.job}/compare`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
    showTab("study");
    $("status").textContent = `Compared with ${prior}: RECIST 1.1 ${body.response}.`;
    $("comparison").textContent = body.lines.join("\n");
    $("comparison-image").src = `/api/jobs/${state.job}/files/comparison.png?t=${Date.now()}`;
    $("comparison-image").hidden = false;
    const job = await api(`/api/jobs/${state.job}`);
    if (job.files) showDownloads(job.files);
  } catch (err) { showError(err.message, "results-error"); }
}

async function remove(resultId) {
  if (!window.confirm(`Delete saved result ${resultId} and its reports? This cannot be undone.`)) return;
  try {
    await api(`/api/results/${resultId}`, { method: "DELETE" });
    await search();
  } catch (err) { showError(err.message, "results-error"); }
}

async function showAudit(event) {
  if (event) event.preventDefault();
  showError("", "audit-error");
  try {
    const body = { user: $("audit-user").value, result_id: $("audit-result").value, since: $("audit-since").value };
    const answer = await api("/api/admin/audit", { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" } });
    const rows = $("audit").querySelector("tbody");
    rows.replaceChildren();
    for (const e of answer.events.slice().reverse()) {
      const tr = document.createElement("tr");
      for (const value of [e.at, e.user, e.face, e.client, e.action, e.result_id, e.study_id, e.detail]) {
        const td = document.createElement("td");
        td.textContent = value === null || value === undefined ? "" : String(value);
        tr.append(td);
      }
      rows.append(tr);
    }
    if (!answer.events.length) showError("No audit events match.", "audit-error");
  } catch (err) { showError(err.message, "audit-error"); }
}

async function endSessions() {
  const name = $("end-user").value.trim();
  if (!name || !window.confirm(`Log ${name} out everywhere?`)) return;
  try {
    const answer = await api(`/api/admin/accounts/${encodeURIComponent(name)}/end-sessions`, { method: "POST" });
    showError(`Ended ${answer.ended} session(s) of ${answer.name}.`, "audit-error");
  } catch (err) { showError(err.message, "audit-error"); }
}

function showTab(name) {
  $("study-view").hidden = name !== "study";
  $("results-view").hidden = name !== "results";
  $("audit-view").hidden = name !== "audit";
  $("tab-study").classList.toggle("active", name === "study");
  $("tab-results").classList.toggle("active", name === "results");
  $("tab-audit").classList.toggle("active", name === "audit");
  if (name === "results") search();
  if (name === "audit") showAudit();
  if (name === "study") fitViewer();
}

// start ------------------------------------------------------------------------------------------
async function start() {
  const me = await api("/api/me");
  state.csrf = me.csrf;
  state.pacs = me.pacs;
  $("pacs-panel").hidden = !me.pacs;
  $("who").textContent = `${me.user}${me.role === "admin" ? " (admin)" : ""}`;
  $("limit").textContent = `Up to ${me.max_upload_mb.toLocaleString()} MB.`;
  $("niivue-version").textContent = me.niivue;
  for (const model of me.models) {
    const option = document.createElement("option");
    option.value = model.id;
    option.textContent = `${model.name}${model.default ? " (default)" : ""}${model.caution ? " (not recommended)" : ""}`;
    option.title = model.caution ? `${model.caution}. ${model.validation}` : model.validation;
    option.selected = model.default;
    $("model").append(option);
  }
  makeViewer();
  $("upload-form").addEventListener("submit", upload);
  $("cancel").addEventListener("click", () => state.job && api(`/api/jobs/${state.job}/cancel`, { method: "POST" })
    .catch((err) => showError(err.message)));
  $("save").addEventListener("click", save);
  wireReview();
  $("send").addEventListener("click", pacsSend);
  $("pacs-form").addEventListener("submit", pacsFind);
  $("search-form").addEventListener("submit", search);
  $("tab-study").addEventListener("click", () => showTab("study"));
  $("tab-results").addEventListener("click", () => showTab("results"));
  $("compare-latest").addEventListener("click", () => compareWith("auto"));
  $("tab-audit").hidden = me.role !== "admin";
  $("tab-audit").addEventListener("click", () => showTab("audit"));
  $("audit-form").addEventListener("submit", showAudit);
  $("end-sessions").addEventListener("click", endSessions);
  $("logout").addEventListener("click", () => api("/api/logout", { method: "POST" }).finally(() => { window.location = "/login"; }));
  $("opacity").addEventListener("input", () => state.nv && state.nv.volumes.length > 1 &&
    state.nv.setOpacity(1, $("opacity").value / 100));
  $("uncertainty").addEventListener("change", () => toggleUncertainty()
    .catch((err) => showError(`The viewer could not show the uncertainty: ${err}`)));
  $("lesion-order").addEventListener("change", () => state.summary && showLesions(state.summary));
  $("drag-mode").addEventListener("change", () => state.nv.setDragMode($("drag-mode").value));
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  for (const preset of me.window_presets) { // the one set of every face (imaging/display.py WINDOW_PRESETS)
    const button = document.createElement("button");
    button.textContent = preset.name;
    button.dataset.window = `${preset.width},${preset.center}`;
    button.dataset.preset = preset.key;
    button.title = `width ${preset.width}, level ${preset.center} HU`;
    button.addEventListener("click", () => setWindow(preset.width, preset.center));
    $("window-presets").append(button);
  }
  const sliceTypes = { axial: "sliceTypeAxial", coronal: "sliceTypeCoronal", sagittal: "sliceTypeSagittal",
    multi: "sliceTypeMultiplanar" };
  for (const button of document.querySelectorAll("[data-slice]")) {
    button.addEventListener("click", () => state.nv.setSliceType(state.nv[sliceTypes[button.dataset.slice]]));
  }
  window.addEventListener("resize", fitViewer);
  const above = new ResizeObserver(() => fitViewer()); // the panels above the viewer may grow (PACS, errors)
  for (const id of ["upload-form", "pacs-panel", "status-bar", "error"]) above.observe($(id));
  fitViewer();
  document.body.dataset.ready = "1";
}

start().catch((err) => showError(err.message));
