// The page editor of /admin/pages/edit/<file> (shortcodes/host/editor.py): live preview and
// problems from the server, jump to a problem's line, completion of shortcode names, attributes
// and the values the site declares. Plain DOM, no dependencies; the page works without it.
(function () {
  "use strict";
  const root = document.querySelector(".editor");
  if (!root) return;
  const text = document.getElementById("editor-text");
  const list = document.getElementById("editor-problems");
  const preview = document.getElementById("editor-preview");
  const inert = document.getElementById("editor-inert");
  const who = document.getElementById("editor-as");
  const completions = document.getElementById("editor-completions");
  const schema = JSON.parse(document.getElementById("editor-schema").textContent);
  let timer = null;
  let sent = 0;

  // -- problems: line:col links that select the line in the textarea -------------------------
  function offsetOf(line, column) {
    const lines = text.value.split("\n");
    let at = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) at += lines[i].length + 1;
    return Math.min(at + column - 1, text.value.length);
  }

  function jump(line, column) {
    const start = offsetOf(line, column);
    const end = text.value.indexOf("\n", start);
    text.focus();
    text.setSelectionRange(start, end < 0 ? text.value.length : end);
    const height = text.scrollHeight / Math.max(1, text.value.split("\n").length);
    text.scrollTop = Math.max(0, (line - 3) * height);
  }

  list.addEventListener("click", function (event) {
    const link = event.target.closest("a[data-line]");
    if (!link) return;
    event.preventDefault();
    jump(Number(link.dataset.line), Number(link.dataset.column));
  });

  function showProblems(problems) {
    list.replaceChildren();
    if (!problems.length) {
      const none = document.createElement("li");
      none.className = "problem-none";
      none.textContent = "No problems.";
      list.append(none);
      return;
    }
    for (const p of problems) {
      const item = document.createElement("li");
      item.className = "problem-" + p.severity;
      const link = document.createElement("a");
      link.href = "#editor-text";
      link.dataset.line = p.line;
      link.dataset.column = p.column;
      link.textContent = p.line + ":" + p.column;
      item.append(link, " " + p.severity + ": " + p.message);
      list.append(item);
    }
  }

  // -- live preview: the unsaved text, rendered by the server as the chosen visitor ----------
  async function refresh() {
    const mine = ++sent;
    const response = await fetch(root.dataset.preview, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
      body: JSON.stringify({ file: root.dataset.file, text: text.value, as: who.value }),
      credentials: "same-origin",
    });
    if (mine !== sent) return; // a newer request is on its way
    if (!response.ok) {
      preview.textContent = "Preview failed: " + response.status + " " + response.statusText;
      return;
    }
    const data = await response.json();
    showProblems(data.problems);
    // Server-rendered and escaped by the engine; scripts inserted this way never run.
    preview.innerHTML = data.html;
    root.dataset.previewed = String(mine);
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  }

  // Buttons in the preview are inert and say so.
  preview.addEventListener("submit", function (event) {
    event.preventDefault();
    inert.hidden = false;
  });
  preview.addEventListener("click", function (event) {
    if (event.target.closest("a")) {
      event.preventDefault();
      inert.hidden = false;
    }
  });

  // -- completion ----------------------------------------------------------------------------
  const names = Object.keys(schema.shortcodes);

  function suggestions() {
    const before = text.value.slice(0, text.selectionStart);
    const open = before.lastIndexOf("[");
    if (open < 0 || before.indexOf("]", open) >= 0) return [];
    const tag = before.slice(open + 1);
    const name = /^\/?([^\s\[\]\/=]*)$/.exec(tag);
    if (name) {
      return names.filter((n) => n.startsWith(name[1]) && n !== name[1])
        .slice(0, 12).map((n) => ({ label: n, insert: n.slice(name[1].length) }));
    }
    const spec = schema.shortcodes[tag.split(/\s/, 1)[0]];
    if (!spec) return [];
    const value = /([A-Za-z0-9_-]+)="([^"]*)$/.exec(tag);
    if (value) {
      return (spec.values[value[1]] || []).filter((v) => v.startsWith(value[2]))
        .map((v) => ({ label: v, insert: v.slice(value[2].length) + '"' }));
    }
    const word = /\s([A-Za-z0-9_-]*)$/.exec(tag);
    if (!word || !spec.attributes) return [];
    return spec.attributes.filter((a) => a.name.startsWith(word[1]))
      .map((a) => ({ label: a.name, insert: a.name.slice(word[1].length) + '="' }));
  }

  function complete() {
    completions.replaceChildren();
    for (const s of suggestions()) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = s.label;
      button.addEventListener("click", function () {
        const at = text.selectionStart;
        text.setRangeText(s.insert, at, at, "end");
        text.focus();
        complete();
        later();
      });
      item.append(button);
      completions.append(item);
    }
  }

  text.addEventListener("input", function () { complete(); later(); });
  text.addEventListener("click", complete);
  who.addEventListener("change", refresh);
  refresh();
})();
