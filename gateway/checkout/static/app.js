// Витрина · Касса: the cashier page. Keyboard first: the scan field keeps the focus (a keyboard-wedge
// scanner types the code and Enter into it); a serial scanner bound to the lane rings items up on the
// gateway and the page learns it over the WebSocket (``lane`` snapshot + ``scan`` message); F-keys run
// the actions; money is kopecks on the wire.
"use strict";
const $ = (id) => document.getElementById(id);
const S = { token: localStorage.getItem("co.token"), lane: localStorage.getItem("co.lane"), view: null,
            ws: null, busy: false, payMode: null, ret: null };

function rub(kop) {
  const neg = kop < 0; kop = Math.abs(kop);
  const r = Math.floor(kop / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0");
  return (neg ? "−" : "") + r + "," + String(kop % 100).padStart(2, "0");
}
function kop(text) {
  const t = String(text || "").trim().replace(/\s/g, "").replace(",", ".");
  if (!t) return 0;
  if (!/^\d+(\.\d{1,2})?$/.test(t)) throw new Error("Сумма: «" + text + "» — не число");
  const [r, k = ""] = t.split(".");
  return parseInt(r, 10) * 100 + parseInt((k + "00").slice(0, 2), 10);
}
const qty = (l) => (l.measure === "kg" ? l.quantity.replace(".", ",") + " кг" : l.quantity + " шт");
const lineText = (l) => `${l.name}: ${qty(l)} × ${rub(l.price)} = ${rub(l.amount)}`;
function say(text, kind) { const m = $("message"); m.textContent = text; m.className = "msg " + (kind || ""); }
function show(id) { for (const s of document.querySelectorAll(".screen")) s.hidden = s.id !== id; }

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: { "Content-Type": "application/json",
    ...(S.token ? { Authorization: "Bearer " + S.token } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) { logout(); throw new Error(data.detail || "Войдите снова"); }
  if (!r.ok) throw new Error(data.detail || ("Ошибка " + r.status));
  return data;
}
const lanePath = (p) => "/api/lanes/" + encodeURIComponent(S.lane) + p;

async function act(label, fn) {
  if (S.busy) return;
  S.busy = true; document.body.style.cursor = "progress";
  try { const out = await fn(); if (label) say(label, "ok"); return out; }
  catch (e) { say(e.message, "err"); }
  finally { S.busy = false; document.body.style.cursor = ""; focusScan(); await refresh(); }
}

// Login ------------------------------------------------------------------------------------------
async function loadInfo() {
  const info = await api("GET", "/api/info");
  $("login-lane").innerHTML = info.lanes.map((l) => `<option value="${l}">${l}</option>`).join("");
  if (S.lane) $("login-lane").value = S.lane;
  $("login-user").innerHTML = info.cashiers.map((c) => `<option value="${c.login}">${c.name}</option>`).join("");
}
$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const out = await api("POST", "/api/login", { lane: $("login-lane").value, login: $("login-user").value,
                                                   pin: $("login-pin").value });
    S.token = out.token; S.lane = out.lane;
    localStorage.setItem("co.token", S.token); localStorage.setItem("co.lane", S.lane);
    $("login-pin").value = ""; $("login-error").hidden = true;
    await enter();
  } catch (err) { $("login-error").textContent = err.message; $("login-error").hidden = false; }
});
function logout() {
  S.token = null; localStorage.removeItem("co.token");
  if (S.ws) S.ws.close();
  show("screen-login"); loadInfo().catch(() => {});
}

