/**
 * `sluice status`: what a store holds. The pipeline (fingerprint, zero time, interval), every
 * committed batch with its input, delays, stages, tasks and requests, a timeline picture, and an
 * estimate of what the same requests would cost on AWS. Reads only meta/graph.json and
 * manifests/, through the ObjectStore port, so it works on a directory or on S3; the store's size
 * (bytes and objects by top-level prefix) is shown for a directory store.
 *
 * @module
 */
import { promises as fs } from 'node:fs';
import { deadLettersOf } from '../shared/core/driver/dead-letters.ts';
import type { BatchManifest, GraphMeta } from '../shared/core/driver.ts';
import { DirectoryObjectStore, type StoreUsage } from '../shared/local/directory-store.ts';
import {
  type CostFigures,
  costFigures,
  type DailyCost,
  DEFAULT_DEPLOYMENT,
  DEFAULT_PRICES,
  type Deployment,
  formatUsd,
  type PriceTable,
} from './cost.ts';
import { CliError } from './errors.ts';
import {
  formatBytes,
  formatCount,
  formatMs,
  isoLocal,
  mean,
  percentile,
  shellQuote,
  shortOutputName,
  Table,
  timeOfDay,
} from './format.ts';
import type { BatchTimeSpec } from './parse.ts';
import {
  committedBatchTimes,
  type OpenedStore,
  openStore,
  readGraphMeta,
  readManifests,
  resolveBatchTime,
  type StoreOptions,
  uncommittedBatchTimes,
} from './store.ts';
import { timelineSvg } from './svg.ts';

export interface StatusCommandOptions extends StoreOptions {
  /** How many of the newest batches to show (0: all). */
  readonly last: number;
  readonly json?: boolean;
  /** Write the timeline as SVG to this file. */
  readonly svg?: string;
  /** Show one batch in detail (stages, phases, outputs). */
  readonly batch?: BatchTimeSpec;
  /** Only batches that had input records or dead letters. */
  readonly nonEmpty?: boolean;
  /** The price table (`--prices <file>`, read and checked at start-up); default cli/prices.json. */
  readonly prices?: PriceTable;
  /** The construct's memory sizes (`--scheduler-memory`, `--partition-memory`), in MiB. */
  readonly schedulerMemory?: number;
  readonly partitionMemory?: number;
}

