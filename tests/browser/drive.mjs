// Drive the real ComfyUI frontend in headless Chromium (playwright-core) and report what it did.
//
//   node tests/browser/drive.mjs JOB.json > result.json
//
// JOB (JSON):
//   url           ComfyUI's address, e.g. "http://127.0.0.1:8188"
//   chromium      Chromium binary (default /usr/bin/chromium)
//   node_dir      folder whose node_modules holds playwright-core
//                 (default $VIDEOCRAFTER_SUITE_CACHE/node or ~/.cache/videocrafter-suite/node)
//   out_dir       where screenshots go (created)
//   settings      {id: value} user settings POSTed before the page opens (default: skip the
//                 first-run template browser, validate workflows, draw full detail at any zoom)
//   viewport      {width, height} (default 2400x1000: the example graphs fit at a readable zoom)
//   timeout_ms    per step (default 60000); queue_timeout_ms for a queued prompt (default 600000)
//   workflows     [{name, path | graph, queue?: bool, screenshot?: "file.png", before_js?, probe_js?, shots?}]
//                 before_js / probe_js: the body of an async function run in the page (argument
//                 `app`) before the load / after the load (and the queued prompt, if any); what
//                 probe_js returns is the workflow's `probe`. shots: [{file, delay_ms, clip?}] taken
//                 after the probe, in order; clip is {x, y, width, height} or the name of a rect in
//                 probe.rects (page pixels).
//
// For each workflow, in order: app.loadGraphData(graph) → missing node types (the frontend's own
// rule: type not in LiteGraph.registered_node_types), nodes flagged has_errors, dialogs and toasts
// the load opened, console warnings/errors and page errors during the load → app.graphToPrompt()
// (the API graph and the UI workflow it serialises) → optionally app.queuePrompt(0) (its return
// value is not trusted: the prompt_id is read from the POST /api/prompt response, then /history
// is polled until the prompt ended) → optionally a PNG screenshot. Prints one JSON object on
// stdout; everything the page logged is in it (console, page_errors, failed_requests), so the
// caller decides what counts as a failure. Exit code 0 unless the driver itself failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const started = Date.now();
const since = () => Date.now() - started;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function fail(message) {
  process.stderr.write(`drive.mjs: ${message}\n`);
  process.exit(2);
}

if (process.argv.length < 3) fail('usage: node drive.mjs JOB.json');
const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const cache = process.env.VIDEOCRAFTER_SUITE_CACHE || path.join(os.homedir(), '.cache', 'videocrafter-suite');
const nodeDir = job.node_dir || path.join(cache, 'node');
let chromium;
try {
  ({ chromium } = createRequire(path.join(nodeDir, 'package.json'))('playwright-core'));
} catch (error) {
  fail(`playwright-core not found under ${nodeDir}/node_modules (run scripts/install_browser_deps.sh): ${error.message}`);
}

const url = job.url.replace(/\/+$/, '');
const timeout = job.timeout_ms ?? 60000;
const outDir = job.out_dir || fs.mkdtempSync(path.join(os.tmpdir(), 'vcs-browser-'));
fs.mkdirSync(outDir, { recursive: true });
const settings = job.settings ?? {
  'Comfy.TutorialCompleted': true,            // no template browser on first load
  'Comfy.Validation.Workflows': true,         // the frontend's zod schema check runs on load
  'Comfy.Workflow.ShowMissingNodesWarning': true,
  'LiteGraph.Canvas.MinFontSizeForLOD': 1,    // full detail in screenshots, even zoomed out
};

const result = {
  url, out_dir: outDir, frontend_version: null, ready_ms: null, extensions: [], registered_node_types: [],
  extension_scripts: [], console: [], page_errors: [], failed_requests: [], workflows: [], timings_ms: {},
};