// Sale screen ----------------------------------------------------------------------------------
async function enter() {
  show("screen-sale");
  connect();
  await refresh();
  focusScan();
}
async function refresh() {
  if (!S.token) return;
  try { render(await api("GET", lanePath(""))); } catch (e) { /* shown by act */ }
}
function connect() {
  if (S.ws) S.ws.close();
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host
                           + "/api/ws?token=" + encodeURIComponent(S.token));
  S.ws = ws;
  ws.onopen = () => $("net").classList.remove("off");
  ws.onclose = () => { $("net").classList.add("off"); if (S.ws === ws && S.token) setTimeout(connect, 2000); };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "lane") render(m);
    else if (m.type === "progress") say(m.message, "warn");
    else if (m.type === "scan") scanned(m);
  };
}
// A read of the lane's hardware scanner: the line itself comes with the ``lane`` snapshot.
function scanned(m) {
  if (!m.ok) say(m.message, "err");
  else if (m.line) say(lineText(m.line), "ok");
}
function render(v) {
  // A GET's answer can arrive after a newer WebSocket snapshot (a hardware scan while a button's
  // request was in flight): never draw an older view of the same gateway run over a newer one.
  if (S.view && S.view.boot === v.boot && v.rev < S.view.rev) return;
  S.view = v;
  const open = v.shift.state === "open";
  $("shift").textContent = open ? "Смена " + (v.shift.number || "") + " открыта" : "Смена закрыта";
  $("shift").className = "pill" + (open ? " open" : "");
  $("cashier").textContent = v.cashier ? "Кассир: " + v.cashier.name : "";
  $("title").textContent = "Витрина · Касса " + v.lane;
  const sale = v.sale;
  const lines = sale ? sale.lines : [];
  $("lines").innerHTML = lines.map((l, i) => `<tr class="${i === lines.length - 1 ? "last" : ""}" data-line="${l.line_no}">
      <td>${l.line_no}</td><td>${esc(l.name)}${l.marking_codes.length ? "<small>КМ: " + esc(l.marking_codes[0].slice(0, 31)) + "…</small>" : ""}</td>
      <td class="n">${qty(l)}</td>
      <td class="n">${rub(l.price)}</td><td class="n">${rub(l.amount)}</td></tr>`).join("");
  $("total").textContent = rub(sale ? sale.total : 0);
  $("state").textContent = v.recovering ? "Восстановление после перезапуска…" : (sale ? (sale.kind === "return" ? "Возврат: " : "") + sale.state_text : "Готово к продаже");
  const f = sale && sale.fiscal;
  $("fiscal").textContent = f ? `ФД № ${f.fd_number}  ФП ${f.fiscal_sign}\nФН ${f.fn_number}  смена ${f.shift_number}, чек ${f.receipt_number}`
                                + (sale.change ? `\nСдача: ${rub(sale.change)} ₽` : "") : "";
  $("fiscal-panel").hidden = !(sale && sale.state === "fiscal_pending" && sale.fiscal_error);
  const slip = sale && sale.slip;
  $("slip-panel").hidden = !(slip && (slip.state === "failed" || slip.state === "unknown"));
  $("slip-text").textContent = slip ? slip.message : "";
  $("slip-reprint").disabled = !(slip && slip.can_reprint);
  $("done-panel").hidden = !(sale && sale.state === "completed");
  if (sale && sale.problem) say(sale.problem, "err");
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }
function focusScan() { if (!$("screen-sale").hidden && $("pay-panel").hidden && $("return-panel").hidden) $("scan").focus(); }

$("scan").addEventListener("keydown", (e) => {
  if (e.key !== "Enter") return;
  e.preventDefault();
  const code = $("scan").value.trim();
  $("scan").value = "";
  if (!code) return;
  act(null, async () => {
    const sale = await api("POST", lanePath("/scan"), { code });
    say(lineText(sale.lines[sale.lines.length - 1]), "ok");
  });
});
document.addEventListener("click", (e) => { if (!e.target.closest("input,select,button")) focusScan(); });

// Payment ----------------------------------------------------------------------------------------
function openPay(mode) {
  const sale = S.view && S.view.sale;
  if (!sale || !sale.lines.length || sale.state !== "lines") { say("Нет товаров к оплате", "err"); return; }
  S.payMode = mode;
  $("pay-panel").hidden = false;
  $("pay-cash").value = mode === "card" ? "" : rub(sale.total).replace(/\u00a0/g, "");
  $("pay-card").value = mode === "cash" ? "" : rub(sale.total).replace(/\u00a0/g, "");
  if (mode === "mixed") $("pay-cash").value = "";
  (mode === "card" ? $("pay-card") : $("pay-cash")).focus();
  (mode === "card" ? $("pay-card") : $("pay-cash")).select();
}
function closePay() { $("pay-panel").hidden = true; focusScan(); }
async function doPay() {
  let cash, card;
  try { cash = kop($("pay-cash").value); card = kop($("pay-card").value); } catch (e) { say(e.message, "err"); return; }
  const total = S.view.sale.total;
  if (S.payMode === "mixed" && cash + card < total) card = total - cash;
  closePay();
  say(card ? "Оплата картой: следуйте указаниям терминала" : "Печать чека…", "warn");
  await act(null, async () => {
    const sale = await api("POST", lanePath("/pay"), { cash, card });
    const text = sale.change ? `Чек напечатан. Сдача ${rub(sale.change)} ₽` : "Чек напечатан";
    if (sale.slip && sale.slip.state !== "printed") say(text + ". " + sale.slip.message, "warn");
    else say(text, "ok");
  });
}
$("pay-ok").onclick = doPay;
$("pay-no").onclick = closePay;
for (const id of ["pay-cash", "pay-card"]) $(id).addEventListener("keydown", (e) => {
  if (e.key === "Enter") { e.preventDefault(); doPay(); } else if (e.key === "Escape") closePay();
});
$("retry").onclick = () => act("Чек напечатан", () => api("POST", lanePath("/retry")));
const salePath = (p) => lanePath("/sales/" + encodeURIComponent(S.view.sale.sale_id) + p);
$("slip-reprint").onclick = () => act("Слип напечатан", () => api("POST", salePath("/slip")));
$("copy").onclick = () => act("Копия чека напечатана", () => api("POST", salePath("/copy")));
$("give-up").onclick = () => {
  if (confirm("Отменить оплату? Деньги вернутся покупателю, чек не будет напечатан."))
    act(null, async () => {
      const sale = await api("POST", lanePath("/give_up"));  // with the void slip's fate
      if (sale.slip && sale.slip.state !== "printed") say("Оплата отменена. " + sale.slip.message, "warn");
      else say("Оплата отменена", "ok");
    });
};

