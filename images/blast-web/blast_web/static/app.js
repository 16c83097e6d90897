// blast-web: optional enhancements. Every page works without this file except live refresh.
"use strict";

// Molecule detection as the server does it (>= 90% ACGTUN letters is nucleotide), to offer
// the programs that fit the query and the chosen database.
const PROGRAMS = {
  "nucleotide/nucleotide": ["blastn", "tblastx"], "nucleotide/protein": ["blastx"],
  "protein/protein": ["blastp"], "protein/nucleotide": ["tblastn"],
};

function detectMolecule(text) {
  let letters = 0, nucleic = 0;
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith(">")) continue;
    for (const c of line.toUpperCase()) {
      if (c >= "A" && c <= "Z") { letters++; if ("ACGTUN".includes(c)) nucleic++; }
    }
  }
  if (!letters) return null;
  return nucleic >= 0.9 * letters ? "nucleotide" : "protein";
}

function setupForm(form) {
  const query = form.querySelector("#query");
  const program = form.querySelector("#program");
  const hint = form.querySelector("#program-hint");
  const molecule = form.querySelector("#molecule");
  const task = form.querySelector("#task");
  const file = form.querySelector("#query_file");
  const maxBytes = Number(form.dataset.maxBytes || 0);
  function update() {
    const mol = detectMolecule(query.value);
    const db = form.querySelector("input[name=db]:checked");
    const dbMol = db ? db.dataset.molecule : "";
    molecule.textContent = mol ? "Detected: " + mol + " sequence" : "";
    const fitting = mol && dbMol ? PROGRAMS[mol + "/" + dbMol] || [] : [];
    for (const option of program.options) {
      if (option.value === "auto") continue;
      option.disabled = fitting.length > 0 && !fitting.includes(option.value);
    }
    if (program.selectedOptions[0] && program.selectedOptions[0].disabled) program.value = "auto";
    hint.textContent = fitting.length ? "Fits: " + fitting.join(", ") : "";
    const chosen = program.value === "auto" ? fitting[0] : program.value;
    for (const option of task.options) {
      if (!option.dataset.program) continue;
      option.hidden = Boolean(chosen) && option.dataset.program !== chosen;
    }
  }
  query.addEventListener("input", update);
  program.addEventListener("change", update);
  for (const radio of form.querySelectorAll("input[name=db]")) radio.addEventListener("change", update);
  if (file) {
    file.addEventListener("change", () => {
      const f = file.files[0];
      if (!f) return;
      if (maxBytes && f.size > maxBytes) { molecule.textContent = "This file is over the size limit."; return; }
      f.slice(0, 65536).text().then((text) => { if (!query.value.trim()) { molecule.textContent = "Detected: " + (detectMolecule(text) || "?") + " sequence (from the file)"; } });
    });
  }
  update();
}

function batches(s) {
  return s.done + " of " + s.total + (s.total === 1 ? " batch" : " batches");
}

// Live status: poll a JSON endpoint and reload when a search finishes.
function pollSearch(element) {
  const url = element.dataset.poll;
  if (!url) return;
  const tick = () => fetch(url, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((s) => {
      if (!s) return;
      if (s.final) { window.location.reload(); return; }
      const badge = element.querySelector(".state");
      badge.textContent = s.state; badge.className = "state state-" + s.state;
      const progress = document.querySelector("#progress progress");
      if (progress) { progress.max = s.total; progress.value = s.done; }
      for (const text of document.querySelectorAll("#search-progress, #progress .progress-text")) text.textContent = batches(s);
      const state = document.querySelector("#progress .progress-state");
      if (state) state.textContent = s.state;
      setTimeout(tick, 2000);
    })
    .catch(() => setTimeout(tick, 5000));
  setTimeout(tick, 1500);
}

function pollList(table) {
  const tick = () => fetch(table.dataset.poll, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((doc) => {
      if (!doc) return;
      let running = false;
      for (const s of doc.searches) {
        const row = table.querySelector('tr[data-search="' + CSS.escape(s.search_id) + '"]');
        if (!row) { window.location.reload(); return; }
        const badge = row.querySelector(".state");
        badge.textContent = s.state; badge.className = "state state-" + s.state;
        const bar = row.querySelector("progress");
        bar.max = s.total; bar.value = s.done;
        row.querySelector(".progress-cell span").textContent = batches(s);
        row.querySelector(".hits-cell").textContent = s.hits === null ? "" : s.hits;
        running = running || !s.final;
      }
      setTimeout(tick, running ? 2000 : 10000);
    })
    .catch(() => setTimeout(tick, 5000));
  setTimeout(tick, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("search-form");
  if (form) setupForm(form);
  const state = document.getElementById("search-state");
  if (state) pollSearch(state);
  const list = document.getElementById("searches");
  if (list) pollList(list);
});
