/* Vitrina handheld page: plain JS, no framework. Works with a keyboard-wedge scanner
   (characters then Enter into the focused scan field). Scanned lines are queued in
   localStorage and sent one by one; each carries a line_id generated here, so a line
   resent after a lost answer is never counted twice. */
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var store = window.localStorage;
  var state = { terminal: store.getItem("vt.terminal"), token: store.getItem("vt.token"),
                name: store.getItem("vt.name") || "", task: store.getItem("vt.task"),
                info: null, view: null, ws: null, wsDelay: 1000, draining: false, kbd: false };

  function show(name) {
    ["terminal", "login", "tasks", "task"].forEach(function (s) { $("screen-" + s).hidden = s !== name; });
    state.screen = name;
    $("who").textContent = state.token && name !== "login"
      ? state.name + " · " + state.terminal : "Витрина · ТСД" + (state.terminal ? " · " + state.terminal : "");
    if (name === "task") focusScan();
  }

  function setNet(ok) { $("net").className = ok ? "net" : "net off"; }

  function newId() {
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  function api(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    return fetch(path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) {
        setNet(true);
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.status === 401 && path !== "/api/login") { loggedOut(data.detail); }
          if (!r.ok) { var e = new Error(data.detail || ("Ошибка " + r.status)); e.status = r.status; e.code = data.code; throw e; }
          return data;
        });
      }, function () { setNet(false); var e = new Error("Нет связи со шлюзом"); e.status = 0; throw e; });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function say(text, kind) { var r = $("result"); r.textContent = text; r.className = "msg " + (kind || ""); }

  function beep(ok) {
    try {
      var C = window.AudioContext || window.webkitAudioContext; if (!C) return;
      var ctx = state.audio || (state.audio = new C()); var o = ctx.createOscillator(); var g = ctx.createGain();
      o.frequency.value = ok ? 1200 : 300; g.gain.value = 0.15; o.connect(g); g.connect(ctx.destination);
      o.start(); o.stop(ctx.currentTime + (ok ? 0.08 : 0.4));
    } catch (e) { /* no sound: fine */ }
    if (!ok && navigator.vibrate) navigator.vibrate(300);
  }

  function fmtQty(q, unit) {
    if (q === null || q === undefined) return "";
    var n = Number(q);
    return unit === "kg" ? n.toFixed(3).replace(".", ",") + " кг" : String(Math.round(n * 1000) / 1000).replace(".", ",") + " шт";
  }

  /* Terminal and login ----------------------------------------------------------- */
  function start() {
    api("GET", "/api/info").then(function (info) {
      state.info = info;
      if (!state.terminal || info.terminals.indexOf(state.terminal) < 0) return chooseTerminal();
      if (state.token) return afterLogin();
      loginScreen();
    }, function (e) { say(e.message, "err"); setTimeout(start, 3000); });
  }

  function chooseTerminal() {
    var box = $("terminals"); box.textContent = "";
    state.info.terminals.forEach(function (t) {
      var b = el("button", "btn", t); b.type = "button";
      b.onclick = function () { state.terminal = t; store.setItem("vt.terminal", t); loginScreen(); };
      box.appendChild(b);
    });
    show("terminal");
  }

  function loginScreen(message) {
    var users = state.info.users, sel = $("login-user");
    sel.textContent = "";
    if (users.length) {
      users.forEach(function (u) { var o = el("option", "", u.name); o.value = u.login; sel.appendChild(o); });
      if (state.info.store_pin) { var o = el("option", "", "Другой сотрудник…"); o.value = ""; sel.appendChild(o); }
    }
    sel.hidden = !users.length;
    $("login-name").hidden = users.length > 0;
    sel.onchange = function () { $("login-name").hidden = sel.value !== ""; };
    $("login-pin").value = "";
    $("login-error").hidden = !message; $("login-error").textContent = message || "";
    show("login");
    (users.length ? $("login-pin") : $("login-name")).focus();
  }

  $("login-form").onsubmit = function (ev) {
    ev.preventDefault();
    var sel = $("login-user");
    var user = !sel.hidden && sel.value ? sel.value : $("login-name").value.trim();
    if (!user) { $("login-error").hidden = false; $("login-error").textContent = "Укажите сотрудника"; return; }
    api("POST", "/api/login", { terminal: state.terminal, user: user, pin: $("login-pin").value })
      .then(function (r) {
        state.token = r.token; state.name = r.name;
        store.setItem("vt.token", r.token); store.setItem("vt.name", r.name);
        afterLogin();
      }, function (e) { $("login-error").hidden = false; $("login-error").textContent = e.message; $("login-pin").value = ""; });
  };

  $("change-terminal").onclick = chooseTerminal;

  function loggedOut(message) {
    state.token = null; store.removeItem("vt.token");
    if (state.ws) { try { state.ws.close(); } catch (e) { /* closing */ } }
    if (state.info) loginScreen(message || "Войдите снова");
  }

  $("logout").onclick = function () {
    api("POST", "/api/logout").catch(function () {});
    state.task = null; store.removeItem("vt.task"); loggedOut("");
  };

  function afterLogin() {
    connectWs();
    drain();
    if (state.task) openTask(state.task); else listTasks();
  }

  /* WebSocket: presence, battery, pushes -------------------------------------------- */
  function connectWs() {
    if (!state.token || (state.ws && state.ws.readyState <= 1)) return;
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + "/api/ws?token=" + encodeURIComponent(state.token));
    state.ws = ws;
    ws.onopen = function () { state.wsDelay = 1000; setNet(true); sendBattery(); drain(); };
    ws.onmessage = function (m) {
      var msg; try { msg = JSON.parse(m.data); } catch (e) { return; }
      if (msg.type === "tasks" && state.screen === "tasks") listTasks();
    };
    ws.onclose = function (ev) {
      if (state.ws === ws) state.ws = null;
      if (ev.code === 4401) return loggedOut("Сеанс истёк — войдите снова");
      if (!state.token) return;
      setNet(false);
      setTimeout(connectWs, state.wsDelay); state.wsDelay = Math.min(state.wsDelay * 2, 10000);
    };
  }

  function sendBattery() {
    if (!navigator.getBattery) return;  // the gateway then reports the battery as unknown
    navigator.getBattery().then(function (b) {
      var send = function () {
        if (state.ws && state.ws.readyState === 1)
          state.ws.send(JSON.stringify({ type: "battery", level: b.level, charging: b.charging }));
      };
      send(); b.onlevelchange = send; b.onchargingchange = send;
    }).catch(function () {});
  }

  /* Task list ---------------------------------------------------------------------------- */
  function listTasks() {
    state.task = null; store.removeItem("vt.task");
    api("GET", "/api/tasks").then(function (tasks) {
      var box = $("tasks"); box.textContent = "";
      tasks.forEach(function (t) {
        var b = el("button", "btn task"); b.type = "button";
        b.appendChild(document.createTextNode(t.kind_title + ": " + t.title));
        b.appendChild(el("small", "", t.lines_expected + " поз. · " + (t.status === "in_progress" ? "в работе" : "новое")));
        b.onclick = function () { openTask(t.task_id); };
        b.dataset.task = t.task_id;
        box.appendChild(b);
      });
      $("tasks-empty").hidden = tasks.length > 0;
      show("tasks");
    }, function (e) { if (e.status !== 401) { show("tasks"); $("tasks-empty").hidden = false; $("tasks-empty").textContent = e.message; } });
  }
  $("refresh").onclick = listTasks;

  /* One task ------------------------------------------------------------------------------- */
  function openTask(id) {
    api("POST", "/api/tasks/" + encodeURIComponent(id) + "/open").then(function (view) {
      state.task = id; store.setItem("vt.task", id);
      render(view); $("confirm").hidden = true;
      say("Сканируйте товар", ""); show("task");
    }, function (e) {
      if (e.status === 0 && state.view && state.view.task_id === id) { show("task"); say(e.message + " — строки сохраняются на ТСД", "warn"); return; }
      if (e.status !== 401) { state.task = null; store.removeItem("vt.task"); listTasks(); }
    });
  }

  function render(view) {
    state.view = view;
    $("task-title").textContent = view.kind_title + ": " + view.title;
    var box = $("progress"); box.textContent = "";
    view.expected.forEach(function (l) {
      var scanned = Number(l.scanned_qty), exp = l.expected_qty === null ? null : Number(l.expected_qty);
      var row = el("div", "pline" + (exp !== null && scanned === exp ? " done" : exp !== null && scanned > exp ? " over" : ""));
      row.dataset.line = l.line_no;
      row.appendChild(el("span", "", l.name + (l.price !== null ? " · " + (l.price / 100).toFixed(2).replace(".", ",") + " ₽" : "")));
      row.appendChild(el("span", "q", fmtQty(l.scanned_qty, l.unit) + (exp !== null ? " / " + fmtQty(l.expected_qty, l.unit) : "")));
      box.appendChild(row);
    });
    showQueue();
  }

  function refreshView() {
    if (!state.task) return;
    api("GET", "/api/tasks/" + encodeURIComponent(state.task)).then(render, function () {});
  }

  function queue() { try { return JSON.parse(store.getItem("vt.queue") || "[]"); } catch (e) { return []; } }
  function saveQueue(q) { store.setItem("vt.queue", JSON.stringify(q)); showQueue(); }
  function showQueue() {
    var n = queue().length, q = $("queue");
    q.hidden = n === 0;
    q.textContent = "Не отправлено строк: " + n + " (сохранены на ТСД, отправятся при связи)";
  }

  function submitScan() {
    var code = $("scan").value.replace(/[\r\n]+$/, "");
    $("scan").value = "";
    if (!code.trim()) return;
    var qtyText = $("qty").value.trim().replace(",", ".");
    var line = { task_id: state.task, line_id: newId(), barcode: code };
    if (qtyText) {
      if (!/^\d{1,5}(\.\d{1,3})?$/.test(qtyText) || Number(qtyText) <= 0) { beep(false); say("Неверное количество: " + $("qty").value, "err"); return; }
      line.qty = qtyText;
    }
    $("qty").value = "";
    var q = queue(); q.push(line); saveQueue(q);
    say("Отправка…", "");
    drain();
  }

  function drain() {
    if (state.draining || !state.token) return;
    var q = queue(); if (!q.length) return;
    state.draining = true;
    var line = q[0];
    var body = { line_id: line.line_id, barcode: line.barcode };
    if (line.qty) body.qty = line.qty;
    api("POST", "/api/tasks/" + encodeURIComponent(line.task_id) + "/lines", body).then(function (r) {
      dropHead(line); beep(true);
      var l = r.line, name = l.name || ("Товар " + l.barcode);
      var text = name + " +" + fmtQty(l.qty, l.unit) + (r.expected_qty !== null ? " (всего " + fmtQty(r.scanned_qty, l.unit) + " из " + fmtQty(r.expected_qty, l.unit) + ")" : " (всего " + fmtQty(r.scanned_qty, l.unit) + ")");
      if (r.price !== null && r.price !== undefined) text += " · цена " + (r.price / 100).toFixed(2).replace(".", ",") + " ₽";
      if (line.task_id === state.task) { say(text, "ok"); refreshView(); }
      next(0);
    }, function (e) {
      if (e.status === 0 || e.status >= 500) { say(e.message + ". Строк ждут отправки: " + queue().length, "warn"); next(2000); return; }
      if (e.status === 401) { state.draining = false; return; }
      dropHead(line); beep(false);
      if (line.task_id === state.task) say(e.message + (line.barcode.length <= 40 ? ": " + line.barcode : ""), "err");
      next(0);
    });
  }
  function dropHead(line) { var q = queue(); if (q.length && q[0].line_id === line.line_id) { q.shift(); saveQueue(q); } }
  function next(delay) { state.draining = false; if (queue().length) setTimeout(drain, delay); }

  $("scan").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" || ev.keyCode === 13) { ev.preventDefault(); submitScan(); }
  });
  $("qty").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" || ev.keyCode === 13) { ev.preventDefault(); focusScan(); }
  });

  function focusScan() {
    if (state.screen !== "task") return;
    var s = $("scan");
    s.setAttribute("inputmode", state.kbd ? "text" : "none");
    if (document.activeElement !== s && document.activeElement !== $("qty")) s.focus();
  }
  /* keep the focus in the scan field: a wedge scanner types into whatever is focused */
  $("scan").addEventListener("blur", function () { setTimeout(focusScan, 150); });
  $("qty").addEventListener("blur", function () { setTimeout(focusScan, 150); });
  document.addEventListener("click", function (ev) {
    if (state.screen === "task" && ev.target.tagName !== "INPUT" && ev.target.tagName !== "BUTTON") focusScan();
  });
  $("kbd").onclick = function () { state.kbd = !state.kbd; $("scan").blur(); focusScan(); };

  $("back").onclick = function () { listTasks(); };
  $("complete").onclick = function () {
    var n = queue().filter(function (l) { return l.task_id === state.task; }).length;
    $("confirm-text").textContent = n ? "Сначала дождитесь отправки строк: " + n : "Завершить задание? Сканирование будет закрыто.";
    $("confirm-yes").hidden = n > 0;
    $("confirm").hidden = false;
  };
  $("confirm-no").onclick = function () { $("confirm").hidden = true; focusScan(); };
  $("confirm-yes").onclick = function () {
    $("confirm").hidden = true;
    api("POST", "/api/tasks/" + encodeURIComponent(state.task) + "/complete").then(function () {
      beep(true); state.task = null; store.removeItem("vt.task"); listTasks();
    }, function (e) { beep(false); say(e.message, "err"); });
  };

  window.addEventListener("online", drain);
  setInterval(function () {
    if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify({ type: "ping" }));
  }, 20000);
  start();
})();
