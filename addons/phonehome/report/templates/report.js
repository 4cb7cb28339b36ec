// phonehome report filters and search: show or hide what the server already rendered.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (!form) { return; }
  form.hidden = false;
  var items = document.querySelectorAll("[data-trigger]");
  var counter = document.getElementById("filter-count");
  var search = document.getElementById("search");
  var texts = null;

  // a flow matches when its host, a field path or a value holds the words
  function searched(el, index) {
    var query = search ? search.value.trim().toLowerCase() : "";
    if (!query) { return true; }
    if (!texts) { texts = []; }
    if (texts[index] === undefined) { texts[index] = el.textContent.toLowerCase(); }
    var words = query.split(/\s+/);
    for (var w = 0; w < words.length; w++) {
      if (texts[index].indexOf(words[w]) < 0) { return false; }
    }
    return true;
  }

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
      if (el.classList.contains("flow")) {
        ok = ok && searched(el, i);
        total += 1;
        if (ok) { shown += 1; }
      }
      el.classList.toggle("filtered", !ok);
    }
    if (counter) { counter.textContent = shown + " of " + total + " flows shown"; }
  }

  form.addEventListener("change", apply);
  if (search) { search.addEventListener("input", apply); }

  // a link to a flow or a digest item opens it
  function openTarget(hash) {
    var id;
    try { id = decodeURIComponent(hash.slice(1)); } catch (e) { return; }  // a cut-off link
    var target = id ? document.getElementById(id) : null;
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[href^='#']") : null;
    if (link) { openTarget(link.getAttribute("href")); }
  });
  window.addEventListener("hashchange", function () { openTarget(location.hash); });
  openTarget(location.hash);
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