export async function statusCommand(
  options: StatusCommandOptions,
  write: (text: string) => void,
): Promise<void> {
  const opened = await openStore(options);
  const meta = await readGraphMeta(opened);
  const times = await committedBatchTimes(opened.store);
  const uncommitted = await uncommittedBatchTimes(opened.store, times);

  if (options.batch) {
    const t = await resolveBatchTime(opened.store, options.batch, '--batch');
    const [m] = await readManifests(opened.store, [t]);
    if (!m) throw new CliError(`batch ${t} has no manifest in ${opened.description} (it is not committed)`);
    if (options.json) write(`${JSON.stringify(m, null, 2)}\n`);
    else for (const line of batchDetail(m, meta, opened)) write(`${line}\n`);
    return;
  }

  let shown = options.last > 0 ? times.slice(-options.last) : times;
  let manifests = await readManifests(opened.store, shown);
  if (options.nonEmpty) {
    // the newest --last batches that had input or dead letters
    const all = await readManifests(opened.store, times);
    manifests = all.filter((m) => m.input.records > 0 || deadLettersOf(m) > 0);
    if (options.last > 0) manifests = manifests.slice(-options.last);
    shown = manifests.map((m) => m.batchTimeMs);
  }

  if (options.svg) {
    await fs.writeFile(
      options.svg,
      timelineSvg(manifests, meta.batchIntervalMs, `Sluice batches: ${opened.description}`),
    );
  }
  const size = await storeUsage(opened);
  const cost =
    manifests.length > 0
      ? costFigures(manifests, meta.batchIntervalMs, options.prices ?? DEFAULT_PRICES, deploymentOf(options))
      : undefined;
  if (options.json) {
    const { graph: _graph, ...header } = meta;
    write(
      `${JSON.stringify({ store: opened.description, ...header, committed: times.length, uncommitted, ...(size ? { size } : {}), ...(cost ? { cost } : {}), batches: manifests }, null, 2)}\n`,
    );
    return;
  }
  const lines: string[] = [];
  lines.push(...headerLines(meta, opened, times, uncommitted));
  lines.push(...sizeLines(size));
  lines.push('');
  if (manifests.length === 0) {
    lines.push('no committed batch yet.');
  } else {
    if (options.nonEmpty) {
      lines.push(`${shown.length} batches with input or dead letters (--non-empty), of ${times.length}:`);
    } else if (shown.length < times.length) {
      lines.push(`last ${shown.length} of ${times.length} batches (--last 0 shows all):`);
    }
    lines.push(...batchTable(manifests));
    lines.push('');
    lines.push(...timeline(manifests, meta.batchIntervalMs));
    lines.push('');
    lines.push(...summaryLines(manifests, meta.batchIntervalMs));
    if (cost) lines.push(...costLines(cost));
    lines.push('');
    const last = manifests[manifests.length - 1]!;
    const output = last.outputs.find((o) => o.kind === 'rdd') ?? last.outputs[0];
    lines.push(`one batch in detail:   sluice status --batch ${last.batchTimeMs} ${opened.flags}`);
    if (output) {
      lines.push(
        `lineage of a partition: sluice lineage ${shellQuote(output.name)} ${last.batchTimeMs} 0 ${opened.flags}`,
      );
    }
  }
  if (options.svg) lines.push(`timeline picture written to ${options.svg}`);
  for (const line of lines) write(`${line}\n`);
}

/** The size of a directory store (an S3 store is not walked: that would list every object). */
async function storeUsage(opened: OpenedStore): Promise<StoreUsage | undefined> {
  return opened.store instanceof DirectoryObjectStore ? opened.store.usage() : undefined;
}

function sizeLines(size: StoreUsage | undefined): string[] {
  if (!size) return [];
  const prefixes = Object.entries(size.byPrefix)
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(([p, u]) => `${p} ${formatBytes(u.bytes)} (${u.objects})`);
  return [
    `size         ${formatBytes(size.bytes)} in ${size.objects} objects${prefixes.length > 0 ? `: ${prefixes.join(', ')}` : ''}`,
  ];
}

function describeGraph(meta: GraphMeta): string {
  const graph = meta.graph as {
    streams?: { kind?: string }[];
    outputs?: { label?: string; kind?: string }[];
  } | null;
  const streams = graph?.streams ?? [];
  const outputs = graph?.outputs ?? [];
  const kinds = streams.map((s) => s.kind ?? '?');
  const shown = kinds.length > 8 ? `${kinds.slice(0, 8).join(', ')}, ...` : kinds.join(', ');
  return `${streams.length} streams (${shown}), ${outputs.length} outputs (${outputs.map((o) => o.label ?? o.kind).join(', ')})`;
}

function headerLines(
  meta: GraphMeta,
  opened: OpenedStore,
  times: readonly number[],
  uncommitted: readonly number[],
): string[] {
  const lines = [
    `store        ${opened.description}`,
    `pipeline     fingerprint ${meta.fingerprint}, created ${isoLocal(meta.createdAtMs)}`,
    `graph        ${describeGraph(meta)}`,
  ];
  if (meta.persisted.length > 0) {
    lines.push(`state        ${meta.persisted.map((p) => `${p.kind} '${p.name}'`).join(', ')}`);
  }
  lines.push(
    `zero time    ${isoLocal(meta.zeroTimeMs)} (${meta.zeroTimeMs})`,
    `interval     ${formatMs(meta.batchIntervalMs)}, ${meta.partitions} partitions by default`,
  );
  const range =
    times.length > 0 ? ` from ${timeOfDay(times[0]!)} to ${timeOfDay(times[times.length - 1]!)}` : '';
  const pending =
    uncommitted.length > 0
      ? `; ${uncommitted.length} received but not committed (${foldTimes(uncommitted)}): the next run re-runs them`
      : '';
  lines.push(`batches      ${times.length} committed${range}${pending}`);
  return lines;
}