// Returns ----------------------------------------------------------------------------------------
async function openReturn() {
  const sales = await api("GET", lanePath("/sales"));
  S.ret = { sale: null, picked: new Set() };
  $("return-panel").hidden = false;
  $("return-lines").innerHTML = "";
  $("return-ok").disabled = true;
  $("return-sales").innerHTML = sales.length ? sales.map((s) => `<button class="btn" data-sale="${s.sale_id}">
      Чек ФД ${s.fiscal ? s.fiscal.fd_number : "?"} · ${rub(s.total)} ₽ · ${s.lines.length} поз.</button>`).join("")
    : "<p>Нет чеков продажи в этой смене</p>";
  for (const b of $("return-sales").querySelectorAll("button")) b.onclick = () => pickSale(sales.find((s) => s.sale_id === b.dataset.sale), b);
}
function pickSale(sale, button) {
  for (const b of $("return-sales").querySelectorAll("button")) b.classList.toggle("sel", b === button);
  S.ret = { sale, picked: new Set() };
  $("return-lines").innerHTML = sale.lines.map((l) => `<button class="btn" data-line="${l.line_no}">
      ${l.line_no}. ${esc(l.name)} — ${qty(l)} · ${rub(l.amount)} ₽</button>`).join("");
  for (const b of $("return-lines").querySelectorAll("button")) b.onclick = () => {
    const n = +b.dataset.line;
    if (S.ret.picked.has(n)) S.ret.picked.delete(n); else S.ret.picked.add(n);
    b.classList.toggle("sel", S.ret.picked.has(n));
    $("return-ok").disabled = !S.ret.picked.size;
  };
}
$("return-ok").onclick = () => {
  const lines = [...S.ret.picked].map((n) => ({ line_no: n }));
  const saleId = S.ret.sale.sale_id;
  $("return-panel").hidden = true;
  say("Возврат: следуйте указаниям терминала", "warn");
  act("Возврат оформлен, чек возврата напечатан", () => api("POST", lanePath("/return"), { sale_id: saleId, lines }));
};
$("return-no").onclick = () => { $("return-panel").hidden = true; focusScan(); };

// Keys -------------------------------------------------------------------------------------------
const KEYS = {
  F2: () => act("Смена открыта", () => api("POST", lanePath("/shift/open"))),
  F3: () => { const plu = prompt("ПЛУ весового товара"); if (plu) act(null, async () => {
    const sale = await api("POST", lanePath("/weigh"), { plu: parseInt(plu, 10) });
    const l = sale.lines[sale.lines.length - 1]; say(`${l.name}: ${qty(l)} = ${rub(l.amount)}`, "ok"); }); },
  F4: () => openPay("cash"),
  F5: () => openPay("card"),
  F6: () => openPay("mixed"),
  F7: () => act("Чек отменён", () => api("POST", lanePath("/cancel"))),
  F8: () => openReturn().catch((e) => say(e.message, "err")),
  F9: () => act("X-отчёт напечатан", () => api("POST", lanePath("/x_report"))),
  F10: () => { if (confirm("Закрыть смену? Будет снят Z-отчёт и выполнена сверка итогов."))
    act(null, async () => { const z = await api("POST", lanePath("/shift/close"));
      say(z.differences.length ? "Смена закрыта. Расхождения: " + z.differences.map((d) => d.message).join("; ")
                               : "Смена закрыта, расхождений нет", z.differences.length ? "warn" : "ok"); }); },
};
document.addEventListener("keydown", (e) => {
  if (KEYS[e.key] && !$("screen-sale").hidden) { e.preventDefault(); KEYS[e.key](); }
  else if (e.key === "Delete" && document.activeElement === $("scan") && S.view && S.view.sale && S.view.sale.lines.length) {
    const last = S.view.sale.lines[S.view.sale.lines.length - 1];
    act("Позиция удалена", () => api("POST", lanePath(`/lines/${last.line_no}/remove`)));
  } else if (e.key === "Escape") { closePay(); $("return-panel").hidden = true; focusScan(); }
});
for (const b of document.querySelectorAll(".keys .btn")) b.onclick = () => KEYS[b.dataset.key]();

if (S.token && S.lane) enter().catch(logout); else logout();
