/**
 * `sluice batch <module> --input <file | dir | s3://bucket/prefix | store:<dir>#<output>>`: runs a
 * pipeline written for the stream over a bounded dataset, as one batch or as batches by a time
 * field (shared/batch.ts), into a store of its own.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { runBatch } from '../shared/batch.ts';
import { layout } from '../shared/core/layout.ts';
import { NotStoredError, readStoreOutputs } from '../shared/core/query.ts';
import { DirectoryObjectStore } from '../shared/local/directory-store.ts';
import { PipelineLoadError } from '../shared/local/load-pipeline.ts';
import { badValue, CliError } from './errors.ts';
import { formatMs, isoLocal } from './format.ts';
import { defaultStoreDir, openStore } from './store.ts';

export interface BatchCommandOptions {
  readonly input: string;
  readonly format?: 'lines' | 'json';
  readonly timeField?: string;
  readonly interval?: number;
  readonly partitions?: number;
  readonly into?: string;
  readonly fresh?: boolean;
  readonly json?: boolean;
}

interface Loaded {
  records: unknown[];
  skipped: number;
  firstSkipped?: string;
}

function decodeLines(text: string, format: 'lines' | 'json', where: string, into: Loaded): void {
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.length === 0) return;
    if (format === 'lines') {
      into.records.push(line);
      return;
    }
    try {
      into.records.push(JSON.parse(line));
    } catch {
      into.skipped++;
      into.firstSkipped ??= `${where}:${i + 1}`;
    }
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile() && !e.name.startsWith('.')) out.push(p);
  }
  return out.sort();
}

/** Reads the dataset named by --input. */
export async function loadInput(spec: string, format: 'lines' | 'json'): Promise<Loaded> {
  const loaded: Loaded = { records: [], skipped: 0 };
  if (spec.startsWith('store:')) {
    const hash = spec.indexOf('#');
    if (hash < 0)
      throw badValue('--input', `store input needs an output name: store:<dir>#<output name>, got '${spec}'`);
    const opened = await openStore({ store: spec.slice('store:'.length, hash) });
    try {
      for (const b of await readStoreOutputs(opened.store, spec.slice(hash + 1)))
        loaded.records.push(...b.records);
    } catch (err) {
      if (err instanceof NotStoredError) throw badValue('--input', err.message);
      throw err;
    }
    return loaded;
  }
  if (spec.startsWith('s3://')) {
    const [bucket, ...rest] = spec.slice('s3://'.length).split('/');
    const prefix = rest.join('/');
    const opened = await openStore({ bucket });
    const keys = (await opened.store.list(prefix)).filter((k) => !k.endsWith('/'));
    if (keys.length === 0) throw badValue('--input', `nothing under ${spec}`);
    for (const key of keys) {
      const bytes = await opened.store.get(key);
      if (bytes)
        decodeLines(
          Buffer.from(bytes).toString('utf8'),
          format,
          `${spec}${key.slice(prefix.length)}`,
          loaded,
        );
    }
    return loaded;
  }
  if (!existsSync(spec)) {
    throw badValue(
      '--input',
      `${spec} does not exist (give a file, a directory, s3://bucket/prefix or store:<dir>#<output>)`,
    );
  }
  const stat = await fs.stat(spec);
  const files = stat.isDirectory() ? await filesUnder(spec) : [spec];
  for (const file of files) decodeLines(await fs.readFile(file, 'utf8'), format, file, loaded);
  return loaded;
}

export async function batchCommand(
  modulePath: string,
  options: BatchCommandOptions,
  io: { stdout: (text: string) => void; stderr: (text: string) => void },
): Promise<void> {
  if (!existsSync(modulePath)) throw new PipelineLoadError(modulePath, 'the file does not exist');
  const intoDir = options.into ?? `${defaultStoreDir(modulePath)}-batch`;
  const format = options.format ?? (options.timeField ? 'json' : 'lines');
  if (options.timeField && format !== 'json' && !options.input.startsWith('store:')) {
    throw badValue('--time-field', 'needs JSON records: add --format json');
  }
  const loaded = await loadInput(options.input, format);
  if (loaded.skipped > 0) {
    io.stderr(
      `warning: ${loaded.skipped} line(s) are not JSON and were skipped (first: ${loaded.firstSkipped})\n`,
    );
  }
  if (options.fresh) await fs.rm(intoDir, { recursive: true, force: true });
  if (existsSync(path.join(intoDir, layout.manifestsPrefix()))) {
    throw badValue(
      '--into',
      `${intoDir} already holds a run; name a new directory or add --fresh to replace it`,
    );
  }
  await fs.mkdir(intoDir, { recursive: true });
  const store = new DirectoryObjectStore(intoDir);
  const started = Date.now();
  let result: Awaited<ReturnType<typeof runBatch>>;
  try {
    result = await runBatch(modulePath, loaded.records, {
      timeField: options.timeField,
      batchIntervalMs: options.interval,
      partitions: options.partitions,
      store,
      printer: io.stdout,
    });
  } catch (err) {
    if (err instanceof Error && err.name === 'ConfigError' && /timeField/.test(err.message)) {
      throw badValue('--time-field', err.message.replace(/^Invalid option '[^']*': /, ''));
    }
    throw err;
  }
  const times = result.batchTimes;
  const summary = {
    into: store.describe(),
    records: loaded.records.length,
    batches: times.length,
    fromMs: times[0] ?? null,
    toMs: times[times.length - 1] ?? null,
    untimed: result.untimed,
    skipped: loaded.skipped,
    elapsedMs: Date.now() - started,
  };
  if (options.json) {
    io.stdout(`${JSON.stringify(summary)}\n`);
    return;
  }
  if (result.untimed > 0) {
    io.stderr(
      `warning: ${result.untimed} record(s) have no time in '${options.timeField}': dead-lettered in the first batch\n`,
    );
  }
  if (times.length === 0) throw new CliError('no batch ran');
  io.stderr(
    `${summary.records} records in ${times.length} batch(es) ${isoLocal(times[0]!)} – ${isoLocal(times[times.length - 1]!)} ` +
      `in ${formatMs(summary.elapsedMs)}; outputs in ${intoDir}/outputs (sluice status --store ${intoDir})\n`,
  );
}
