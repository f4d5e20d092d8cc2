// Builds the studio page into chalicelib/studio/static/ (package data; not committed):
// src/main.js bundled and minified by esbuild, with index.html and studio.css beside it.
// `make studio` writes gen/pss-tokens.json from the grammar first.
import { build } from "esbuild";
import { copyFile, mkdir, readFile, rm, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = here("../chalicelib/studio/static/");

await stat(here("gen/pss-tokens.json")).catch(() => {
  throw new Error("gen/pss-tokens.json is missing: run `make studio`, which writes it from the grammar");
});
// CSP `default-src 'self'` refuses <style> elements. style-mod (CodeMirror's CSS injector)
// uses a constructed stylesheet (which CSP allows) only inside shadow roots and a <style>
// element in documents, a choice dating from browsers without document-level
// adoptedStyleSheets. At bundle time it is told to use the constructed stylesheet in
// documents too; the build fails if style-mod's code no longer reads as expected.
const STYLE_MOD_TEST = "if (!root.head && root.adoptedStyleSheets && win.CSSStyleSheet) {";
const constructedStyles = {
  name: "constructed-styles",
  setup(b) {
    b.onLoad({ filter: /style-mod[\\/]src[\\/]style-mod\.js$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      if (!source.includes(STYLE_MOD_TEST)) {
        throw new Error(`style-mod changed: cannot find ${STYLE_MOD_TEST} in ${args.path}`);
      }
      return { contents: source.replace(STYLE_MOD_TEST, "if (root.adoptedStyleSheets && win.CSSStyleSheet) {"), loader: "js" };
    });
  },
};

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: [here("src/main.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome111", "firefox113", "safari16.4"],
  outfile: `${out}studio.js`,
  legalComments: "eof",
  metafile: true,
  plugins: [constructedStyles],
  logLevel: "warning",
});
await copyFile(here("index.html"), `${out}index.html`);
await copyFile(here("studio.css"), `${out}studio.css`);
await copyFile(here("favicon.svg"), `${out}favicon.svg`);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`studio: built chalicelib/studio/static/studio.js (${(bytes / 1024).toFixed(1)} KiB)`);
