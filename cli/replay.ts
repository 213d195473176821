/**
 * `sluice replay <module> --store <dir> | --bucket <name> [--from <time>] [--to <time>] --into <dir>`:
 * re-runs a pipeline (the same or a changed one) over the retained input of a past range into a
 * new store, never writing the original (shared/replay.ts).
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { layout } from '../shared/core/layout.ts';
import { DirectoryObjectStore } from '../shared/local/directory-store.ts';
import { PipelineLoadError } from '../shared/local/load-pipeline.ts';
import { describeRemoved, replay } from '../shared/replay.ts';
import { badValue } from './errors.ts';
import { formatMs, isoLocal } from './format.ts';
import type { BatchTimeSpec } from './parse.ts';
import { openStore, resolveBatchTime, type StoreOptions } from './store.ts';

export interface ReplayCommandOptions extends StoreOptions {
  readonly into?: string;
  readonly from?: BatchTimeSpec;
  readonly to?: BatchTimeSpec;
  readonly workers?: number;
  readonly json?: boolean;
  readonly quiet?: boolean;
}

export async function replayCommand(
  modulePath: string,
  options: ReplayCommandOptions,
  io: { stdout: (text: string) => void; stderr: (text: string) => void },
): Promise<void> {
  if (!existsSync(modulePath)) throw new PipelineLoadError(modulePath, 'the file does not exist');
  if (!options.into)
    throw badValue('--into', 'name the new store directory the replay writes to, e.g. --into .sluice/replay');
  const opened = await openStore(options);
  const into = new DirectoryObjectStore(options.into);
  if (opened.store instanceof DirectoryObjectStore) {
    const a = opened.store.root;
    const b = into.root;
    if (a === b || b.startsWith(`${a}${path.sep}`) || a.startsWith(`${b}${path.sep}`)) {
      throw badValue(
        '--into',
        `${options.into} is (inside) the original store ${a}; the replay writes to a store of its own`,
      );
    }
  }
  if (existsSync(path.join(into.root, layout.graph())) && !options.quiet) {
    io.stderr(
      `${options.into} already holds a replay: resuming it (batches it committed are not run again)\n`,
    );
  }
  await fs.mkdir(into.root, { recursive: true });
  const fromMs = options.from ? await resolveBatchTime(opened.store, options.from, '--from') : undefined;
  const toMs = options.to ? await resolveBatchTime(opened.store, options.to, '--to') : undefined;
  if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) {
    throw badValue('--from', `${isoLocal(fromMs)} is after --to ${isoLocal(toMs)}`);
  }
  const started = Date.now();
  let warnings: string[] = [];
  const result = await replay({
    original: opened.store,
    into,
    pipeline: modulePath,
    fromMs,
    toMs,
    workers: options.workers,
    printer: io.stdout,
    onPlan: (plan) => {
      warnings = describeRemoved(plan);
      if (plan.skippedForAlignment.length > 0) {
        const s = plan.skippedForAlignment;
        warnings.push(
          `${s.length} batch(es) from ${s[0]} to ${s[s.length - 1]} are not replayed: the replay starts where state and windows can start empty with the original's alignment`,
        );
      }
      if (!options.json) for (const w of warnings) io.stderr(`warning: ${w}\n`);
      if (!options.json && !options.quiet && plan.times.length > 0) {
        io.stderr(
          `replaying ${plan.times.length} batches ${isoLocal(plan.times[0]!)} – ${isoLocal(plan.times[plan.times.length - 1]!)} of ${opened.description} into ${into.describe()}\n`,
        );
      }
    },
    onBatch: (m) => {
      if (!options.json && !options.quiet) {
        io.stderr(`  ${isoLocal(m.batchTimeMs)}  ${m.input.records} records  ${formatMs(m.processingMs)}\n`);
      }
    },
  });
  const times = result.manifests.map((m) => m.batchTimeMs);
  const summary = {
    original: opened.description,
    into: into.describe(),
    batches: times.length,
    fromMs: times[0] ?? null,
    toMs: times[times.length - 1] ?? null,
    records: result.manifests.reduce((n, m) => n + m.input.records, 0),
    elapsedMs: Date.now() - started,
    zeroTimeMs: result.meta.zeroTimeMs,
    fingerprint: result.meta.fingerprint,
    originalFingerprint: result.plan.original.fingerprint,
    removed: result.plan.removed,
    warnings,
  };
  if (options.json) {
    io.stdout(`${JSON.stringify(summary)}\n`);
    return;
  }
  if (times.length === 0) {
    io.stderr(`nothing left to replay: ${into.describe()} already committed every batch of the range\n`);
    return;
  }
  io.stderr(
    `replayed ${times.length} batches (${summary.records} records) in ${formatMs(summary.elapsedMs)}` +
      '; ' +
      `see: sluice status --store ${options.into}\n`,
  );
}
