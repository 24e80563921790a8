// Drag a sticky note onto a theme (or onto "Post-it sans thème") on the facilitator's board page.
// Optional: without JavaScript, or with the keyboard, the same move is made by checking the note and
// choosing the theme in the bar above the themes. Dropping submits that same form (post/redirect/get).
(function () {
  "use strict";
  var form = document.getElementById("act");
  if (!form) { return; }
  var dragged = null;

  function move(note, theme) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name === "notes") { el.checked = el.value === note; }
    });
    form.elements.theme.value = theme;
    var action = document.createElement("input");
    action.type = "hidden";
    action.name = "action";
    action.value = "move";
    form.appendChild(action);
    form.submit();
  }

  document.querySelectorAll("li.note[draggable]").forEach(function (li) {
    li.addEventListener("dragstart", function (event) {
      dragged = li.id.slice(2);  // id="n-<note uid>"
      event.dataTransfer.setData("text/plain", dragged);
      event.dataTransfer.effectAllowed = "move";
      li.classList.add("dragging");
    });
    li.addEventListener("dragend", function () {
      li.classList.remove("dragging");
      dragged = null;
    });
  });

  document.querySelectorAll("[data-drop]").forEach(function (zone) {
    zone.addEventListener("dragover", function (event) {
      if (dragged) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        zone.classList.add("drop-over");
      }
    });
    zone.addEventListener("dragleave", function () { zone.classList.remove("drop-over"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      event.stopPropagation();
      zone.classList.remove("drop-over");
      var note = dragged || event.dataTransfer.getData("text/plain");
      if (note) { move(note, zone.getAttribute("data-drop")); }
    });
  });
}());