// ---- settings first: they decide what the app shows on its first load -------------------------
for (const [id, value] of Object.entries(settings)) {
  const reply = await fetch(`${url}/api/settings/${encodeURIComponent(id)}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value),
  });
  if (!reply.ok) fail(`POST /api/settings/${id} -> ${reply.status}`);
}

const browser = await chromium.launch({
  executablePath: job.chromium || '/usr/bin/chromium',
  headless: true,
  timeout,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
result.timings_ms.launch = since();
try {
  const viewport = job.viewport ?? { width: 2400, height: 1000 };
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(timeout);
  let phase = 'startup';
  page.on('console', (message) => {
    const location = message.location() || {};
    result.console.push({ phase, type: message.type(), text: message.text(), url: location.url || '' });
  });
  page.on('pageerror', (error) => {
    result.page_errors.push({ phase, message: String(error.message), stack: String(error.stack || '') });
  });
  page.on('requestfailed', (request) => {
    result.failed_requests.push({ phase, url: request.url(), error: request.failure()?.errorText || '' });
  });
  const prompts = [];
  page.on('response', async (response) => {
    const responseUrl = response.url();
    if (responseUrl.includes('/extensions/')) {
      result.extension_scripts.push({ url: responseUrl, status: response.status() });
    }
    if (response.request().method() === 'POST' && /\/api\/prompt$|\/prompt$/.test(new URL(responseUrl).pathname)) {
      let body = null;
      try { body = await response.json(); } catch { body = await response.text().catch(() => null); }
      prompts.push({ status: response.status(), body });
    }
  });

  await page.goto(`${url}/`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.app && window.app.graph && window.app.canvas && window.LiteGraph
    && Object.keys(window.LiteGraph.registered_node_types || {}).length > 0, null, { timeout });
  await sleep(1000); // extensions' setup() and the first canvas draw settle
  result.ready_ms = since();
  Object.assign(result, await page.evaluate(() => ({
    frontend_version: window.__COMFYUI_FRONTEND_VERSION__ ?? null,
    extensions: window.app.extensions.map((extension) => extension.name),
    registered_node_types: Object.keys(window.LiteGraph.registered_node_types),
  })));

  for (const spec of job.workflows || []) {
    const name = spec.name || path.basename(spec.path || 'workflow', '.json');
    const graph = spec.graph ?? JSON.parse(fs.readFileSync(spec.path, 'utf8'));
    phase = `load:${name}`;
    const consoleBefore = result.console.length;
    const runInPage = (body) => page.evaluate(async (source) => {
      const fn = new Function('app', `return (async () => {${source}\n})();`);
      try { return await fn(window.app); } catch (error) { return { error: `${error?.message ?? error}\n${error?.stack ?? ''}` }; }
    }, body);
    const before = spec.before_js ? await runInPage(spec.before_js) : null;
    const errorsBefore = result.page_errors.length;
    const t0 = Date.now();
    const loaded = await page.evaluate(async (data) => {
      const visibleText = (selector) => [...document.querySelectorAll(selector)]
        .filter((element) => element.offsetParent !== null || element.getClientRects().length)
        .map((element) => element.innerText.trim()).filter(Boolean);
      const registered = window.LiteGraph.registered_node_types;
      const missing = (data.nodes || []).filter((node) => !(node.type in registered)).map((node) => node.type);
      let loadError = null;
      try {
        await window.app.loadGraphData(data);
      } catch (error) {
        loadError = `${error?.message ?? error}\n${error?.stack ?? ''}`;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      const nodes = window.app.graph.nodes;
      const report = {
        load_error: loadError,
        missing_node_types: missing,
        error_nodes: nodes.filter((node) => node.has_errors).map((node) => ({ id: node.id, type: node.type })),
        dialogs: visibleText('.p-dialog'),
        toasts: visibleText('.p-toast-message'),
        nodes: nodes.map((node) => ({
          id: node.id, type: node.type, title: node.title, color: node.color ?? null, bgcolor: node.bgcolor ?? null,
          size: [node.size[0], node.size[1]],
          widgets: (node.widgets || []).map((widget) => ({ name: widget.name, type: widget.type, value: widget.value })),
          inputs: (node.inputs || []).map((input) => ({ name: input.name, type: input.type, link: input.link,
                                                        widget: input.widget?.name ?? null })),
        })),
      };
      try {
        const prompt = await window.app.graphToPrompt();
        report.prompt = prompt.output;
        report.serialized = prompt.workflow;
      } catch (error) {
        report.prompt_error = `${error?.message ?? error}\n${error?.stack ?? ''}`;
      }
      return report;
    }, graph);
    loaded.name = name;
    loaded.before = before;
    loaded.load_ms = Date.now() - t0;
    loaded.console = result.console.slice(consoleBefore).filter((m) => m.type === 'error' || m.type === 'warning');
    loaded.page_errors = result.page_errors.slice(errorsBefore);
    // close whatever the load opened, so the screenshot (and the next load) sees the canvas
    for (let i = 0; i < 3 && (loaded.dialogs.length || loaded.toasts.length); i++) await page.keyboard.press('Escape');

    if (spec.queue) {
      phase = `queue:${name}`;
      const before = prompts.length;
      const q0 = Date.now();
      loaded.queue = { returned: await page.evaluate(async () => {
        try { return await window.app.queuePrompt(0); } catch (error) { return `threw: ${error?.message ?? error}`; }
      }) };
      while (prompts.length === before && Date.now() - q0 < timeout) await sleep(100);
      const posted = prompts[before];
      loaded.queue.response = posted ?? null;
      const promptId = posted?.body?.prompt_id;
      loaded.queue.prompt_id = promptId ?? null;
      if (promptId) {
        const deadline = Date.now() + (job.queue_timeout_ms ?? 600000);
        while (Date.now() < deadline) {
          const entry = await page.evaluate(async (id) => (await (await fetch(`/api/history/${id}`)).json())[id] ?? null,
                                            promptId);
          if (entry && entry.status && (entry.status.completed || entry.status.status_str === 'error')) {
            loaded.queue.status = entry.status.status_str;
            break;
          }
          await sleep(500);
        }
        loaded.queue.ms = Date.now() - q0;
        await sleep(1500); // let the UI draw the executed outputs before the screenshot
      }
    }
    if (spec.probe_js) {
      phase = `probe:${name}`;
      loaded.probe = await runInPage(spec.probe_js);
    }
    loaded.shots = [];
    for (const shot of spec.shots || []) {
      phase = `shots:${name}`;
      await sleep(shot.delay_ms ?? 0);
      const clip = typeof shot.clip === 'string' ? loaded.probe?.rects?.[shot.clip] : shot.clip;
      const file = path.join(outDir, shot.file);
      await page.screenshot({ path: file, ...(clip ? { clip } : {}) });
      loaded.shots.push({ file, clip: clip ?? null, at_ms: since() });
    }
    if (spec.screenshot) {
      phase = `screenshot:${name}`;
      const file = path.join(outDir, spec.screenshot);
      await page.screenshot({ path: file });
      loaded.screenshot = file;
    }
    result.workflows.push(loaded);
  }
  phase = 'end';
} finally {
  await browser.close();
}
result.timings_ms.total = since();
process.stdout.write(JSON.stringify(result) + '\n');
