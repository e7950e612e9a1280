// Animated latent preview: the whole clip, looping, on the sampler node, replaced every step.
//
// The server (bridge/preview.py) sends each step's frames as one contact-sheet JPEG in the JSON
// event "videocrafter-suite.preview" — only to clients that asked for it on
// POST /videocrafter-suite/preview, which this extension does for its websocket client id while
// the setting "Animated clip previews" is on. Off (or without this extension) core's usual
// single-frame preview is shown instead. Works with any sampler: the server hooks core's previewer.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { registerOnce } from "./register_once.js";
import { playbackFps } from "./graph_fps.js";

const EVENT = "videocrafter-suite.preview";
const ROUTE = "/videocrafter-suite/preview";
const SETTING = "VideoCrafterSuite.Preview.Animated";
const WIDGET = "videocrafter_clip_preview";

function animatedSetting() {
  const value = app.extensionManager?.setting?.get?.(SETTING) ?? app.ui?.settings?.getSettingValue?.(SETTING);
  return value !== false;
}

let announced = null; // "<client id>:<bool>" the server last accepted
async function announce() {
  const clientId = api.clientId;
  if (!clientId) return;
  const animated = animatedSetting();
  const key = `${clientId}:${animated}`;
  if (key === announced) return;
  announced = key;
  try {
    const reply = await api.fetchApi(ROUTE, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ client_id: clientId, animated }),
    });
    if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
  } catch (error) {
    announced = null;
    console.warn(`[videocrafter-suite] animated previews unavailable: ${error?.message ?? error}`);
  }
}

function nodeOf(id) {
  if (id === null || id === undefined) return null;
  return app.graph?.getNodeById(id) ?? app.graph?.getNodeById(String(id).split(":")[0]) ?? null;
}

function decodeBase64(text, type) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}

// One looping player per node: a canvas that shows frame k of the latest contact sheet.
class ClipPlayer {
  constructor(node) {
    this.node = node;
    this.sheet = null;
    this.layout = null;
    this.frame = 0;
    this.timer = null;
    this.element = document.createElement("div");
    this.element.className = "videocrafter-clip-preview";
    Object.assign(this.element.style, { width: "100%", height: "100%", display: "flex" });
    this.canvas = document.createElement("canvas");
    Object.assign(this.canvas.style, { width: "100%", height: "100%", objectFit: "contain", pointerEvents: "none" });
    this.element.appendChild(this.canvas);
    this.element.dataset.updates = "0";
    this.element.dataset.shown = "";
    this.widget = node.addDOMWidget(WIDGET, "videocrafter-clip", this.element, {
      serialize: false, hideOnZoom: false, getMinHeight: () => 160,
    });
    this.widget.serialize = false;
    const [width, height] = node.size;
    node.setSize([Math.max(width, 320), Math.max(height, node.computeSize()[1])]);
  }

  async show(detail) {
    const blob = decodeBase64(detail.image, detail.mime || "image/jpeg");
    const sheet = await createImageBitmap(blob);
    this.sheet?.close?.();
    this.sheet = sheet;
    this.layout = detail;
    this.canvas.width = detail.frame_width;
    this.canvas.height = detail.frame_height;
    const { fps } = playbackFps(this.node);
    Object.assign(this.element.dataset, {
      updates: String(Number(this.element.dataset.updates) + 1), frames: String(detail.frames), fps: String(fps),
      sequence: String(detail.sequence), promptId: String(detail.prompt_id ?? ""),
    });
    this.frame %= detail.frames;
    this.draw();
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), 1000 / fps);
    this.node.setDirtyCanvas?.(true, true);
  }

  tick() {
    if (!this.element.isConnected && !this.node.graph) return this.stop();
    this.frame = (this.frame + 1) % this.layout.frames;
    this.draw();
  }

  draw() {
    const { frame_width: w, frame_height: h, columns } = this.layout;
    const context = this.canvas.getContext("2d");
    context.drawImage(this.sheet, (this.frame % columns) * w, Math.floor(this.frame / columns) * h, w, h, 0, 0, w, h);
    this.element.dataset.frame = String(this.frame);
    this.element.dataset.shown = `${this.element.dataset.shown},${this.frame}`.slice(-400);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

const players = new Map(); // node → ClipPlayer

function playerFor(node) {
  let player = players.get(node);
  if (!player || !node.widgets?.includes(player.widget)) {
    player?.stop();
    player = new ClipPlayer(node);
    players.set(node, player);
  }
  return player;
}

registerOnce({
  name: "videocrafter-suite.preview",
  settings: [{
    id: SETTING,
    category: ["VideoCrafter Suite", "Preview", "Animated"],
    name: "Animated clip previews while sampling (all frames, looping)",
    tooltip: "Off: ComfyUI's usual single-frame preview. Needs a preview method (--preview-method auto).",
    type: "boolean",
    defaultValue: true,
    onChange: () => announce(),
  }],
  async setup() {
    api.addEventListener(EVENT, ({ detail }) => {
      const node = nodeOf(detail?.node);
      if (!node || typeof node.addDOMWidget !== "function") return;
      playerFor(node).show(detail).catch((error) => console.warn(`[videocrafter-suite] preview: ${error}`));
    });
    api.addEventListener("status", () => announce()); // the client id arrives (or changes) with a status
    api.addEventListener("reconnected", () => {
      announced = null; // a restarted server has forgotten; the client id may be the same
      announce();
    });
    await announce();
  },
});
