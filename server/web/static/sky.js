// The sky viewer: the survey's HiPS (public reference co-adds) and its coverage MOCs.
import { openAladin, paintSwatches, readConfig, setStatus, state } from "./aladin-common.js";

const config = readConfig();
paintSwatches();

async function start() {
  const { A, aladin } = await openAladin("#aladin-sky", config);
  state.aladin = aladin;
  const surveys = config.surveys.filter((s) => s.hips);
  function showHips(code) {
    const survey = surveys.find((s) => s.filter === code);
    if (survey) {
      // An absolute URL: Aladin Lite takes anything else for a CDS identifier and asks the
      // CDS MocServer for it (which the page's policy refuses anyway).
      const url = new URL(survey.hips, document.baseURI).href;
      aladin.setBaseImageLayer(A.HiPS(url, { name: survey.label, imgFormat: "png" }));
      state.hips = code;
    }
  }
  if (surveys.length) { showHips(surveys[0].filter); }
  document.querySelectorAll("#sky-hips input[name=hips]").forEach((input) => {
    input.addEventListener("change", () => { if (input.checked) { showHips(input.value); } });
  });
  const mocs = new Map();
  state.mocs = {};
  for (const survey of config.surveys) {
    const response = await fetch(survey.moc);
    const json = await response.json();
    state.mocs[survey.filter] = Object.values(json).reduce((n, cells) => n + cells.length, 0);
    // Nothing to draw, and Aladin Lite (3.8) stops with a WebAssembly panic on a MOC without
    // cells ({"13": []}, a filter with no coverage the requester may see).
    if (!state.mocs[survey.filter]) { continue; }
    const moc = A.MOCFromJSON(json, { color: survey.colour, opacity: 0.25, lineWidth: 2,
                                      name: `Coverage ${survey.label}` });
    aladin.addMOC(moc);
    mocs.set(survey.filter, moc);
  }
  document.querySelectorAll("#sky-mocs input[name=moc]").forEach((input) => {
    input.addEventListener("change", () => {
      const moc = mocs.get(input.value);
      if (moc) { if (input.checked) { moc.show(); } else { moc.hide(); } }
    });
  });
  state.ready = true;
  setStatus("Drag to pan, scroll to zoom.");
}

start().catch((error) => {
  state.errors.push(String(error));
  setStatus(`The viewer could not start: ${error}`);
});
