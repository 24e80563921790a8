/* The projector's live board: polls the board version (ETag → 304), redraws the columns on change. */
(function () {
  "use strict";
  var root = document.getElementById("projector");
  if (!root || !window.fetch) { return; }
  var etag = root.dataset.etag, offset = 0, last = null, timer = document.getElementById("proj-timer");
  offset = Number(timer.dataset.now) - Date.now();
  function draw(j) {
    last = j;
    document.getElementById("proj-total").textContent = j.total;
    root.querySelectorAll(".proj-col").forEach(function (col) {
      var cat = col.dataset.cat, ul = col.querySelector(".proj-notes"), frag = document.createDocumentFragment();
      col.querySelector(".count").textContent = cat ? (j.counts[cat] || 0) : j.total;
      j.notes.forEach(function (n) {
        if (n.cat !== cat) { return; }
        var li = document.createElement("li");
        li.textContent = n.text;
        if (n.votes) { var b = document.createElement("b"); b.textContent = n.votes; li.appendChild(b); }
        frag.appendChild(li);
      });
      ul.replaceChildren(frag);
    });
    var hidden = root.querySelector(".proj-hidden");
    if (hidden) { hidden.hidden = j.visible; }
    timer.dataset.ends = j.timer_ends_at || "";
    offset = j.now - Date.now();
  }
  function poll() {
    if (document.hidden) { return; }
    fetch(root.dataset.state, {headers: {"If-None-Match": etag, "Accept": "application/json"}, cache: "no-store", credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 304) { return null; }
        if (!r.ok) { throw new Error(r.status); }
        etag = r.headers.get("ETag") || etag;
        return r.json();
      })
      .then(function (j) { if (j) { draw(j); } setTimeout(poll, 2000 + Math.random() * 500); },
            function () { setTimeout(poll, 5000); });
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });
  setInterval(function () {
    var ends = Number(timer.dataset.ends);
    if (!ends) { timer.textContent = ""; return; }
    var s = Math.max(0, Math.round((ends - Date.now() - offset) / 1000));
    timer.textContent = "⏱ " + Math.floor(s / 60) + ":" + ("0" + s % 60).slice(-2);
  }, 1000);
  setTimeout(poll, 2000);
}());
