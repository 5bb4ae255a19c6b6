"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const ops = data.ops;
  const REGS = data.registers;
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // Global step index <-> (operation, row); an operation without rows
  // still has one step.
  const starts = [];
  let total = 0;
  for (const op of ops) {
    starts.push(total);
    total += Math.max(1, op.rows.length);
  }
  const locate = (index) => {
    let lo = 0, hi = ops.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= index) lo = mid; else hi = mid - 1;
    }
    return [lo, index - starts[lo]];
  };
  const indexOf = (op, row) => {
    op = Math.min(Math.max(op, 0), ops.length - 1);
    const rows = Math.max(1, ops[op].rows.length);
    return starts[op] + Math.min(Math.max(row, 0), rows - 1);
  };

  // An executed instruction: [code, [[reg, value, written]...], flags, taken].
  const code = (e) => data.code[e[0]];
  const effects = (e) => {
    const parts = e[1].map((t) => REGS[t[0]] + (t[2] ? ":=" : "=") + t[1]);
    if (e[2]) parts.push(...e[2].split(" "));
    if (e[3] === 1) parts.push("taken");
    if (e[3] === 0) parts.push("not taken");
    return parts.join(" ");
  };
  const parseOffset = (text) => {
    const m = /^([+-])0x([0-9a-f]+)$/.exec(text || "");
    if (!m) return null;
    const v = parseInt(m[2], 16);
    return m[1] === "-" ? -v : v;
  };
  const hex = (v) => (v < 0 ? "-0x" : "+0x") + Math.abs(v).toString(16);

  let current = -1;
  let shownOp = -1;

  function renderOpsList() {
    const list = $("ops");
    ops.forEach((op, n) => {
      const li = el("li", op.rows.some((r) => r[0] === "!") ? "differs" : "", op.call);
      li.id = "op-" + n;
      li.title = op.line || "";
      li.addEventListener("click", () => go(indexOf(n, 0)));
      list.appendChild(li);
    });
  }

  function cell(e) {
    if (!e) return "";
    const c = code(e);
    return c[0] + " " + c[1] + "  " + effects(e);
  }

  function renderRows(n) {
    const op = ops[n];
    $("call").textContent = "op " + n + (op.line ? " (" + op.line + ")" : "") + ": " + op.call;
    const body = document.querySelector("#rows tbody");
    body.textContent = "";
    if (op.rows.length === 0) {
      const tr = el("tr");
      tr.appendChild(el("td", "", "0"));
      tr.appendChild(el("td"));
      tr.appendChild(el("td", "", "(no walk instruction)"));
      tr.appendChild(el("td", "", "(no walk instruction)"));
      body.appendChild(tr);
    }
    op.rows.forEach((row, m) => {
      const cls = row[0] === "~" ? "unpaired" : row[0] === "!" ? "differs" : "";
      const tr = el("tr", cls);
      tr.appendChild(el("td", "", String(m)));
      tr.appendChild(el("td", "", row[0] === "=" ? "" : row[0] === "!" ? "!=" : "~"));
      tr.appendChild(el("td", "", cell(row[1])));
      tr.appendChild(el("td", "", cell(row[2])));
      tr.addEventListener("click", () => go(indexOf(n, m)));
      body.appendChild(tr);
    });
  }

  // The registers as this operation's instructions on one side have read
  // or written them, up to row m.
  function knownRegisters(op, m, side) {
    const known = REGS.map(() => null);
    for (const [r, value] of op.entry[side - 1]) known[r] = value;
    for (let i = 0; i <= m && i < op.rows.length; i++) {
      const e = op.rows[i][side];
      if (e) for (const t of e[1]) known[t[0]] = t[1];
    }
    return known;
  }

  function pairingReason(row) {
    for (const e of [row[1], row[2]]) {
      if (e && code(e)[2].startsWith("~")) return data.pairing[Number(code(e)[2].slice(1))];
    }
    return null;
  }

  function renderSide(box, op, m, side) {
    const body = box.querySelector(".body");
    body.textContent = "";
    const row = op.rows[m];
    const e = row ? row[side] : null;
    if (!e) {
      const why = row ? pairingReason(row) : null;
      body.appendChild(el("div", "none", !row ? "(no walk instruction)"
        : why ? "no instruction on this side (a row of the pairing table: the other side says why)"
        : "no instruction on this side"));
      body.appendChild(registers(op, m, side, null));
      return;
    }
    const c = code(e);
    const src = c[3];
    if (src) {
      const line = el("div", "src");
      line.appendChild(document.createTextNode(src[0] + ":" + src[1] + "  " + src[2]));
      if (src[3]) line.appendChild(el("span", "comment", "  # " + src[3]));
      body.appendChild(line);
    }
    const instr = el("div", "instr", c[0] + " " + c[1]);
    instr.id = (side === 1 ? "orig" : "port") + "-text";
    body.appendChild(instr);
    const eff = el("div", "effects", effects(e));
    eff.id = (side === 1 ? "orig" : "port") + "-effects";
    body.appendChild(eff);
    if (c[2].startsWith("~")) {
      body.appendChild(el("div", "reason", "not compared: " + data.pairing[Number(c[2].slice(1))][2]));
    }
    body.appendChild(registers(op, m, side, e));
  }

  function registers(op, m, side, e) {
    const known = knownRegisters(op, m, side);
    const table = el("table", "regs");
    const names = el("tr");
    const values = el("tr");
    REGS.forEach((name, r) => {
      const t = e ? e[1].find((x) => x[0] === r) : null;
      const cls = t ? (t[2] ? "written" : "read") : known[r] === null ? "unknown" : "";
      names.appendChild(el("td", "name", "%" + name));
      const value = known[r] === null ? "-" : known[r];
      // "(return address)" is a kind of value, not a number: kept short.
      const v = el("td", cls, value === "(return address)" ? "ret. addr." : value);
      v.title = value;
      v.dataset.reg = name;
      values.appendChild(v);
    });
    table.appendChild(names);
    table.appendChild(values);
    table.title = "after the instruction; blue: read, orange: written; -: not an input of this walk and not yet touched";
    return table;
  }

  // The heap at row m: the headers read before the walk, the stores run.s
  // made up to m, the walk's verdicts, %rsi and memory_end.
  function heapState(op, m) {
    if (!op.heap) return null;
    const blocks = op.heap.blocks.map((b) => ({ at: b[0], inUse: b[1], size: b[2], pool: b[3], verdict: "" }));
    const byOffset = new Map(blocks.map((b) => [b.at, b]));
    let rsi = parseOffset(op.heap.start);
    let end = parseOffset(op.heap.end);
    let here = null;
    const reg = (e, name) => {
      const t = e[1].find((x) => REGS[x[0]] === name);
      return t ? t[1] : null;
    };
    let r10 = null, rdx = null, r8 = null;
    for (let i = 0; i <= m && i < op.rows.length; i++) {
      const e = op.rows[i][1];
      if (!e) continue;
      const slot = code(e)[2];
      const rsiText = reg(e, "rsi");
      if (rsiText !== null && parseOffset(rsiText) !== null) rsi = parseOffset(rsiText);
      if (reg(e, "r10") !== null) r10 = Number(reg(e, "r10"));
      if (reg(e, "rdx") !== null) rdx = Number(reg(e, "rdx"));
      if (reg(e, "r8") !== null) r8 = parseOffset(reg(e, "r8"));
      if (slot === "allocate_loop:0" || slot === "deallocate_pool_loop:0") here = byOffset.get(rsi) || null;
      const set = (v) => { if (here) here.verdict = v; };
      if (slot === "allocate_loop:3" && e[3] === 1) set("in use");
      if (slot === "allocate_loop:5" && e[3] === 1) set("too small");
      if (slot === "allocate_loop:6") { set("chosen"); if (here) here.inUse = 1; }
      if (slot === "allocate_loop:7" && here && r10 !== null) here.pool = r10;
      if (slot === "deallocate_pool_loop:3") set(e[3] === 1 ? "freed" : "other pool");
      if (slot === "deallocate_from_pool:0" && here) here.pool = 0;
      if (slot === "deallocate_from_pool:1" && here) here.inUse = 0;
      if (code(e)[1].includes("memory_end") && reg(e, "rdi") !== null) end = parseOffset(reg(e, "rdi"));
      if (slot === "allocate_move_break:0" && r8 !== null) {
        const b = { at: r8, inUse: 1, size: 0, pool: 0, verdict: "appended" };
        blocks.push(b);
        byOffset.set(r8, b);
        here = b;
      }
      if (slot === "allocate_move_break:1" && here && rdx !== null) here.size = rdx;
      if (slot === "allocate_move_break:2" && here && r10 !== null) here.pool = r10;
    }
    // memory_end moved (the break follows at the syscall) but the new
    // header is not written yet: the space between the old end and the new.
    const oldEnd = parseOffset(op.heap.end);
    const growing = end !== oldEnd && !blocks.some((b) => b.at === oldEnd) ? { at: oldEnd, size: end - oldEnd } : null;
    return { blocks, rsi, end, growing, truncated: op.heap.truncated };
  }

  const SVG = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const VERDICT_FILL = { "in use": "#d9d9d9", "too small": "#ffd2a6", chosen: "#b7e4b0", appended: "#b7e4b0", freed: "#bcd7ff", "other pool": "#eeeeee" };

  function renderHeap(op, m) {
    const box = $("heap");
    box.textContent = "";
    const state = heapState(op, m);
    const rsiBox = el("p", "mono");
    rsiBox.id = "rsi-block";
    // The caption below speaks of the walk: shown only while there is one.
    document.querySelector("aside .legend").hidden = !state;
    if (!state) {
      box.appendChild(el("p", "", op.heap === null && op.call.startsWith("deallocate(")
        ? "deallocate does not walk: it clears the in_use and pool words 32 bytes before the pointer."
        : "No walk over the heap in this operation (or no heap yet)."));
      box.appendChild(rsiBox);
      return;
    }
    const { blocks, rsi, end } = state;
    const under = blocks.find((b) => b.at === rsi);
    rsiBox.textContent = under ? "%rsi: block at " + hex(under.at) : rsi === end ? "%rsi: memory_end " + hex(end) : "%rsi: " + hex(rsi);
    rsiBox.dataset.offset = rsi === null ? "" : hex(rsi);
    // At most 40 rows: a window around %rsi's block.
    const LIMIT = 40;
    let from = 0;
    let to = blocks.length;
    if (blocks.length > LIMIT) {
      const at = Math.max(0, under ? blocks.indexOf(under) : blocks.length - 1);
      from = Math.max(0, Math.min(at - LIMIT / 2, blocks.length - LIMIT));
      to = from + LIMIT;
    }
    const rowH = 22, width = 330, top = 6;
    const lines = (to - from) + (from > 0 ? 1 : 0) + (to < blocks.length ? 1 : 0) + 2 + (state.growing ? 1 : 0);
    const svg = svgEl("svg", { width, height: top + lines * rowH + 6, viewBox: "0 0 " + width + " " + (top + lines * rowH + 6), role: "img" });
    svg.appendChild(svgEl("title", {}, "heap at op " + ops.indexOf(op) + " row " + m));
    let y = top;
    const fold = (count) => {
      svg.appendChild(svgEl("text", { x: 8, y: y + 15, "font-size": 12, fill: "#666" }, "... " + count + " blocks"));
      y += rowH;
    };
    if (from > 0) fold(from);
    for (let i = from; i < to; i++) {
      const b = blocks[i];
      const isRsi = b === under;
      svg.appendChild(svgEl("rect", {
        x: 44, y, width: 214, height: rowH - 3, rx: 2,
        fill: VERDICT_FILL[b.verdict] || (b.inUse ? "#f3f3f3" : "#ffffff"),
        stroke: isRsi ? "#b00020" : "#888", "stroke-width": isRsi ? 2 : 1,
        "stroke-dasharray": b.verdict === "appended" ? "4 2" : "none",
      }));
      svg.appendChild(svgEl("text", { x: 48, y: y + 14, "font-size": 10.5 },
        hex(b.at) + " in_use=" + b.inUse + " size=" + b.size + " pool=" + b.pool));
      if (b.verdict) svg.appendChild(svgEl("text", { x: 262, y: y + 14, "font-size": 10.5, fill: "#333" }, b.verdict));
      if (isRsi) svg.appendChild(svgEl("text", { x: 2, y: y + 14, "font-size": 11, fill: "#b00020" }, "%rsi\u25B6"));
      y += rowH;
    }
    if (to < blocks.length) fold(blocks.length - to);
    if (state.growing) {
      const g = state.growing;
      svg.appendChild(svgEl("rect", {
        x: 44, y, width: 214, height: rowH - 3, rx: 2, fill: "#ffffff",
        stroke: rsi === g.at ? "#b00020" : "#888", "stroke-width": rsi === g.at ? 2 : 1, "stroke-dasharray": "4 2",
      }));
      svg.appendChild(svgEl("text", { x: 48, y: y + 14, "font-size": 10.5 }, hex(g.at) + " " + g.size + " B, no header yet"));
      svg.appendChild(svgEl("text", { x: 262, y: y + 14, "font-size": 10.5, fill: "#333" }, "new end"));
      if (rsi === g.at) svg.appendChild(svgEl("text", { x: 2, y: y + 14, "font-size": 11, fill: "#b00020" }, "%rsi\u25B6"));
      y += rowH;
    }
    svg.appendChild(svgEl("line", { x1: 44, x2: 258, y1: y + 2, y2: y + 2, stroke: "#333", "stroke-width": 2 }));
    if (rsi === end) svg.appendChild(svgEl("text", { x: 2, y: y + 17, "font-size": 11, fill: "#b00020" }, "%rsi\u25B6"));
    svg.appendChild(svgEl("text", { x: 48, y: y + 17, "font-size": 11 }, "%rcx = memory_end " + hex(end)));
    if (state.truncated) svg.appendChild(svgEl("text", { x: 8, y: y + 36, "font-size": 11 }, "(more blocks than were read)"));
    box.appendChild(svg);
    box.appendChild(rsiBox);
  }

  function go(index) {
    index = Math.min(Math.max(index, 0), total - 1);
    const [n, m] = locate(index);
    const op = ops[n];
    if (n !== shownOp) {
      renderRows(n);
      const old = document.querySelector("#ops li.current");
      if (old) old.classList.remove("current");
      const li = $("op-" + n);
      li.classList.add("current");
      li.scrollIntoView({ block: "nearest" });
      shownOp = n;
    }
    const trs = document.querySelectorAll("#rows tbody tr");
    if (current >= 0) {
      const [, oldRow] = locate(current);
      if (trs[oldRow]) trs[oldRow].classList.remove("current");
    }
    if (trs[m]) {
      trs[m].classList.add("current");
      trs[m].scrollIntoView({ block: "nearest" });
    }
    current = index;
    renderSide($("orig"), op, m, 1);
    renderSide($("port"), op, m, 2);
    renderHeap(op, m);
    $("slider").value = String(index);
    $("pos").textContent = "op " + n + " \u00b7 row " + m + " of " + Math.max(1, op.rows.length) + " \u00b7 step " + (index + 1) + "/" + total;
    const hash = "#op" + n + ".i" + m;
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  function fromHash() {
    const m = /^#op(\d+)\.i(\d+)$/.exec(location.hash);
    if (!m) return null;
    const n = Number(m[1]);
    if (n >= ops.length) return null;
    return indexOf(n, Number(m[2]));
  }

  const opStep = (delta) => {
    const [n] = locate(current);
    go(indexOf(n + delta, 0));
  };

  function start() {
    $("title").textContent = data.title;
    const verdict = $("verdict");
    verdict.textContent = data.verdict;
    if (data.differs) verdict.className = "differs";
    for (const note of data.notes) $("notes").appendChild(el("p", "", "note: " + note));
    if (ops.length === 0) {
      $("call").textContent = "The script has no operations.";
      document.body.dataset.ready = "1";
      return;
    }
    renderOpsList();
    const slider = $("slider");
    slider.max = String(total - 1);
    slider.addEventListener("input", () => go(Number(slider.value)));
    $("prev").addEventListener("click", () => go(current - 1));
    $("next").addEventListener("click", () => go(current + 1));
    $("prev-op").addEventListener("click", () => opStep(-1));
    $("next-op").addEventListener("click", () => opStep(1));
    // Capturing on window, and preventing the default: a focused slider
    // does not move a second time.
    window.addEventListener("keydown", (ev) => {
      if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const actions = {
        ArrowRight: () => go(current + 1),
        ArrowLeft: () => go(current - 1),
        ArrowDown: () => opStep(1),
        PageDown: () => opStep(1),
        ArrowUp: () => opStep(-1),
        PageUp: () => opStep(-1),
        Home: () => go(0),
        End: () => go(total - 1),
      };
      const action = actions[ev.key];
      if (!action) return;
      ev.preventDefault();
      ev.stopPropagation();
      action();
    }, true);
    window.addEventListener("hashchange", () => {
      const at = fromHash();
      if (at !== null && at !== current) go(at);
    });
    const at = fromHash();
    go(at !== null ? at : indexOf(data.open[0], data.open[1]));
    document.body.dataset.ready = "1";
  }

  start();
})();
