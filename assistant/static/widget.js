/*
 * OpenVINO Performance Assistant: embeddable chat widget (vanilla JS, no external assets).
 *
 *   <script src="https://HOST/widget.js" defer
 *           data-title="Ask about OpenVINO performance"   (optional)
 *           data-api-key="KEY"                            (optional; when the server requires keys)
 *           data-mode="stream|ask"                        (optional; default stream)
 *           data-position="right|left"></script>          (optional)
 *
 * "stream" talks to POST /v1/chat/completions with stream: true (server-sent events; the last
 * chunk before [DONE] carries `sources`); "ask" talks to POST /api/ask (one JSON answer).
 * The page can also call window.OVPerfWidget.open(), .close() and .ask("question").
 *
 * Answers are Markdown; a safe subset is rendered (paragraphs, > quotes, - and 1. lists, **bold**,
 * `code`, [links](https://...) and bare http(s) addresses, | tables |) by building DOM nodes with
 * textContent: no answer text is ever parsed as HTML, and only http(s) links become links.
 */
(function () {
  "use strict";
  if (window.OVPerfWidget) return;

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1];
  })();
  var base = new URL(".", script && script.src ? script.src : window.location.href).href.replace(/\/$/, "");
  var cfg = {
    title: (script && script.getAttribute("data-title")) || "OpenVINO Performance Assistant",
    apiKey: script && script.getAttribute("data-api-key"),
    mode: (script && script.getAttribute("data-mode")) || "stream",
    left: script && script.getAttribute("data-position") === "left"
  };
  var history = [];
  var busy = false;

  var css = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    ".bubble{position:fixed;bottom:20px;" + (cfg.left ? "left" : "right") + ":20px;width:56px;height:56px;",
    "border-radius:50%;border:none;background:#0068b5;color:#fff;cursor:pointer;display:flex;",
    "align-items:center;justify-content:center;",
    "box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}",
    ".bubble:focus-visible{outline:3px solid #ffb000}",
    ".panel{position:fixed;bottom:88px;" + (cfg.left ? "left" : "right") + ":20px;width:min(380px,calc(100vw - 40px));",
    "height:min(560px,calc(100vh - 120px));display:none;flex-direction:column;background:#fff;color:#1b1b1b;",
    "border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden;z-index:2147483000}",
    ".panel.open{display:flex}",
    ".head{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;background:#0068b5;color:#fff}",
    ".head h2{font-size:15px;margin:0;font-weight:600}",
    ".head button{background:none;border:none;color:#fff;font-size:20px;cursor:pointer;line-height:1}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f5f7fa}",
    ".msg{max-width:90%;padding:8px 11px;border-radius:10px;font-size:14px;line-height:1.4;white-space:pre-wrap;",
    "overflow-wrap:anywhere}",
    ".user{align-self:flex-end;background:#0068b5;color:#fff}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #dde3ea}",
    ".bot.error{border-color:#d33;color:#a00}",
    ".hint{color:#555;font-size:12px;text-align:center}",
    ".md{white-space:normal}",
    ".md p{margin:0 0 6px}",
    ".md p:last-child{margin-bottom:0}",
    ".md blockquote{margin:4px 0 6px;padding:2px 0 2px 9px;border-left:3px solid #0068b5;color:#333}",
    ".md ul,.md ol{margin:2px 0 6px;padding-left:20px}",
    ".md code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;background:#eef1f5;",
    "padding:0 3px;border-radius:3px}",
    ".md pre{white-space:pre-wrap;background:#eef1f5;padding:6px;border-radius:6px;margin:4px 0}",
    ".md table{border-collapse:collapse;margin:4px 0 6px;font-size:13px}",
    ".md th,.md td{border:1px solid #dde3ea;padding:2px 6px;text-align:left}",
    ".md a{color:#0068b5}",
    "details{margin-top:6px;font-size:12px;white-space:normal}",
    "summary{cursor:pointer;color:#0068b5}",
    "ol{margin:4px 0 0 0;padding-left:18px}",
    "li{margin:2px 0}",
    ".score{color:#666}",
    "form{display:flex;gap:6px;padding:10px;border-top:1px solid #dde3ea;background:#fff}",
    "textarea{flex:1;resize:none;height:40px;padding:8px;border:1px solid #c4ccd6;border-radius:8px;font-size:14px}",
    "form button{padding:0 14px;border:none;border-radius:8px;background:#0068b5;color:#fff;cursor:pointer}",
    "form button:disabled{background:#9ab}"
  ].join("");

  var ICON = '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true" fill="currentColor">' +
    '<path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 ' +
    '0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>';
  var host = document.createElement("div");
  host.id = "ovperf-widget";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" + css + "</style>" +
    '<button class="bubble" type="button" aria-label="Open the performance assistant" aria-expanded="false">' + ICON + '</button>' +
    '<section class="panel" role="dialog" aria-label="Performance assistant">' +
    '<div class="head"><h2></h2><button type="button" class="close" aria-label="Close">&times;</button></div>' +
    '<div class="log" aria-live="polite"><div class="hint">Ask about OpenVINO benchmark results, e.g. ' +
    '"How is latency measured?"</div></div>' +
    '<form><textarea name="q" rows="1" maxlength="2000" placeholder="Ask a question" aria-label="Question"></textarea>' +
    '<button type="submit">Send</button></form></section>';
  var bubble = root.querySelector(".bubble");
  var panel = root.querySelector(".panel");
  var log = root.querySelector(".log");
  var form = root.querySelector("form");
  var input = root.querySelector("textarea");
  var send = root.querySelector("form button");
  root.querySelector("h2").textContent = cfg.title;

  function open() {
    panel.classList.add("open");
    bubble.setAttribute("aria-expanded", "true");
    input.focus();
  }
  function close() {
    panel.classList.remove("open");
    bubble.setAttribute("aria-expanded", "false");
  }
  bubble.addEventListener("click", function () { panel.classList.contains("open") ? close() : open(); });
  root.querySelector(".close").addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : submit(e); }
  });
  form.addEventListener("submit", submit);

  function submit(e) {
    if (e) e.preventDefault();
    var q = input.value.trim();
    if (!q || busy) return;
    input.value = "";
    ask(q);
  }

  // -- Markdown, safe subset: DOM nodes and textContent only, never innerHTML -------------------------

  var BLOCK_START = /^\s*(>|[-*+]\s|\d+[.)]\s|```|#{1,6}\s)/;
  var INLINE = /\*\*([^*\n]+?)\*\*|`([^`\n]+)`|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()"']*[^\s<>()"'.,;:!?])/g;

  function el(tag, className) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function safeHref(url) {
    return /^https?:\/\//i.test(url) ? url : null;
  }

  function link(text, url) {
    var a = el("a");
    a.href = url;
    a.textContent = text;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    return a;
  }

  function appendInline(parent, text) {
    var pattern = new RegExp(INLINE.source, "g");  // its own position: bold text recurses
    var last = 0, match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      if (match[1] !== undefined) {
        var strong = el("strong");
        appendInline(strong, match[1]);
        parent.appendChild(strong);
      } else if (match[2] !== undefined) {
        var code = el("code");
        code.textContent = match[2];
        parent.appendChild(code);
      } else if (match[3] !== undefined) {
        var href = safeHref(match[4]);
        parent.appendChild(href ? link(match[3], href) : document.createTextNode(match[3]));
      } else {
        parent.appendChild(link(match[5], match[5]));
      }
      last = pattern.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function appendLines(parent, lines) {
    lines.forEach(function (line, i) {
      if (i) parent.appendChild(el("br"));
      appendInline(parent, line.trim());
    });
  }

  function cells(line) {
    return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map(function (c) { return c.trim(); });
  }

  function table(rows) {
    var t = el("table");
    rows.forEach(function (row, i) {
      if (i === 1) return;  // the |---|---| separator
      var tr = el("tr");
      cells(row).forEach(function (cell) {
        var td = el(i === 0 ? "th" : "td");
        appendInline(td, cell);
        tr.appendChild(td);
      });
      if (i === 0 && !tr.textContent.trim()) return;  // an empty header row
      t.appendChild(tr);
    });
    return t;
  }

  function renderMarkdown(text, depth) {
    var frag = document.createDocumentFragment();
    var lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
    var i = 0, block;
    function take(test) {
      var taken = [];
      while (i < lines.length && test(lines[i])) taken.push(lines[i++]);
      return taken;
    }
    while (i < lines.length) {
      var line = lines[i];
      if (!line.trim()) { i++; continue; }
      if (/^\s*>/.test(line) && (depth || 0) < 3) {
        block = el("blockquote");
        block.appendChild(renderMarkdown(take(function (l) { return /^\s*>/.test(l); })
          .map(function (l) { return l.replace(/^\s*> ?/, ""); }).join("\n"), (depth || 0) + 1));
      } else if (/^\s*([-*+]|\d+[.)])\s/.test(line)) {
        var ordered = /^\s*\d/.test(line);
        block = el(ordered ? "ol" : "ul");
        take(function (l) { return /^\s*([-*+]|\d+[.)])\s/.test(l) || (/^\s{2,}\S/.test(l)); })
          .forEach(function (l) {
            if (/^\s*([-*+]|\d+[.)])\s/.test(l) || !block.lastChild) {
              var li = el("li");
              appendInline(li, l.replace(/^\s*([-*+]|\d+[.)])\s+/, ""));
              block.appendChild(li);
            } else {
              block.lastChild.appendChild(document.createTextNode(" " + l.trim()));
            }
          });
      } else if (/^\s*```/.test(line)) {
        i++;
        block = el("pre");
        block.textContent = take(function (l) { return !/^\s*```/.test(l); }).join("\n");
        i++;
      } else if (/^\s*\|.*\|\s*$/.test(line) && /^\s*\|?\s*:?-{3,}/.test(lines[i + 1] || "")) {
        block = table(take(function (l) { return /^\s*\|.*\|\s*$/.test(l); }));
      } else if (/^\s*#{1,6}\s/.test(line)) {
        block = el("p");
        var heading = el("strong");
        appendInline(heading, line.replace(/^\s*#+\s+/, ""));
        block.appendChild(heading);
        i++;
      } else {
        block = el("p");
        var para = [lines[i++]];
        while (i < lines.length && lines[i].trim() && !BLOCK_START.test(lines[i]) &&
               !/^\s*\|.*\|\s*$/.test(lines[i])) para.push(lines[i++]);
        appendLines(block, para);
      }
      frag.appendChild(block);
    }
    return frag;
  }

  function showText(div, text) {
    var target = div.querySelector(".text");
    target.className = "text md";
    target.replaceChildren(renderMarkdown(text));
  }

  function addMessage(cls, text) {
    var div = document.createElement("div");
    div.className = "msg " + cls;
    var body = document.createElement("span");
    body.className = "text";
    body.textContent = text || "";
    div.appendChild(body);
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function showSources(div, sources) {
    if (!sources || !sources.length) return;
    var details = document.createElement("details");
    details.className = "sources";
    var summary = document.createElement("summary");
    summary.textContent = "Sources (" + sources.length + ")";
    details.appendChild(summary);
    var list = document.createElement("ol");
    sources.forEach(function (s) {
      var li = document.createElement("li");
      li.textContent = s.title + " ";
      var score = document.createElement("span");
      score.className = "score";
      score.textContent = s.match === "exact" ? "(exact catalog match)"
        : "(similarity " + Number(s.score).toFixed(2) + ")";
      li.appendChild(score);
      li.title = (s.text || "").slice(0, 400);
      list.appendChild(li);
    });
    details.appendChild(list);
    div.appendChild(details);
  }

  function headers() {
    var h = { "Content-Type": "application/json" };
    if (cfg.apiKey) h["Authorization"] = "Bearer " + cfg.apiKey;
    return h;
  }

  function fail(div, message) {
    div.classList.add("error");
    div.querySelector(".text").textContent = message;
  }

  async function errorMessage(response) {
    try {
      var data = await response.json();
      return (data.message || "request failed") + (data.hint ? " " + data.hint : "");
    } catch (_) {
      return "The assistant answered with HTTP " + response.status + ".";
    }
  }

  async function ask(question) {
    busy = true;
    send.disabled = true;
    open();
    addMessage("user", question);
    var div = addMessage("bot", "\u2026");
    var text = "";
    try {
      if (cfg.mode === "ask") {
        var r = await fetch(base + "/api/ask", {
          method: "POST", headers: headers(),
          body: JSON.stringify({ question: question, history: history.slice(-10) })
        });
        if (!r.ok) throw new Error(await errorMessage(r));
        var answer = await r.json();
        text = answer.answer;
        showText(div, text);
        showSources(div, answer.sources);
      } else {
        text = await streamAnswer(question, div);
      }
      history.push({ role: "user", content: question }, { role: "assistant", content: text });
    } catch (err) {
      fail(div, err && err.message ? err.message : String(err));
    } finally {
      busy = false;
      send.disabled = false;
      log.scrollTop = log.scrollHeight;
    }
  }

  async function streamAnswer(question, div) {
    var messages = history.slice(-10).concat([{ role: "user", content: question }]);
    var r = await fetch(base + "/v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ model: "ovperf-assistant", stream: true, messages: messages })
    });
    if (!r.ok) throw new Error(await errorMessage(r));
    var reader = r.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var text = "";
    for (;;) {
      var step = await reader.read();
      if (step.done) break;
      buffer += decoder.decode(step.value, { stream: true });
      var events = buffer.split("\n\n");
      buffer = events.pop();
      for (var i = 0; i < events.length; i++) {
        var line = events[i].split("\n").filter(function (l) { return l.indexOf("data:") === 0; })
          .map(function (l) { return l.slice(5).trim(); }).join("");
        if (!line || line === "[DONE]") continue;
        var chunk = JSON.parse(line);
        if (chunk.error) throw new Error(chunk.error.message || "the answer failed");
        if (chunk.choices && chunk.choices.length && chunk.choices[0].delta.content) {
          text += chunk.choices[0].delta.content;
          showText(div, text);
          log.scrollTop = log.scrollHeight;
        }
        if (chunk.sources) showSources(div, chunk.sources);
      }
    }
    return text;
  }

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
  window.OVPerfWidget = { open: open, close: close, ask: ask };
})();
