// phonehome report filters: show or hide what the server already rendered.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (!form) { return; }
  form.hidden = false;
  var items = document.querySelectorAll("[data-trigger]");
  var counter = document.getElementById("filter-count");

  function checked(name) {
    var out = {};
    var boxes = form.querySelectorAll("input[name='" + name + "']");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].checked) { out[boxes[i].value] = true; }
    }
    return out;
  }

  function apply() {
    var triggers = checked("trigger");
    var categories = checked("category");
    var parties = checked("party");
    var shown = 0;
    var total = 0;
    for (var i = 0; i < items.length; i++) {
      var el = items[i];
      var cats = (el.getAttribute("data-categories") || "").split(" ").filter(Boolean);
      if (!cats.length) { cats = ["none"]; }
      var anyCat = false;
      for (var j = 0; j < cats.length; j++) {
        if (categories[cats[j]]) { anyCat = true; break; }
      }
      var ok = triggers[el.getAttribute("data-trigger")] === true &&
        parties[el.getAttribute("data-party")] === true && anyCat;
      el.classList.toggle("filtered", !ok);
      if (el.classList.contains("flow")) {
        total += 1;
        if (ok) { shown += 1; }
      }
    }
    if (counter) { counter.textContent = shown + " of " + total + " flows shown"; }
  }

  form.addEventListener("change", apply);
  var buttons = form.querySelectorAll("button[data-all]");
  for (var k = 0; k < buttons.length; k++) {
    buttons[k].addEventListener("click", function (event) {
      event.preventDefault();
      var name = this.getAttribute("data-all");
      var value = this.getAttribute("data-value") === "on";
      var boxes = form.querySelectorAll("input[name='" + name + "']");
      for (var b = 0; b < boxes.length; b++) { boxes[b].checked = value; }
      apply();
    });
  }
  apply();
}());
