/* The participant's board with JavaScript: notes kept on the phone until the server has them (a key per
   note, so a resent note is the same note), drafts kept, the board polled by version (ETag → 304),
   the list patched, never the form being typed in. Without this file the page works with plain forms. */
(function () {
  "use strict";
  var root = document.getElementById("board");
  if (!root || !window.fetch || !window.localStorage) { return; }
  var d = root.dataset, form = document.getElementById("note-form"), text = document.getElementById("text");
  var net = document.getElementById("net"), own = document.getElementById("own"), list = document.getElementById("notes");
  var cats = JSON.parse(d.cats || "{}"), etag = d.etag, offset = 0, timer = null, failures = 0, busy = false;
  var store = "piu:" + d.post, draftKey = store + ":draft";
  var last = null;
  function load() { try { return JSON.parse(localStorage.getItem(store)) || []; } catch (e) { return []; } }
  function save(q) { try { localStorage.setItem(store, JSON.stringify(q)); } catch (e) { /* full: keep in memory */ } }
  function key() {
    var b = new Uint8Array(16), s = "";
    crypto.getRandomValues(b);
    for (var i = 0; i < b.length; i++) { s += ("0" + b[i].toString(16)).slice(-2); }
    return s;
  }
  function show(state) {
    var q = load().length;
    net.className = state === "off" ? "off" : (q ? "wait" : "");
    net.textContent = state === "off" ? d.lOffline : (q ? d.lWaiting + " (" + q + ")" : d.lSent);
  }
  function post(body) {
    var p = new URLSearchParams(body);
    p.set("fk", d.fk);
    return fetch(body.vote ? d.vote : d.post, {method: "POST", body: p, credentials: "same-origin",
      headers: {"Accept": "application/json"}, cache: "no-store"});
  }
  function flush() {
    if (busy) { return; }
    var q = load();
    if (!q.length) { show(); return; }
    busy = true;
    post(q[0]).then(function (r) {
      busy = false;
      if (r.ok || r.status === 400 || r.status === 409 || r.status === 404) {
        var sent = q[0];
        save(load().filter(function (n) { return n.client_key !== sent.client_key; }));
        failures = 0;
        if (!r.ok) { r.json().then(function (j) { alert(j.error || r.status); }, function () {}); }
        show(); poll(true); flush();
      } else { retry(); }
    }, function () { busy = false; retry(); });
  }
  function retry() { failures++; show("off"); setTimeout(flush, Math.min(15000, 1000 * failures) + Math.random() * 1000); }
  function li(n) {
    var el = document.createElement("li");
    el.className = "note" + (n.mine ? " mine" : "") + (n.pending ? " pending" : "") + (n.unsent ? " unsent" : "");
    if (n.cat && cats[n.cat]) { var c = document.createElement("span"); c.className = "cat"; c.textContent = cats[n.cat]; el.appendChild(c); }
    var p = document.createElement("p"); p.textContent = n.text; el.appendChild(p);
    if (n.pending || n.unsent) { var t = document.createElement("span"); t.className = "tag"; t.textContent = n.unsent ? d.lUnsent : d.lPending; el.appendChild(t); }
    if (last && last.visible && !n.pending && !n.unsent) {
      var v = document.createElement("div"); v.className = "vote";
      var count = document.createElement("span"); count.className = "votes"; count.textContent = n.votes; v.appendChild(count);
      if (last.voting) {
        if (n.my_votes) { v.appendChild(button("−", d.lUnvote, n.id, -1)); }
        var my = document.createElement("span"); my.className = "my"; my.textContent = new Array(n.my_votes + 1).join("●"); v.appendChild(my);
        if (last.votes_left && n.my_votes < last.votes_per_note) { v.appendChild(button("+", d.lVote, n.id, 1)); }
      }
      el.appendChild(v);
    }
    return el;
  }
  function button(label, title, id, delta) {
    var b = document.createElement("button"); b.type = "button"; b.textContent = label; b.setAttribute("aria-label", title);
    b.addEventListener("click", function () {
      b.disabled = true;
      post({vote: 1, note: id, delta: delta}).then(function (r) {
        if (!r.ok) { r.json().then(function (j) { alert(j.error); }, function () {}); }
        poll(true);
      }, function () { show("off"); b.disabled = false; });
    });
    return b;
  }
  // The shared notes the phone holds (by id, in board order) and their elements in the board's list: a poll
  // brings only what changed since the phone's version, and only those notes are redrawn.
  var byId = {}, order = [], els = {}, mine = {}, dots = {};
  function apply(j) {
    var changed = {}, full = !j.delta || !last || j.chain !== last.chain;
    if (full) { byId = {}; order = []; }
    j.notes.forEach(function (n) { if (!byId[n.id]) { order.push(n.id); } byId[n.id] = n; changed[n.id] = 1; });
    (j.gone || []).forEach(function (id) { if (byId[id]) { delete byId[id]; changed[id] = 1; } });
    if (j.gone && j.gone.length) { order = order.filter(function (id) { return byId[id]; }); }
    var was = last;
    last = j;
    var nowMine = {};
    j.mine.forEach(function (id) { nowMine[id] = true; });
    Object.keys(j.my_votes).concat(Object.keys(dots)).forEach(function (id) {
      if ((j.my_votes[id] || 0) !== (dots[id] || 0)) { changed[id] = 1; }
    });
    Object.keys(nowMine).concat(Object.keys(mine)).forEach(function (id) { if (!nowMine[id] !== !mine[id]) { changed[id] = 1; } });
    mine = nowMine; dots = j.my_votes;
    // Rules that draw every note's buttons: a change redraws the whole list.
    var same = was && ["visible", "voting", "votes_per_note"].every(function (k) { return was[k] === j[k]; }) &&
      !was.votes_left === !j.votes_left;
    render(full || !same ? null : changed);
  }
  function note(id) { var n = byId[id]; n.mine = !!mine[id]; n.my_votes = dots[id] || 0; return n; }
  function render(changed) {
    if (!last) { return; }
    var a = document.createDocumentFragment();
    last.own.forEach(function (n) { n.mine = true; n.my_votes = 0; a.appendChild(li(n)); });
    order.forEach(function (id) { if (mine[id]) { a.appendChild(li(note(id))); } });
    load().forEach(function (n) { a.appendChild(li({text: n.text, cat: n.category, mine: true, unsent: true})); });
    own.replaceChildren(a);
    if (!changed) {
      var b = document.createDocumentFragment();
      els = {};
      order.forEach(function (id) { if (!mine[id]) { els[id] = b.appendChild(li(note(id))); } });
      list.replaceChildren(b);
      var more = document.getElementById("more"); if (more) { more.hidden = true; }  // every note is here now
    } else {
      Object.keys(changed).forEach(function (id) {
        var old = els[id];
        if (byId[id] && !mine[id]) {
          var el = li(note(id));
          if (old) { list.replaceChild(el, old); } else { list.appendChild(el); }
          els[id] = el;
        } else if (old) { list.removeChild(old); delete els[id]; }
      });
    }
    controls();
  }
  function controls() {
    var hidden = document.getElementById("hidden-note"); if (hidden) { hidden.hidden = last.visible; }
    var left = document.getElementById("left"); if (left) { left.textContent = d.lLeft + " " + last.votes_left; }
    var open = last.accepting && !(last.timer_ends_at && last.timer_ends_at <= Date.now() + offset);
    document.getElementById("send").disabled = !open;
    document.getElementById("closed").hidden = open;
  }
  function poll(now) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (document.hidden && !now) { return; }
    var h = {"Accept": "application/json"}, url = d.state;
    if (last && etag) { h["If-None-Match"] = etag; url += "?since=" + last.chain + "." + last.v; }
    fetch(url, {headers: h, credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        if (r.status === 304) { return null; }
        if (!r.ok) { throw new Error(r.status); }
        etag = r.headers.get("ETag") || etag;
        return r.json();
      })
      .then(function (j) {
        if (j) { offset = j.now - Date.now(); apply(j); }
        if (!load().length) { show(); }
        schedule();
      }, function () { show("off"); schedule(); });
  }
  function schedule() { if (!timer && !document.hidden) { timer = setTimeout(poll, 2000 + Math.random() * 1000); } }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(true); flush(); } });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var value = text.value.trim(), cat = form.querySelector("[name=category]:checked") || form.querySelector("input[type=hidden][name=category]");
    if (!value) { return; }
    var q = load();
    q.push({client_key: key(), text: value, category: cat ? cat.value : ""});
    save(q); text.value = ""; try { localStorage.removeItem(draftKey); } catch (err) { /* ignore */ }
    render({}); show(); flush();
  });
  text.addEventListener("input", function () { try { localStorage.setItem(draftKey, text.value); } catch (e) { /* ignore */ } });
  if (!text.value) { text.value = localStorage.getItem(draftKey) || ""; }
  setInterval(function () {
    var t = document.getElementById("timer"), ends = last ? last.timer_ends_at : Number(t.dataset.ends);
    if (!ends) { t.textContent = ""; return; }
    var s = Math.max(0, Math.round((ends - Date.now() - offset) / 1000));
    t.textContent = "⏱ " + Math.floor(s / 60) + ":" + ("0" + s % 60).slice(-2);
    if (!s && last) { controls(); }
  }, 1000);
  window.addEventListener("online", flush);
  offset = Number(document.getElementById("timer").dataset.now) - Date.now();
  poll(true); flush();
}());
