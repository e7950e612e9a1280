// VideoCrafter Suite frontend extension: colours the pack's nodes so graphs read at a glance.
import { registerOnce } from "./register_once.js";

const NODE_COLOR = "#2a3a4f";
const NODE_BGCOLOR = "#1f2a38";

registerOnce({
  name: "videocrafter-suite.appearance",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith("VideoCrafter")) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      this.color = NODE_COLOR;
      this.bgcolor = NODE_BGCOLOR;
      return result;
    };
  },
});