const BATCH_COLUMNS = [
  { header: 'batch time' },
  { header: 'records', align: 'right' },
  { header: 'dead', align: 'right' },
  { header: 'processing', align: 'right' },
  { header: 'sched', align: 'right' },
  { header: 'total', align: 'right' },
  { header: 'stages', align: 'right' },
  { header: 'tasks', align: 'right' },
  { header: 'attempts', align: 'right' },
  { header: 'retries', align: 'right' },
  { header: 'spec', align: 'right' },
  { header: 'recomp', align: 'right' },
  { header: 'get', align: 'right' },
  { header: 'put', align: 'right' },
  { header: 'outputs (records)' },
] as const;

function batchTable(manifests: readonly BatchManifest[]): string[] {
  const rows = manifests.map((m) => {
    const outputs = m.outputs
      .map(
        (o) =>
          `${o.kind === 'file' ? `save:${shortOutputName(o.name, m.batchTimeMs)}` : o.name}=${formatCount(o.records)}`,
      )
      .join(' ');
    const redelivered = (m.delivery?.redelivered ?? 0) + (m.delivery?.duplicates ?? 0);
    const flags = [
      m.recovered ? 'recovered' : m.catchUp ? 'catch-up' : '',
      m.input.capped ? 'capped' : '',
      redelivered > 0 ? `${redelivered} redelivered` : '',
    ]
      .filter(Boolean)
      .join(',');
    return [
      timeOfDay(m.batchTimeMs),
      formatCount(m.input.records),
      formatCount(deadLettersOf(m)),
      formatMs(m.processingMs),
      formatMs(m.schedulingDelayMs),
      formatMs(m.totalDelayMs),
      String(m.stages.length),
      String(m.tasks.total),
      String(m.tasks.attempts),
      String(m.tasks.retries),
      String(m.tasks.speculative),
      String(m.tasks.recomputed),
      formatCount(m.requests.get),
      formatCount(m.requests.put),
      flags ? `${outputs} [${flags}]` : outputs,
    ];
  });
  return new Table(BATCH_COLUMNS).render(rows);
}

/**
 * One row per batch: `-` scheduling delay then `#` processing time (together the total delay),
 * scaled so that the interval falls at a fixed column, marked with `|`.
 */
function timeline(manifests: readonly BatchManifest[], intervalMs: number): string[] {
  const width = 50;
  const scaleMax = Math.max(intervalMs * 1.25, ...manifests.map((m) => m.schedulingDelayMs + m.processingMs));
  const cells = (ms: number) => Math.round((ms / scaleMax) * width);
  const marker = Math.min(width, cells(intervalMs));
  const lines = [
    `timeline (- scheduling delay, # processing time, | batch interval ${formatMs(intervalMs)})`,
  ];
  for (const m of manifests) {
    const sched = cells(m.schedulingDelayMs);
    const total = Math.max(sched + (m.processingMs > 0 ? 1 : 0), cells(m.schedulingDelayMs + m.processingMs));
    let bar = '';
    for (let i = 0; i <= width; i++) {
      if (i === marker) bar += '|';
      else bar += i < sched ? '-' : i < total ? '#' : ' ';
    }
    const over = m.processingMs > intervalMs ? '  ! over the interval' : '';
    lines.push(`${timeOfDay(m.batchTimeMs)}  ${bar} ${formatMs(m.processingMs).padStart(8)}${over}`);
  }
  return lines;
}

