// meshscope: Dash's dropdowns name themselves by their current value only ("Workloads"); prefix each
// with its visible label, so a screen reader says "Graph, Workloads". React leaves the attribute alone
// afterwards, since its own value for it never changes.
(function () {
  "use strict";
  function nameControls() {
    document.querySelectorAll(".control > label[for]").forEach(function (label) {
      var control = document.getElementById(label.htmlFor);
      if (!control || control.tagName !== "BUTTON") return;
      var ids = (control.getAttribute("aria-labelledby") || "").split(" ").filter(Boolean);
      if (ids.indexOf(label.id) === -1) control.setAttribute("aria-labelledby", [label.id].concat(ids).join(" "));
    });
  }
  setInterval(nameControls, 1000);
})();
