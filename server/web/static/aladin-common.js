// What the viewer pages share: loading Aladin Lite from this origin (never from the network),
// recording any request the browser's policy refused, and the coordinate readout.
export const state = { blocked: [], ready: false, errors: [] };
window.skyvaultViewer = state;

document.addEventListener("securitypolicyviolation", (event) => {
  state.blocked.push(event.blockedURI || event.violatedDirective);
});

export function readConfig() {
  return JSON.parse(document.getElementById("viewer-config").textContent);
}

export function setStatus(text) {
  const box = document.getElementById("viewer-status");
  if (box) { box.textContent = text; }
}

export function paintSwatches() {
  document.querySelectorAll(".swatch[data-colour]").forEach((swatch) => {
    swatch.style.backgroundColor = swatch.getAttribute("data-colour");
  });
}

// Aladin Lite with nothing of its own that reaches out: no default survey from CDS, no
// usage log, no list of remote HiPS, no name resolver.
export async function openAladin(selector, config, options) {
  const { default: A } = await import(config.library);
  await A.init;
  const aladin = A.aladin(selector, {
    survey: [], hipsList: [], log: false, target: `${config.ra} ${config.dec}`,
    fov: config.fov, cooFrame: "ICRSd", showReticle: false, showGotoControl: false,
    showSimbadPointerControl: false, showShareControl: false, showSettingsControl: false,
    showContextMenu: false, showProjectionControl: false, showFrame: false,
    showLayersControl: false, showCooGridControl: false, showColorPickerControl: false,
    showStatusBar: false, showFullscreenControl: true, showZoomControl: true,
    ...(options || {}),
  });
  // When a view is left without layers, Aladin Lite falls back to its default survey.
  aladin.constructor.DEFAULT_OPTIONS.survey = [];
  const readout = document.getElementById("coordinates");
  aladin.on("mouseMove", (position) => {
    if (!readout || position == null || position.ra == null) { return; }
    const ra = Number(position.ra), dec = Number(position.dec);
    if (!Number.isFinite(ra) || !Number.isFinite(dec)) { return; }
    readout.textContent = `RA ${ra.toFixed(6)}°, Dec ${dec >= 0 ? "+" : ""}${dec.toFixed(6)}°`;
    readout.dataset.ra = ra;
    readout.dataset.dec = dec;
  });
  return { A, aladin };
}