function summaryLines(manifests: readonly BatchManifest[], intervalMs: number): string[] {
  const processing = manifests.map((m) => m.processingMs);
  const sched = manifests.map((m) => m.schedulingDelayMs);
  const records = manifests.reduce((n, m) => n + m.input.records, 0);
  const dead = manifests.reduce((n, m) => n + deadLettersOf(m), 0);
  const again = manifests.reduce(
    (n, m) => n + (m.delivery?.redelivered ?? 0) + (m.delivery?.duplicates ?? 0),
    0,
  );
  const over = processing.filter((p) => p > intervalMs).length;
  const spanMs = manifests.length * intervalMs;
  return [
    `${manifests.length} batches, ${formatCount(records)} records (${formatCount((records * 1000) / spanMs)}/s on average), ` +
      `${formatCount(dead)} dead letters, ${over} slower than the interval` +
      (manifests.some((m) => m.delivery)
        ? `, ${formatCount(again)} messages redelivered (not counted again)`
        : ''),
    `processing time   mean ${formatMs(mean(processing))} · p50 ${formatMs(percentile(processing, 0.5))} · p99 ${formatMs(percentile(processing, 0.99))} · max ${formatMs(Math.max(...processing))}`,
    `scheduling delay  mean ${formatMs(mean(sched))} · max ${formatMs(Math.max(...sched))}`,
  ];
}

/** The deployment the estimate assumes: the construct's defaults, with the memory sizes given. */
function deploymentOf(options: StatusCommandOptions): Deployment {
  return {
    ...DEFAULT_DEPLOYMENT,
    schedulerMemoryMb: options.schedulerMemory ?? DEFAULT_DEPLOYMENT.schedulerMemoryMb,
    partitionMemoryMb: options.partitionMemory ?? DEFAULT_DEPLOYMENT.partitionMemoryMb,
  };
}

/** The cost model's figures for these batches (cli/cost.ts): per day, idle per day, per million events. */
function costLines(c: CostFigures): string[] {
  const b = c.meanBatch;
  const d = c.deployment;
  const parts = (day: DailyCost) =>
    [
      `scheduler ${formatUsd(day.schedulerUsd)}`,
      `tasks ${formatUsd(day.partitionUsd)}`,
      `Lambda requests ${formatUsd(day.lambdaRequestsUsd)}`,
      `S3 put/list ${formatUsd(day.s3PutListUsd)}`,
      `S3 get ${formatUsd(day.s3GetUsd)}`,
      `S3 storage ${formatUsd(day.s3StorageUsd)}`,
      `SQS ${formatUsd(day.sqsUsd)}`,
    ].join(' · ');
  const idleNote = c.idleBasis === 'smallest batch' ? ' (no empty batch seen: from the smallest batch)' : '';
  return [
    `requests          ${formatCount(b.get)} get · ${formatCount(b.put + b.list)} put/list · ${formatCount(b.invocations)} task invocations per batch`,
    `cost per day      ${formatUsd(c.observed.totalUsd)} at the observed rate (${formatCount(c.eventsPerSecond)} events/s): ${parts(c.observed)}`,
    `idle per day      ${formatUsd(c.idleAsleep.totalUsd)} asleep (the scheduler sleeps after idleAfter): ${parts(c.idleAsleep)}`,
    `                  ${formatUsd(c.idleAlwaysOn.totalUsd)} with alwaysOn (empty batches all day${idleNote}): ${parts(c.idleAlwaysOn)}`,
    `per million       ${c.perMillionEventsUsd === undefined ? '- (no events)' : formatUsd(c.perMillionEventsUsd)} per million events at the observed rate`,
    `cost basis        the ${c.batches} batches above (${c.emptyBatches} empty), ${c.prices.region} prices of ${c.prices.date} (--prices to override); scheduler ${d.schedulerMemoryMb} MiB all day while awake, ` +
      `partition function ${d.partitionMemoryMb} MiB ${d.architecture}, task times as measured; SQS ${d.eventBytes}-byte events (docs/DEPLOY.md)`,
  ];
}

