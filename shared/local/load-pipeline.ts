import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Pipeline, type StreamingContext } from '../core/context.ts';
import { contextFor, type PipelineModule } from '../core/pipeline-module.ts';
import { ConfigError, SluiceError } from '../errors.ts';

export type { PipelineModule };

export class PipelineLoadError extends SluiceError {
  readonly modulePath: string;
  constructor(modulePath: string, message: string, cause?: unknown) {
    super(`Cannot load pipeline module ${modulePath}: ${message}`, { cause });
    this.name = 'PipelineLoadError';
    this.modulePath = modulePath;
  }
}

export interface LoadedPipeline {
  readonly module: PipelineModule;
  readonly ctx: StreamingContext;
  /** A frozen pipeline with its zero time (from the store's meta/graph.json). */
  pipeline(zeroTimeMs: number): Pipeline;
}

/** A pipeline module written in TypeScript. */
const TYPESCRIPT_MODULE = /\.(?:[cm]?ts|tsx)$/i;
let typeScriptLoader: Promise<void> | undefined;

/**
 * Installed from npm, Sluice runs compiled JavaScript and needs no TypeScript loader for itself or
 * for a `.js`/`.mjs` pipeline module. A `.ts` pipeline module is loaded through tsx (a dependency of
 * the package), registered once per thread and only then. Run from this repository's sources, tsx
 * is already active (bin/sluice.js, worker-bootstrap.mjs).
 */
export async function ensureTypeScriptLoader(modulePath: string): Promise<void> {
  if (!TYPESCRIPT_MODULE.test(modulePath) || import.meta.url.endsWith('.ts')) return;
  // Both of tsx's hooks: a `.ts` file in a project without `"type": "module"` is CommonJS to
  // Node, and tsx's CommonJS hook is what compiles its `import`/`export` syntax.
  typeScriptLoader ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    esm.register();
    cjs.register();
  });
  await typeScriptLoader;
}

export async function importPipelineModule(modulePath: string): Promise<PipelineModule> {
  const abs = path.resolve(modulePath);
  if (!existsSync(abs)) throw new PipelineLoadError(modulePath, 'the file does not exist');
  let mod: Partial<PipelineModule>;
  try {
    await ensureTypeScriptLoader(abs);
    mod = (await import(pathToFileURL(abs).href)) as Partial<PipelineModule>;
  } catch (err) {
    // Outside a "type": "module" package Node loads a .ts as CommonJS and fails on its first
    // `export` with a require cycle error, hiding a syntax error: report that one first.
    if ((err as NodeJS.ErrnoException).code === 'ERR_REQUIRE_CYCLE_MODULE') {
      const syntax = await syntaxErrorOf(abs);
      if (syntax) throw new PipelineLoadError(modulePath, `it has a syntax error: ${syntax}`);
    }
    throw new PipelineLoadError(modulePath, `it failed to import: ${(err as Error).message}`, err);
  }
  // A CommonJS module (a `.ts` file in a project without `"type": "module"`, compiled by tsx, or a
  // `.cjs` file) arrives as `{ default: module.exports }`: its exports are one level down.
  const inner = mod.default as Partial<PipelineModule> | undefined;
  if (typeof inner === 'object' && inner !== null && typeof inner.default === 'function') mod = inner;
  if (typeof mod.default !== 'function') {
    throw new PipelineLoadError(
      modulePath,
      'it must default-export a function (ctx: StreamingContext) => void that builds the pipeline',
    );
  }
  return mod as PipelineModule;
}

/** Imports a pipeline module and builds its graph on a new context. */
export async function loadPipeline(
  modulePath: string,
  options: { batchIntervalMs?: number; partitions?: number; printer?: (text: string) => void },
): Promise<LoadedPipeline> {
  const module = await importPipelineModule(modulePath);
  const ctx = contextFor(module, options);
  try {
    await module.default(ctx);
    ctx.graph.freeze();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new PipelineLoadError(modulePath, `building the pipeline failed: ${(err as Error).message}`, err);
  }
  let frozen: Pipeline | undefined;
  return {
    module,
    ctx,
    pipeline(zeroTimeMs: number) {
      if (!frozen || frozen.zeroTimeMs !== zeroTimeMs) frozen = new Pipeline(ctx, zeroTimeMs);
      return frozen;
    },
  };
}

/** The first syntax error of a TypeScript/JavaScript file as `file:line:column: text`, if any (esbuild, as tsx uses). */
async function syntaxErrorOf(file: string): Promise<string | undefined> {
  try {
    const { readFile } = await import('node:fs/promises');
    const esbuild = await import('esbuild');
    const loader = /\.[cm]?tsx?$/.test(file) ? (file.endsWith('x') ? 'tsx' : 'ts') : 'js';
    await esbuild.transform(await readFile(file, 'utf8'), { loader, format: 'esm', sourcefile: file });
    return undefined;
  } catch (err) {
    const first = (err as { errors?: { text: string; location?: { line: number; column: number } | null }[] })
      .errors?.[0];
    if (!first) return undefined; // esbuild is missing: nothing to add
    const at = first.location ? `:${first.location.line}:${first.location.column + 1}` : '';
    return `${path.basename(file)}${at}: ${first.text}`;
  }
}
