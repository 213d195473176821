/**
 * `sluice run <pipeline-module>`: runs a pipeline on this machine (the embedded runner: a store
 * directory, a local source, worker threads) and shows each batch as it commits.
 *
 * @module
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { layout } from '../shared/core/layout.ts';
import { runEmbedded } from '../shared/local/embedded-runner.ts';
import { PipelineLoadError } from '../shared/local/load-pipeline.ts';
import { UsageError } from './errors.ts';
import { formatMs } from './format.ts';
import { ProgressView } from './progress.ts';
import { defaultStoreDir } from './store.ts';
import { startUiBesideRun } from './ui/command.ts';

export interface RunCommandOptions {
  readonly interval?: number;
  readonly partitions?: number;
  readonly duration?: number;
  readonly batches?: number;
  readonly source: string;
  readonly rate?: number;
  readonly format?: 'lines' | 'json';
  readonly store?: string;
  readonly workers?: number;
  readonly dataset?: Readonly<Record<string, string>>;
  readonly maxRecords?: number;
  readonly faults?: Record<string, number>;
  readonly speculation?: boolean;
  readonly checkpointEvery?: number;
  /** `--retain-inputs`: how long input blocks and write-ahead entries stay. */
  readonly retainInputs?: number;
  readonly fresh?: boolean;
  readonly skipBatch?: readonly number[];
  /** Take the driver lease even from a live holder (it is fenced: it commits nothing more). */
  readonly force?: boolean;
  /** Hidden (tests): the lease duration in ms. */
  readonly leaseDuration?: number;
  readonly quiet?: boolean;
  readonly json?: boolean;
  /** Serve the web UI beside the run (`--ui`, `--ui-port`, `--ui-host`, `--ui-token`). */
  readonly ui?: boolean;
  readonly uiPort?: number;
  readonly uiHost?: string;
  readonly uiToken?: string;
}

export interface RunIo {
  /** Progress and summary (stderr). */
  readonly progress: (text: string) => void;
  /** The pipeline's print() output (stdout). */
  readonly printer?: (text: string) => void;
  /** Installs Ctrl-C handling; returns a function that removes it. */
  readonly onInterrupt?: (handler: () => void) => () => void;
}

export async function runCommand(modulePath: string, options: RunCommandOptions, io: RunIo): Promise<void> {
  // before anything touches the store: a missing module must not cost the user their --fresh store
  if (!existsSync(modulePath)) throw new PipelineLoadError(modulePath, 'the file does not exist');
  const storeDir = options.store ?? defaultStoreDir(modulePath);
  if (options.fresh) await deleteStore(storeDir);
  const ui = await startUiBesideRun(storeDir, options, io.progress);

  const progress = new ProgressView({
    write: io.progress,
    json: options.json ?? false,
    quiet: options.quiet ?? false,
  });
  const controller = new AbortController();
  let interrupts = 0;
  const removeInterrupt = io.onInterrupt?.(() => {
    interrupts++;
    if (interrupts === 1) {
      progress.note('stopping after the current batch (Ctrl-C again to quit at once)');
      controller.abort();
    } else {
      process.exit(130);
    }
  });

  const limits: string[] = [];
  if (options.batches !== undefined) limits.push(`stops after ${options.batches} batches`);
  if (options.duration !== undefined) limits.push(`stops after ${formatMs(options.duration)} from now`);
  if (limits.length === 0)
    limits.push(options.source.startsWith('generator') ? 'runs until stopped' : 'runs until the source ends');
  let manifestsSeen = 0;
  try {
    const { manifests, scheduler } = await runEmbedded({
      pipelineModule: modulePath,
      storeDir,
      batchIntervalMs: options.interval,
      partitions: options.partitions,
      workers: options.workers,
      source: options.source,
      rate: options.rate,
      format: options.format,
      durationMs: options.duration,
      numBatches: options.batches,
      datasets: options.dataset,
      maxRecordsPerBatch: options.maxRecords,
      faults: options.faults,
      speculation: { enabled: options.speculation !== false },
      checkpointEvery: options.checkpointEvery,
      ...(options.retainInputs !== undefined ? { retainInputsMs: options.retainInputs } : {}),
      ...(options.skipBatch ? { skipBatches: options.skipBatch } : {}),
      ...(options.force || options.leaseDuration
        ? { lease: { force: options.force, durationMs: options.leaseDuration } }
        : {}),
      signal: controller.signal,
      ...(io.printer ? { printer: io.printer } : {}),
      onStart: ({ sources, scheduler }) => {
        progress.start({
          module: modulePath,
          storeDir,
          storeDescription: scheduler.store.describe(),
          intervalMs: scheduler.ctx.batchIntervalMs,
          partitions: scheduler.ctx.defaultPartitions,
          invoker: scheduler.invoker.describe(),
          sources: sources.map((s) => s.describe()),
          fingerprint: scheduler.pipeline.fingerprint,
          firstBatchMs: scheduler.nextBatchTimeMs,
          resumedAfterMs: scheduler.lastCommittedBatchMs,
          limits: limits.join(', '),
          nowMs: Date.now(),
          sourceSkipsGap: options.source.startsWith('generator'),
        });
        for (const t of options.skipBatch ?? []) {
          progress.note(
            `skipping batch ${t} (--skip-batch): its input records reach no operator and no output runs for it; its input stays stored`,
          );
        }
      },
      onBatch: (m) => {
        manifestsSeen++;
        progress.batch(m);
      },
      log: (e) => {
        if (e.event === 'lease.takeover') io.progress(`${takeoverWarning(e)}\n`);
        progress.event(e);
        ui?.pushEvent(e);
      },
    });
    const reason = controller.signal.aborted
      ? 'stopped'
      : options.batches !== undefined && manifests.length >= options.batches
        ? `--batches ${options.batches}`
        : scheduler.sourcesExhausted()
          ? 'the source ended'
          : `--duration ${formatMs(options.duration ?? 0)}`;
    progress.summary(reason);
  } catch (err) {
    if (manifestsSeen > 0) progress.summary('failed');
    throw err;
  } finally {
    removeInterrupt?.();
    await ui?.close();
  }
}

/** The line printed when this driver took the lease from a holder that had not released it. */
function takeoverWarning(e: Record<string, unknown>): string {
  const holder = e.holder as { owner: string; epoch: number; expiresAtMs: number };
  const until = new Date(holder.expiresAtMs).toISOString();
  return e.reason === 'forced'
    ? `warning: --force: took the lease from ${holder.owner} (epoch ${holder.epoch}, held until ${until}); ` +
        'if that driver is still running it is fenced: it commits nothing more and stops'
    : `note: the lease holder ${holder.owner} (epoch ${holder.epoch}) is gone (no such process on this host); taking over at once`;
}

/**
 * `--fresh`: deletes the store directory, but only when it is one (holds meta/graph.json) or is
 * empty, so that a mistyped `--store ~` cannot delete a home directory.
 */
async function deleteStore(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const stat = await fs.stat(dir);
  if (!stat.isDirectory()) throw new UsageError('--store', `${dir} is not a directory`);
  const entries = await fs.readdir(dir);
  const isStore = existsSync(path.join(dir, layout.graph()));
  if (entries.length > 0 && !isStore) {
    throw new UsageError(
      '--fresh',
      `refusing to delete ${dir}: it is not empty and does not look like a Sluice store (no ${layout.graph()})`,
    );
  }
  await fs.rm(dir, { recursive: true, force: true });
}