const STAGE_COLUMNS = [
  { header: 'stage', align: 'right' },
  { header: 'kind' },
  { header: 'target' },
  { header: 'tasks', align: 'right' },
  { header: 'attempts', align: 'right' },
  { header: 'retries', align: 'right' },
  { header: 'records', align: 'right' },
  { header: 'bytes', align: 'right' },
  { header: 'duration', align: 'right' },
  { header: 'task min/p50/max', align: 'right' },
  { header: 'operators' },
] as const;

function batchDetail(m: BatchManifest, meta: GraphMeta, opened: OpenedStore): string[] {
  const rel = (ms: number) => `+${formatMs(ms - m.dueAtMs)}`;
  const phases = Object.entries(m.phases)
    .map(([k, v]) => `${k} ${formatMs(v)}`)
    .join(' · ');
  const lines = [
    `batch ${timeOfDay(m.batchTimeMs)} (${m.batchTimeMs}, ${isoLocal(m.batchTimeMs)})${m.recovered ? ', re-run after a restart' : m.catchUp ? ', catch-up: closed in a backlog while the driver was behind the clock' : ''}`,
    `  due ${timeOfDay(m.dueAtMs)} · started ${rel(m.startedAtMs)} · finished ${rel(m.finishedAtMs)} ` +
      `(processing ${formatMs(m.processingMs)}, scheduling delay ${formatMs(m.schedulingDelayMs)}, interval ${formatMs(meta.batchIntervalMs)})` +
      (m.receiveWindowMs
        ? ` · receive window ${formatMs(m.receiveWindowMs)} before the interval closed (not processing)`
        : ''),
    `  input ${formatCount(m.input.records)} records, ${formatCount(deadLettersOf(m))} dead letters (${formatCount(m.input.deadLetters)} not decodable, ${formatCount(deadLettersOf(m) - m.input.deadLetters)} made user code throw)${m.input.capped ? ', capped by backpressure' : ''}`,
    ...(m.delivery
      ? [
          `  delivery ${formatCount(m.delivery.redelivered)} messages redelivered after an earlier batch committed them, ` +
            `${formatCount(m.delivery.duplicates)} received twice in this batch: not counted again`,
        ]
      : []),
    `  phases ${phases}`,
    `  tasks ${m.tasks.total} · attempts ${m.tasks.attempts} · retries ${m.tasks.retries} · speculative ${m.tasks.speculative} · recomputed ${m.tasks.recomputed}`,
    `  requests get ${formatCount(m.requests.get)} · put ${formatCount(m.requests.put)} · list ${formatCount(m.requests.list)} · ` +
      `delete ${formatCount(m.requests.delete)} · read ${formatBytes(m.requests.bytesRead)} · written ${formatBytes(m.requests.bytesWritten)}`,
    '',
  ];
  const rows = m.stages.map((s) => {
    const d = s.taskDurationsMs;
    return [
      String(s.id),
      s.kind,
      s.target,
      String(s.tasks),
      String(s.attempts),
      String(s.retries),
      formatCount(s.records),
      formatBytes(s.bytes),
      formatMs(s.durationMs),
      d.length ? `${Math.min(...d)}/${percentile(d, 0.5)}/${Math.max(...d)} ms` : '-',
      s.operators.join(' > '),
    ];
  });
  lines.push(...new Table(STAGE_COLUMNS).render(rows), '', 'outputs');
  for (const o of m.outputs) {
    lines.push(
      `  ${o.name} (${o.kind}, ${o.reason}): ${o.partitions} partitions, ${formatCount(o.records)} records` +
        `   sluice lineage ${shellQuote(o.name)} ${m.batchTimeMs} 0 ${opened.flags}`,
    );
  }
  return lines;
}

/** Batch times as a short list: all of them up to 6, else the first 3, how many between, the last 2. */
export function foldTimes(times: readonly number[]): string {
  if (times.length <= 6) return times.map((t) => timeOfDay(t)).join(', ');
  const head = times.slice(0, 3).map((t) => timeOfDay(t));
  const tail = times.slice(-2).map((t) => timeOfDay(t));
  return `${head.join(', ')}, ... ${times.length - 5} more ..., ${tail.join(', ')}`;
}
