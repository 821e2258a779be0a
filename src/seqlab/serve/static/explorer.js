// The explorer page: stream samples from /api/generate, then draw /api/inspect on a canvas. No libraries.
"use strict";

const byId = (id) => document.getElementById(id);
let controller = null;   // aborts the running generation (Stop, a new Generate, or closing the tab)
let inspection = null;   // the last /api/inspect answer
let view = "trajectory";

async function showModel() {
  const info = await (await fetch("/api/info")).json();
  byId("model").textContent = `${info.backbone} · ${info.task} · vocabulary ${info.vocab_size}`;
}

function shade(probability) {
  // likely tokens pale, unlikely ones strong: the surprise shows
  return `rgba(230, 120, 30, ${(0.85 * (1 - probability)).toFixed(3)})`;
}

function addToken(sample, text, probability) {
  const span = document.createElement("span");
  span.className = "token";
  span.textContent = text;
  span.style.background = shade(probability);
  span.title = `p = ${probability}`;
  byId(`sample-${sample}`).appendChild(span);
}

function parameters() {
  const query = new URLSearchParams({ prompt: byId("prompt").value });
  for (const name of ["temperature", "top_k", "top_p", "num_samples", "max_tokens", "seed"]) {
    query.set(name, byId(name).value);
  }
  return query;
}

async function generate() {
  if (controller) controller.abort();
  controller = new AbortController();
  const query = parameters();
  byId("message").textContent = "";
  byId("samples").replaceChildren();
  for (let sample = 0; sample < Number(query.get("num_samples")); sample++) {
    const box = document.createElement("div");
    box.className = "sample";
    box.id = `sample-${sample}`;
    const prompt = document.createElement("span");
    prompt.className = "prompt";
    prompt.textContent = query.get("prompt");
    box.appendChild(prompt);
    byId("samples").appendChild(box);
  }
  byId("stop").disabled = false;
  try {
    const response = await fetch(`/api/generate?${query}`, { signal: controller.signal });
    if (!response.ok) {
      byId("message").textContent = (await response.json()).error;
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {   // one server-sent event per blank-line-ended block
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.startsWith("event: done")) {
          await inspect();
          continue;
        }
        const data = block.split("\n").find((line) => line.startsWith("data: "));
        if (data) {
          const event = JSON.parse(data.slice(6));
          addToken(event.sample, event.token, event.probability);
        }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") byId("message").textContent = String(error);
  } finally {
    byId("stop").disabled = true;
  }
}

async function inspect() {
  const text = byId("sample-0").textContent;
  const response = await fetch(`/api/inspect?${new URLSearchParams({ text })}`);
  const answer = await response.json();
  if (!response.ok) {
    byId("view-note").textContent = answer.error;
    return;
  }
  inspection = answer;
  draw();
}

function colour(fraction) {
  return `hsl(${Math.round(240 - 240 * fraction)}, 70%, 45%)`;
}

function note(context, canvas, text) {
  context.fillStyle = "#666";
  context.font = "16px sans-serif";
  context.fillText(text, 20, canvas.height / 2);
}

function drawTrajectory(context, canvas) {
  const points = inspection.trajectory;
  const xs = points.map((point) => point[0]);
  const ys = points.map((point) => point[1]);
  const [left, right, bottom, top] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const margin = 30;
  const x = (value) => margin + (value - left) / (right - left || 1) * (canvas.width - 2 * margin);
  const y = (value) => canvas.height - margin - (value - bottom) / (top - bottom || 1) * (canvas.height - 2 * margin);
  context.strokeStyle = "#bbb";
  context.beginPath();
  points.forEach((point, index) => (index ? context.lineTo : context.moveTo).call(context, x(point[0]), y(point[1])));
  context.stroke();
  context.font = "11px monospace";
  points.forEach((point, index) => {
    context.fillStyle = colour(index / Math.max(1, points.length - 1));
    context.beginPath();
    context.arc(x(point[0]), y(point[1]), 3, 0, 2 * Math.PI);
    context.fill();
    if (index % Math.ceil(points.length / 40) === 0) {
      context.fillText(JSON.stringify(inspection.tokens[index]).slice(1, -1), x(point[0]) + 4, y(point[1]) - 4);
    }
  });
  context.fillStyle = "#333";
  const [first, second] = inspection.explained.map((share) => Math.round(100 * share));
  context.fillText(`hidden state on its top two principal components (${first}% and ${second}% of its variance); blue first, red last`, 10, 14);
}

function drawGates(context, canvas) {
  if (!inspection.gates) return note(context, canvas, "this backbone has no gates");
  const layer = inspection.gates[inspection.gates.length - 1];
  const names = Object.keys(layer);
  const margin = 30;
  const length = layer[names[0]].length;
  const x = (index) => margin + index / Math.max(1, length - 1) * (canvas.width - 2 * margin);
  const y = (value) => canvas.height - margin - value * (canvas.height - 2 * margin);
  names.forEach((name, number) => {
    context.strokeStyle = colour(number / Math.max(1, names.length - 1));
    context.beginPath();
    layer[name].forEach((value, index) => (index ? context.lineTo : context.moveTo).call(context, x(index), y(value)));
    context.stroke();
    context.fillStyle = context.strokeStyle;
    context.fillText(name, canvas.width - margin - 60, 20 + 14 * number);
  });
  context.fillStyle = "#333";
  context.fillText("last layer: each gate's mean over units at every position (0 at the bottom, 1 at the top)", 10, 14);
}

function drawAttention(context, canvas) {
  if (!inspection.attention) return note(context, canvas, "this backbone has no attention maps");
  const map = inspection.attention[inspection.attention.length - 1];
  const size = Math.min(canvas.width, canvas.height) - 40;
  const cell = size / map.length;
  map.forEach((row, query) => row.forEach((weight, key) => {
    context.fillStyle = `rgba(30, 60, 160, ${weight})`;
    context.fillRect(20 + key * cell, 20 + query * cell, Math.ceil(cell), Math.ceil(cell));
  }));
  context.fillStyle = "#333";
  context.fillText("last layer, heads averaged: queries down, keys across", size + 30, 30);
}

function draw() {
  const canvas = byId("figure");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!inspection) return;
  byId("view-note").textContent = `${inspection.tokens.length} tokens read`;
  ({ trajectory: drawTrajectory, gates: drawGates, attention: drawAttention })[view](context, canvas);
  document.body.dataset.drawn = view;   // what the canvas shows now
}

for (const button of document.querySelectorAll("#tabs button")) {
  button.addEventListener("click", () => {
    document.querySelectorAll("#tabs button").forEach((other) => other.classList.toggle("active", other === button));
    view = button.dataset.view;
    draw();
  });
}
byId("generate").addEventListener("click", generate);
byId("stop").addEventListener("click", () => controller && controller.abort());
showModel();
