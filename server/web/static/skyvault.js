// SkyVault web pages: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Long searches: show that the request is running, with the time spent, until the next page
  // arrives (the form submits normally).
  function showProgress(form) {
    var id = form.getAttribute("data-progress");
    var box = id && document.getElementById(id);
    if (!box) { return; }
    var elapsed = box.querySelector(".elapsed");
    var started = Date.now();
    box.hidden = false;
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    window.setInterval(function () {
      if (elapsed) { elapsed.textContent = ((Date.now() - started) / 1000).toFixed(1) + " s"; }
    }, 200);
  }

  // Page restored from the back/forward cache: the progress of the previous submit is over.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    document.querySelectorAll(".progress").forEach(function (box) { box.hidden = true; });
    document.querySelectorAll("form[data-progress] button[type=submit]").forEach(function (b) {
      b.disabled = false;
    });
  });

  function setUpSearchForms() {
    document.querySelectorAll("form[data-progress]").forEach(function (form) {
      form.addEventListener("submit", function () { showProgress(form); });
    });
    var shape = document.getElementById("f-shape");
    if (shape) {
      var update = function () {
        document.querySelectorAll("[data-shape]").forEach(function (part) {
          part.hidden = part.getAttribute("data-shape") !== shape.value;
        });
      };
      shape.addEventListener("change", update);
      update();
    }
    // Put the cursor on the first field at fault.
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid) { invalid.focus(); }
  }

  function setUpSelection() {
    var form = document.getElementById("download-form");
    if (!form) { return; }
    var boxes = form.querySelectorAll("input[name=id]");
    var all = document.getElementById("select-all");
    var count = document.getElementById("selection-count");
    var buttons = form.querySelectorAll("[data-needs-selection]");
    var update = function () {
      var chosen = form.querySelectorAll("input[name=id]:checked").length;
      count.textContent = chosen === 0 ? "No image selected"
        : chosen + " image" + (chosen === 1 ? "" : "s") + " selected";
      buttons.forEach(function (b) { b.disabled = chosen === 0; });
      if (all) {
        all.checked = chosen === boxes.length && chosen > 0;
        all.indeterminate = chosen > 0 && chosen < boxes.length;
      }
    };
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    update();
  }

  function setUpQueryPage() {
    var text = document.getElementById("adql");
    document.querySelectorAll(".use-example").forEach(function (button) {
      button.addEventListener("click", function () {
        text.value = button.getAttribute("data-query");
        text.focus();
        text.scrollIntoView({ block: "center" });
      });
    });
    var run = document.getElementById("run-async");
    if (!run) { return; }
    var form = document.getElementById("adql-form");
    var status = document.getElementById("async-status");
    run.addEventListener("click", function () {
      var body = new URLSearchParams(new FormData(form));
      body.set("PHASE", "RUN");
      var headers = { "Content-Type": "application/x-www-form-urlencoded" };
      var csrf = run.getAttribute("data-csrf");
      if (csrf) { headers["X-CSRF-Token"] = csrf; }
      status.hidden = false;
      status.textContent = "Starting the job…";
      fetch(form.getAttribute("data-async-url"), {
        method: "POST", body: body, headers: headers, credentials: "same-origin"
      }).then(function (response) {
        if (!response.ok) { throw new Error("the service answered " + response.status); }
        if (csrf) {
          window.location.reload();  // the job is listed under "Your jobs"
        } else {
          status.innerHTML = "";
          var link = document.createElement("a");
          link.href = response.url;
          link.textContent = "Job started: " + response.url;
          status.appendChild(link);
        }
      }).catch(function (error) {
        status.textContent = "The job could not be started: " + error.message;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpSearchForms();
    setUpSelection();
    setUpQueryPage();
  });
}());
