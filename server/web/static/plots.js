// Interactive plots (server/web/plots.py): each figure's JSON sits next to its container; on
// hover the point's image is shown under the plot, a click opens the point's page.
(function () {
  "use strict";
  window.skyvaultPlots = { drawn: [], errors: [] };

  function showPoint(caption, point) {
    var data = point && point.customdata;
    if (!caption || !data) { return; }
    caption.textContent = "";
    if (data[1]) {
      var image = document.createElement("img");
      image.src = data[1];
      image.alt = "";
      caption.appendChild(image);
    }
    var text = document.createElement("span");
    text.textContent = (point.text || "") + " · " + point.y;
    caption.appendChild(text);
  }

  function draw(container) {
    var name = container.getAttribute("data-plot");
    var source = document.querySelector("script.plot-data[data-plot='" + name + "']");
    var caption = document.querySelector(".plot-hover[data-plot='" + name + "']");
    if (!source || container.getAttribute("data-empty") === "true") { return; }
    var figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(container, figure.data, figure.layout,
                          { responsive: true, displaylogo: false }).then(function () {
      window.skyvaultPlots.drawn.push(name);
      container.on("plotly_hover", function (event) { showPoint(caption, event.points[0]); });
      container.on("plotly_click", function (event) {
        var data = event.points[0] && event.points[0].customdata;
        if (data && data[0]) { window.location.assign(data[0]); }
      });
    }).catch(function (error) { window.skyvaultPlots.errors.push(String(error)); });
  }

  function start() {
    if (!window.Plotly) {
      window.skyvaultPlots.errors.push("plotly.js is not installed (make setup)");
      return;
    }
    document.querySelectorAll("div.plot[data-plot]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
