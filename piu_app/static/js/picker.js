// Suggest names while typing in a link picker (a new record's carriers, people…). Optional: without
// JavaScript the typed name is looked up when the form is saved. Asks the server for a few matches
// (data-lookup, a JSON list) and shows them in the field's <datalist>; choosing one types its exact
// name, which the server then links without asking (a link to one record also sends the chosen uid).
(function () {
  "use strict";
  var MIN = 2, WAIT = 250;
  function attach(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var url = input.getAttribute("data-lookup");
    if (!list || !url || !window.fetch) { return; }
    var timer = null, last = "", uids = {};
    var uidName = input.getAttribute("data-uid-name");
    if (uidName) {  // a link to one record: send the uid of the suggestion chosen, so that a name shared
      input.addEventListener("change", function () {  // by two records needs no second screen
        var hidden = input.form && input.form.querySelector("input[type=hidden][name='" + uidName + "']");
        var uid = uids[input.value.trim()] || "";
        if (!hidden && uid) {
          hidden = document.createElement("input");
          hidden.type = "hidden";
          hidden.name = uidName;
          input.parentNode.insertBefore(hidden, input.nextSibling);
        }
        if (hidden) { hidden.value = uid; }
      });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        if (q.length < MIN || q === last) { return; }
        last = q;
        fetch(url + "?q=" + encodeURIComponent(q), {credentials: "same-origin", headers: {"Accept": "application/json"}})
          .then(function (r) { return r.ok ? r.json() : {results: []}; })
          .then(function (data) {
            if (input.value.trim() !== q) { return; }  // typed on meanwhile
            while (list.firstChild) { list.removeChild(list.firstChild); }
            (data.results || []).forEach(function (m) {
              var option = document.createElement("option");
              option.value = m.title;
              uids[m.title] = m.uid;
              if (m.detail) { option.label = m.title + " (" + m.detail + ")"; }
              list.appendChild(option);
            });
          })
          .catch(function () { /* offline or logged out: the server looks the name up on saving */ });
      }, WAIT);
    });
  }
  document.querySelectorAll("input[data-lookup]").forEach(attach);
}());
