#!/usr/bin/env node
// Bundles the three Lambda handlers as the SluicePipeline construct does (esbuild: ESM, node22,
// the require banner, the pipeline aliased, msgpackr-extract external, not minified), then prints
// each bundle's size and the CPU time of loading it in a fresh Node process (median of 7 cold
// imports; CPU time rather than wall time, which a busy machine blurs).
// Used to decide on Powertools for the functions' logs and metrics (docs/DEPLOY.md).
//   node scripts/measure-function-bundles.mjs [pipeline module]   (default examples/wordcount.ts)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const pipeline = path.resolve(process.argv[2] ?? path.join(root, 'examples/wordcount.ts'));
const out = mkdtempSync(path.join(tmpdir(), 'sluice-bundles-'));
const banner =
  "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);";
try {
  for (const name of ['scheduler', 'partition', 'recovery']) {
    const file = path.join(out, `${name}.mjs`);
    await build({
      entryPoints: [path.join(root, 'functions', `${name}.ts`)],
      outfile: file,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      mainFields: ['module', 'main'],
      banner: { js: banner },
      external: ['msgpackr-extract'],
      alias: { 'sluice-pipeline': pipeline },
      logLevel: 'warning',
    });
    const times = [];
    for (let i = 0; i < 7; i++) {
      const ms = execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const c=process.cpuUsage(); await import(${JSON.stringify(file)}); const d=process.cpuUsage(c); console.log((d.user+d.system)/1000)`,
        ],
        { encoding: 'utf8' },
      );
      times.push(Number(ms));
    }
    times.sort((a, b) => a - b);
    const kb = (statSync(file).size / 1024).toFixed(0);
    console.log(
      `${name.padEnd(10)} ${kb.padStart(6)} KiB   load ${times[3].toFixed(1)} ms CPU (median of 7)`,
    );
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
