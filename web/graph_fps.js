// Playback fps of a video as the graph will write it: the first node downstream of `node` with an
// "fps" / "frame_rate" widget (core CreateVideo, VHS Video Combine), breadth-first along links.
import { app } from "../../scripts/app.js";

export const DEFAULT_FPS = 8; // the original VideoCrafter scripts save their videos at 8 fps
const FPS_WIDGET_NAMES = ["fps", "frame_rate"];
const MAX_VISITED = 64;

function linkById(graph, id) {
  const links = graph?.links;
  return typeof links?.get === "function" ? links.get(id) : links?.[id];
}

export function playbackFps(node) {
  const graph = node.graph ?? app.graph;
  const seen = new Set([node.id]);
  const queue = [node];
  while (queue.length && seen.size <= MAX_VISITED) {
    const current = queue.shift();
    for (const output of current.outputs ?? []) {
      for (const linkId of output.links ?? []) {
        const link = linkById(graph, linkId);
        const target = link ? graph.getNodeById(link.target_id) : null;
        if (!target || seen.has(target.id)) continue;
        seen.add(target.id);
        const widget = target.widgets?.find((w) => FPS_WIDGET_NAMES.includes(w.name) && Number(w.value) > 0);
        if (widget) return { fps: Number(widget.value), source: target };
        queue.push(target);
      }
    }
  }
  return { fps: DEFAULT_FPS, source: null };
}

export function formatNumber(value) {
  return String(Number(Number(value).toFixed(2)));
}
