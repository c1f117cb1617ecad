// Times clan ui on a generated clan: the server's answer for the machine list
// (GET /api/clan, median of 20 after the first), the time from navigation to the
// overview showing every machine in headless Chromium (median of 5, over WebDriver
// with plain HTTP), the bundle's gzipped size, and clan ui's RSS.
// Usage: node bench/ui.mjs CLAN_BINARY CLAN_DIR MACHINES
import { spawn } from "node:child_process";
import { readFileSync, mkdtempSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";

const [clan, dir, machines] = process.argv.slice(2);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const freePort = () =>
  new Promise((ok) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;

const uiPort = await freePort();
const ui = spawn(clan, ["--dir", dir, "ui", "--no-open", "--listen", `127.0.0.1:${uiPort}`], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((ok) => ui.stdout.on("data", (d) => { const m = /(http:\/\/\S+)/.exec(String(d)); if (m) ok(m[1]); }));
const base = `http://127.0.0.1:${uiPort}`;
const idle = rss(ui.pid);

// The API: the cookie as a browser would hold it.
const token = new URL(url).searchParams.get("token");
const headers = { cookie: `clan_ui=${token}` };
const timeGet = async (path) => {
  const t = performance.now();
  const r = await fetch(base + path, { headers });
  await r.arrayBuffer();
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return performance.now() - t;
};
const first = await timeGet("/api/clan");
const warm = [];
for (let i = 0; i < 20; i++) warm.push(await timeGet("/api/clan"));
const js = Buffer.from(await (await fetch(base + "/app.js", { headers })).arrayBuffer());

// The browser, through chromedriver.
const driverPort = await freePort();
const driver = spawn("chromedriver", [`--port=${driverPort}`], { stdio: "ignore" });
const wd = async (method, path, body) => {
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${driverPort}${path}`, {
        method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body),
      });
      const v = await r.json();
      if (!r.ok) throw new Error(JSON.stringify(v));
      return v.value;
    } catch (e) {
      if (i > 100 || !String(e).includes("fetch failed")) throw e;
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }
};
const session = await wd("POST", "/session", { capabilities: { alwaysMatch: { "goog:chromeOptions": { args: [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,800",
  `--user-data-dir=${mkdtempSync(join(tmpdir(), "clan-ui-bench-"))}`,
] } } } });
const s = `/session/${session.sessionId}`;
await wd("POST", `${s}/url`, { url });
const render = [];
for (let i = 0; i < 5; i++) {
  await wd("POST", `${s}/url`, { url: `${base}/?run=${i}#/` });
  const ms = await wd("POST", `${s}/execute/async`, { args: [Number(machines)], script: `
    const [n, done] = arguments;
    const check = () => document.querySelectorAll("[data-testid=machine-card]").length >= n
      ? done(performance.now()) : requestAnimationFrame(check);
    check();` });
  render.push(ms);
}
const loaded = rss(ui.pid);
await wd("DELETE", s);
driver.kill();
ui.kill();
console.log(JSON.stringify({
  machines: Number(machines),
  apiClanFirstMs: Math.round(first), apiClanMs: Number(median(warm).toFixed(1)),
  overviewRenderedMs: Math.round(median(render)), bundleGzipKB: Math.round(gzipSync(js, { level: 9 }).length / 1024),
  rssIdleMiB: Number(idle.toFixed(1)), rssAfterMiB: Number(loaded.toFixed(1)),
}));
