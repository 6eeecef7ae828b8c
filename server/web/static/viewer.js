// The image viewer: an epoch's science, reference and difference images (SODA, plain FITS) in
// Aladin Lite, one shown at a time or blinked, with catalog overlays from the TAP service and
// the known solar-system objects predicted in the field (/most/field).
import { openAladin, paintSwatches, readConfig, setStatus, state } from "./aladin-common.js";

const config = readConfig();
paintSwatches();

async function start() {
  const { A, aladin } = await openAladin("#aladin-viewer", config);
  state.aladin = aladin;
  const layers = new Map();
  for (const layer of config.layers) {
    const image = A.image(layer.url, { name: layer.label, imgFormat: "fits" });
    layers.set(layer.key, image);
  }
  let shown = (config.layers.find((l) => l.current) || config.layers[0] || {}).key;
  // Each image is its own layer; the one not shown is fully transparent, so that switching
  // and blinking need no new download.
  let first = true;
  for (const [key, image] of layers) {
    if (first) { aladin.setBaseImageLayer(image); first = false; }
    else { aladin.setOverlayImageLayer(image, key); }
  }
  function show(key) {
    shown = key;
    for (const [name, image] of layers) { image.setOpacity(name === key ? 1.0 : 0.0); }
    state.shown = key;
  }
  await Promise.all([...layers.values()].map((image) => image.query));
  show(shown);

  document.querySelectorAll("#viewer-layers input[name=layer]").forEach((input) => {
    input.addEventListener("change", () => { if (input.checked) { show(input.value); } });
  });
  const blink = document.getElementById("blink");
  let timer = null;
  if (blink) {
    blink.addEventListener("click", () => {
      if (timer) {
        window.clearInterval(timer);
        timer = null;
        blink.setAttribute("aria-pressed", "false");
        return;
      }
      blink.setAttribute("aria-pressed", "true");
      const keys = [...layers.keys()];
      timer = window.setInterval(() => {
        show(keys[(keys.indexOf(shown) + 1) % keys.length]);
      }, 700);
    });
  }

  const catalogs = new Map();
  state.overlays = {};
  function toggle(overlay, on) {
    let catalog = catalogs.get(overlay.name);
    if (on && !catalog) {
      catalog = A.catalogFromURL(overlay.url, {
        name: overlay.label, color: overlay.colour, sourceSize: 14, shape: overlay.shape || "circle",
      }, (sources) => {
        const count = Array.isArray(sources) ? sources.length : catalog.getSources().length;
        state.overlays[overlay.name] = count;
        const label = document.querySelector(`.overlay-count[data-overlay="${overlay.name}"]`);
        if (label) { label.textContent = `(${count})`; }
      }, false);
      catalogs.set(overlay.name, catalog);
      aladin.addCatalog(catalog);
    } else if (catalog) {
      if (on) { catalog.show(); } else { catalog.hide(); }
    }
  }
  document.querySelectorAll("#viewer-overlays input[name=overlay]").forEach((input) => {
    const overlay = config.overlays.find((o) => o.name === input.value);
    if (input.checked) { toggle(overlay, true); }
    input.addEventListener("change", () => toggle(overlay, input.checked));
  });
  state.ready = true;
  setStatus("Drag to pan, scroll to zoom.");
}

start().catch((error) => {
  state.errors.push(String(error));
  setStatus(`The viewer could not start: ${error}`);
});
