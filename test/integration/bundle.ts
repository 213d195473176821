/**
 * Bundles the Lambda handlers the way the CDK construct does (esbuild, ESM, the pipeline module
 * aliased as `sluice-pipeline`), so integration tests run the same bundled code Lambda runs.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '../..');

export async function bundleHandler(
  name: 'scheduler' | 'partition' | 'recovery',
  pipeline: string,
): Promise<string> {
  const outdir = path.join(root, 'test/.tmp/bundles', path.basename(pipeline, '.ts'));
  mkdirSync(outdir, { recursive: true });
  const outfile = path.join(outdir, `${name}.mjs`);
  await build({
    entryPoints: [path.join(root, 'functions', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: true,
    alias: { 'sluice-pipeline': path.resolve(root, pipeline) },
    banner: {
      js: "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  return outfile;
}

export async function importBundle<T>(file: string): Promise<T> {
  return (await import(`${pathToFileURL(file).href}?t=${Date.now()}`)) as T;
}
