// A readout on the video-latent node: "16 frames @ 8 fps = 2.0 s".
//
// Frames come from the node's own widget; fps from the first fps widget downstream (the video the
// graph writes, e.g. core CreateVideo), or the original's 8 fps when none is linked (the tooltip
// says which). Refreshed whenever the canvas draws the node, so edits anywhere show at once.
import { registerOnce } from "./register_once.js";
import { formatNumber, playbackFps } from "./graph_fps.js";

const NODE_TYPE = "VideoCrafterEmptyVideoLatent";
const WIDGET = "videocrafter_readout";

export function readoutText(frames, fps) {
  const count = Math.max(0, Math.round(Number(frames) || 0));
  return `${count} frame${count === 1 ? "" : "s"} @ ${formatNumber(fps)} fps = ${(count / fps).toFixed(1)} s`;
}

function refresh(node, element) {
  const frames = node.widgets?.find((w) => w.name === "frames")?.value;
  const { fps, source } = playbackFps(node);
  const text = readoutText(frames, fps);
  if (element.textContent !== text) element.textContent = text;
  const title = source
    ? `playback fps from "${source.title}" (node ${source.id})`
    : "no fps widget downstream (CreateVideo / Video Combine): the original's 8 fps assumed";
  if (element.title !== title) element.title = title;
  element.dataset.frames = String(frames);
  element.dataset.fps = String(fps);
  element.dataset.fpsSource = source ? String(source.id) : "";
}

// A node loaded from a workflow keeps its saved size; grow it so the readout has its row.
function fitHeight(node) {
  const [, height] = node.computeSize();
  if (node.size[1] < height) node.setSize([node.size[0], height]);
}

function addReadout(node) {
  if (typeof node.addDOMWidget !== "function") return; // a frontend without DOM widgets: no readout
  const element = document.createElement("div");
  element.className = "videocrafter-readout";
  Object.assign(element.style, {
    font: "12px sans-serif", color: "#c9d6e3", textAlign: "center", lineHeight: "20px",
    whiteSpace: "nowrap", overflow: "hidden", pointerEvents: "none",
  });
  const widget = node.addDOMWidget(WIDGET, "videocrafter-readout", element, {
    serialize: false, hideOnZoom: false, margin: 4, getMinHeight: () => 28, getMaxHeight: () => 28,
    onDraw: () => refresh(node, element),
  });
  widget.serialize = false; // not a value: never in widgets_values nor in the API prompt
  node.videocrafterRefreshReadout = () => {
    fitHeight(node);
    refresh(node, element);
  };
  const frames = node.widgets?.find((w) => w.name === "frames");
  if (frames) {
    const callback = frames.callback;
    frames.callback = function () {
      const result = callback?.apply(this, arguments);
      refresh(node, element);
      return result;
    };
  }
  refresh(node, element);
}

registerOnce({
  name: "videocrafter-suite.readout",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_TYPE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      addReadout(this);
      return result;
    };
    // also refreshed when the node is not drawn: after a graph loads and when its links change
    for (const hook of ["onAfterGraphConfigured", "onConnectionsChange"]) {
      const previous = nodeType.prototype[hook];
      nodeType.prototype[hook] = function () {
        const result = previous?.apply(this, arguments);
        this.videocrafterRefreshReadout?.();
        return result;
      };
    }
  },
});
