// Bundles the UI into OUT (default dist/): app.js (minified, one file), app.css,
// index.html. The Rust server embeds these files.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2] ?? "dist";
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.jsx"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "none",
  outfile: join(out, "app.js"),
  logLevel: "warning",
});
copyFileSync("src/index.html", join(out, "index.html"));
copyFileSync("src/app.css", join(out, "app.css"));
