// The Firehose page: follows /ws/firehose/ from a height, acknowledges what it shows (the
// server sends at most a window of unacknowledged bytes), and resumes from the last complete
// block after a reconnect, so the page never shows a block twice or skips one.
(function () {
  "use strict";
  const SHOWN_BLOCKS = 100; // older blocks leave the page; the stream itself keeps going
  const form = document.getElementById("firehose-form");
  const input = document.getElementById("firehose-from");
  const status = document.getElementById("firehose-status");
  const list = document.getElementById("firehose-blocks");
  let socket = null;
  let nextHeight = null; // everything before it is shown
  let stopped = false;
  let retryDelay = 1000;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function payloadPreview(base64) {
    const bytes = atob(base64);
    let hex = "";
    for (let i = 0; i < Math.min(bytes.length, 24); i += 1) {
      hex += bytes.charCodeAt(i).toString(16).padStart(2, "0");
    }
    return `${bytes.length} B ${hex}${bytes.length > 24 ? "…" : ""}`;
  }

  function observationRows(tbody, observations) {
    for (const item of observations) {
      const row = element("tr");
      row.appendChild(element("td", String(item.index)));
      row.appendChild(element("td", item.kind));
      const hash = element("td");
      hash.appendChild(element("code", item.leaf_hash.slice(0, 16) + "…"));
      hash.title = item.leaf_hash;
      row.appendChild(hash);
      const payload = element("td");
      payload.appendChild(element("code", payloadPreview(item.payload)));
      row.appendChild(payload);
      tbody.appendChild(row);
    }
  }

  function showBlock(message) {
    // A block resumed in the middle of its parts is sent again from its start: replace it.
    const earlier = document.getElementById(`firehose-block-${message.height}`);
    if (earlier) earlier.remove();
    const article = element("article", undefined, "firehose-block");
    article.id = `firehose-block-${message.height}`;
    article.dataset.height = String(message.height);
    article.dataset.complete = String(message.complete);
    const anchor = message.anchor ? `anchor ${message.anchor.status}` : "not anchored yet";
    article.appendChild(element("h2", `Block ${message.height}`));
    const header = element("p", undefined, "lead");
    header.appendChild(element("span", `${message.tree_size} observations · ${message.signatures.length} signatures · ${anchor} · root `));
    const root = element("code", message.root.slice(0, 16) + "…");
    root.title = message.root;
    header.appendChild(root);
    article.appendChild(header);
    const table = element("table", undefined, "table");
    const head = element("thead");
    const headRow = element("tr");
    for (const title of ["Index", "Kind", "Leaf hash", "Payload"]) headRow.appendChild(element("th", title));
    head.appendChild(headRow);
    table.appendChild(head);
    const tbody = element("tbody");
    observationRows(tbody, message.observations);
    table.appendChild(tbody);
    article.appendChild(table);
    list.prepend(article);
    while (list.children.length > SHOWN_BLOCKS) list.lastElementChild.remove();
  }

  function moreObservations(message) {
    const article = document.getElementById(`firehose-block-${message.height}`);
    if (!article) return;
    observationRows(article.querySelector("tbody"), message.observations);
    article.dataset.complete = String(message.complete);
  }

  function follow(from) {
    if (socket) {
      stopped = true;
      socket.close();
    }
    stopped = false;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/ws/firehose/?from=${encodeURIComponent(from)}`);
    socket = ws;
    setStatus("connecting", `Connecting from height ${from}…`);
    ws.onopen = () => {
      retryDelay = 1000;
      setStatus("live", `Following from height ${from}`);
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "error") {
        stopped = true;
        setStatus("error", message.error.message);
        return;
      }
      if (message.type === "block") showBlock(message);
      else if (message.type === "observations") moreObservations(message);
      if (message.next_height !== undefined) {
        if (message.type !== "heartbeat" || nextHeight === null) nextHeight = message.next_height;
        ws.send(JSON.stringify({ type: "ack", next_height: message.next_height }));
        setStatus("live", `Live · next height ${nextHeight}`);
      }
    };
    ws.onclose = (event) => {
      if (socket !== ws || stopped) return;
      if (event.code === 4403) {
        setStatus("error", "Your role does not allow following the firehose.");
        return;
      }
      // Resume from the last complete block: no gap, no block twice.
      const resume = nextHeight === null ? from : nextHeight;
      retryDelay = Math.min(retryDelay * 2, 30000); // a node that is down is not hammered
      setStatus("reconnecting", `Disconnected; resuming from height ${resume} in ${retryDelay / 1000} s…`);
      setTimeout(() => { if (socket === ws) follow(resume); }, retryDelay);
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const from = input.value.trim();
    list.replaceChildren();
    nextHeight = null;
    follow(from);
  });
  follow(input.value.trim());
})();
