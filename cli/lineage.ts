/**
 * `sluice lineage <rdd> <batch-time> <partition>`: how one stored partition was computed. Each
 * partition a task writes has a lineage record (in the object's trailer; in the batch's manifest
 * for saved outputs; `<key>.lineage.json` in stores written before: shared/core/lineage-store.ts) naming its
 * operators and the parent partitions it read; following the parents down to the input blocks
 * gives the tree Spark would recompute the partition from.
 *
 * @module
 */

import type { BatchManifest } from '../shared/core/driver.ts';
import { listIdleSpans } from '../shared/core/idle-span.ts';
import { layout, parseOutputKey, timeKey } from '../shared/core/layout.ts';
import {
  lineageDataKeys,
  memoryLineageOf,
  outputLineageOf,
  readLineage,
} from '../shared/core/lineage-store.ts';
import type { LineageRecord, ParentRef } from '../shared/core/task.ts';
import type { ObjectStore } from '../shared/ports/object-store.ts';
import { ArgumentError, CliError } from './errors.ts';
import { formatBytes, formatCount, formatMs, shellQuote, timeOfDay } from './format.ts';
import type { BatchTimeSpec } from './parse.ts';
import {
  committedBatchTimes,
  idleSpanOf,
  type OpenedStore,
  openStore,
  readGraphMeta,
  readJson,
  resolveBatchTime,
  type StoreOptions,
} from './store.ts';

export interface LineageCommandOptions extends StoreOptions {
  readonly json?: boolean;
  readonly dot?: boolean;
  /** How many levels of parents to follow. */
  readonly depth: number;
}

/** A node of the lineage tree: a stored partition with its record, or a leaf. */
export interface LineageNode {
  /** `<rdd>@<batch time>[<partition>]`: unique per partition (a dataset's partitions share one key). */
  readonly id: string;
  /** The data object's key in the store. */
  readonly key: string;
  readonly rddId: string;
  readonly batchTimeMs: number;
  readonly partition: number;
  readonly kind: 'partition' | 'input' | 'dataset' | 'missing' | 'repeat' | 'truncated';
  readonly record?: LineageRecord;
  /** For a shuffle map output read by a reduce task: the byte range of that task's bucket. */
  readonly bucket?: readonly [number, number];
  readonly parents: LineageNode[];
}

/** How many committed batches `sluice lineage <rdd> last` looks back for one that has the RDD. */
const LAST_LOOKBACK = 120;

export async function lineageCommand(
  rdd: string,
  batchTime: BatchTimeSpec,
  partition: number,
  options: LineageCommandOptions,
  write: (text: string) => void,
): Promise<void> {
  const opened = await openStore(options);
  await readGraphMeta(opened);
  let t = await resolveBatchTime(opened.store, batchTime, '<batch-time>');
  let key = await findDataKey(opened.store, rdd, t, partition);
  if (!key && batchTime.kind === 'latest') {
    // `last`: the newest batch that has it (the newest batches may be empty or idle)
    for (const earlier of (await committedBatchTimes(opened.store)).reverse().slice(1, LAST_LOOKBACK)) {
      key = await findDataKey(opened.store, rdd, earlier, partition);
      if (key) {
        t = earlier;
        break;
      }
    }
  }
  if (!key) throw new CliError(await notFoundMessage(opened, rdd, t, partition));
  const root = await buildTree(opened.store, { rddId: rdd, batchTimeMs: t, partition, key }, options.depth);
  if (options.json) write(`${JSON.stringify(root, null, 2)}\n`);
  else if (options.dot) write(toDot(root));
  else for (const line of renderTree(root)) write(`${line}\n`);
}

/** `sluice lineage --list [batch-time]`: what a batch stored, or which batches still have stored partitions. */
export async function lineageListCommand(
  batchTime: BatchTimeSpec | undefined,
  options: StoreOptions,
  write: (text: string) => void,
): Promise<void> {
  const opened = await openStore(options);
  await readGraphMeta(opened);
  if (batchTime) {
    const t = await resolveBatchTime(opened.store, batchTime, '--list');
    const lines = await storedFor(opened.store, t);
    if (lines.length === 0) {
      write(`nothing is stored for batch ${timeOfDay(t)} (${t}) in ${opened.description}\n`);
      write(`${await whyNothing(opened, t)}\n`);
      return;
    }
    write(`stored for batch ${timeOfDay(t)} (${t}):\n`);
    for (const line of lines) write(`  ${line}\n`);
    const first = (await listNames(opened.store, `rdd/${timeKey(t)}/`))[0];
    if (first) write(`show one: sluice lineage ${shellQuote(first.name)} ${t} 0 ${opened.flags}\n`);
    return;
  }
  const times = new Map<number, Set<string>>();
  for (const k of lineageDataKeys(await opened.store.list('rdd/'))) {
    const [, tk, name] = k.split('/');
    if (!tk || !name) continue;
    const set = times.get(Number(tk)) ?? new Set<string>();
    set.add(name);
    times.set(Number(tk), set);
  }
  if (times.size === 0) {
    write(
      `no stored RDD partitions in ${opened.description} (saved outputs: sluice lineage --list <batch-time>)\n`,
    );
    return;
  }
  write('batches with stored RDD partitions (older ones were cleaned up once no later batch needed them):\n');
  for (const [t, names] of [...times].sort((a, b) => a[0] - b[0])) {
    write(`  ${timeOfDay(t)}  ${t}  ${[...names].sort().join(', ')}\n`);
  }
}

/** The data key of partition `p` of `name` in batch `t`: a stored RDD, a shuffle map output, or a saved output part. */
export async function findDataKey(
  store: ObjectStore,
  name: string,
  t: number,
  p: number,
): Promise<string | undefined> {
  const candidates: string[] = [];
  if (name.startsWith('shuffle:')) candidates.push(layout.shuffleOutput(t, name.slice('shuffle:'.length), p));
  else candidates.push(layout.rddPartition(t, name, p));
  for (const key of candidates) {
    const keys = await store.list(key); // the object (its trailer) or, written before, its .lineage.json
    if (keys.includes(key) || keys.includes(layout.lineageOf(key))) return key;
    // a tiny batch run in the driver kept it in memory: its record is in the manifest
    if ((await memoryLineageOf(store, key))?.some((r) => r.key === key)) return key;
  }
  // a saved output, by its name (wordcount): its lineage is in the batch's manifest
  for (const r of await outputLineageOf(store, t)) {
    const parsed = parseOutputKey(r.key);
    if (parsed?.name === name && parsed.partition === p) return r.key;
  }
  // ... or, in a store written before, under lineage/outputs/<name>/...
  for (const key of await store.list(layout.outputBatchLineage(name, t))) {
    const parsed = parseOutputKey(key);
    if (parsed?.partition === p && key.endsWith('.lineage.json'))
      return key.slice('lineage/'.length, -'.lineage.json'.length);
  }
  return undefined;
}

/** The saved outputs of batch `t` (names from its manifest) and the parts whose lineage is stored. */
export async function outputPartsOf(store: ObjectStore, t: number): Promise<Map<string, number[]>> {
  const parts = new Map<string, number[]>();
  const manifest = await readJson<BatchManifest>(store, layout.manifest(t));
  for (const o of manifest?.outputs ?? []) {
    if (o.kind !== 'file') continue;
    const ps: number[] = [];
    for (const r of manifest?.outputLineage ?? []) {
      const parsed = parseOutputKey(r.key);
      if (parsed?.name === o.name && parsed.partition !== undefined) ps.push(parsed.partition);
    }
    for (const key of await store.list(layout.outputBatchLineage(o.name, t))) {
      const parsed = parseOutputKey(key);
      if (parsed?.partition !== undefined && key.endsWith('.lineage.json')) ps.push(parsed.partition);
    }
    if (ps.length > 0)
      parts.set(
        o.name,
        [...new Set(ps)].sort((a, b) => a - b),
      );
  }
  return parts;
}

export async function buildTree(store: ObjectStore, ref: ParentRef, maxDepth: number): Promise<LineageNode> {
  const seen = new Set<string>();
  const visit = async (
    r: ParentRef,
    depth: number,
    childPartition: number | undefined,
  ): Promise<LineageNode> => {
    const id = `${r.rddId}@${r.batchTimeMs}[${r.partition}]`;
    const base = { id, key: r.key, rddId: r.rddId, batchTimeMs: r.batchTimeMs, partition: r.partition };
    if (seen.has(id)) return { ...base, kind: 'repeat', parents: [] };
    if (depth > maxDepth) return { ...base, kind: 'truncated', parents: [] };
    seen.add(id);
    const record = await readLineage(store, r.key);
    if (!record) {
      const kind = r.key.startsWith('inputs/')
        ? 'input'
        : /^(rdd|shuffle|outputs)\//.test(r.key)
          ? 'missing'
          : 'dataset';
      return { ...base, kind, parents: [] };
    }
    const bucket = record.index && childPartition !== undefined ? record.index[childPartition] : undefined;
    const parents: LineageNode[] = [];
    for (const parent of record.parents) parents.push(await visit(parent, depth + 1, record.partition));
    return {
      ...base,
      rddId: record.rddId,
      kind: 'partition',
      record,
      ...(bucket ? { bucket: [bucket[0], bucket[1]] as const } : {}),
      parents,
    };
  };
  return visit(ref, 0, undefined);
}

function label(node: LineageNode): string {
  // stored datasets belong to no batch (their time is 0)
  return `${node.rddId}[${node.partition}]${node.batchTimeMs > 0 ? ` @${timeOfDay(node.batchTimeMs)}` : ''}`;
}

function describeNode(node: LineageNode): { head: string; details: string[] } {
  const r = node.record;
  switch (node.kind) {
    case 'partition': {
      const bucket = node.bucket ? ` (bucket read: ${formatBytes(node.bucket[1] - node.bucket[0])})` : '';
      return {
        head:
          `${label(node)}  ${r!.operator} · ${formatCount(r!.records)} records · ${formatBytes(r!.bytes)}${bucket} · ` +
          `crc ${r!.checksum} · attempt ${r!.attempt} · ${formatMs(r!.durationMs)} · stage ${r!.stageId}`,
        details: [`${node.key}`, `operators: ${r!.operators.join(' > ')}`],
      };
    }
    case 'input':
      return { head: `${label(node)}  input block (leaf): ${node.key}`, details: [] };
    case 'dataset':
      return { head: `${label(node)}  stored dataset (leaf): ${node.key}`, details: [] };
    case 'missing':
      return {
        head: `${label(node)}  not retained (cleaned up once no later batch reads it): ${node.key}`,
        details: [],
      };
    case 'repeat':
      return { head: `${label(node)}  (shown above)`, details: [] };
    case 'truncated':
      return { head: `${label(node)}  ... (deeper than --depth)`, details: [] };
  }
}

/** The tree as text, with box-drawing branches. */
export function renderTree(root: LineageNode): string[] {
  const lines: string[] = [];
  const walk = (node: LineageNode, prefix: string, isLast: boolean, isRoot: boolean) => {
    const { head, details } = describeNode(node);
    lines.push(`${prefix}${isRoot ? '' : isLast ? '└── ' : '├── '}${head}`);
    const childPrefix = prefix + (isRoot ? '' : isLast ? '    ' : '│   ');
    for (const d of details) lines.push(`${childPrefix}${node.parents.length > 0 ? '│ ' : '  '} ${d}`);
    node.parents.forEach((p, i) => {
      walk(p, childPrefix, i === node.parents.length - 1, false);
    });
  };
  walk(root, '', true, true);
  return lines;
}

const dotString = (text: string) => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** The lineage as a Graphviz DOT digraph, inputs on the left, the partition asked for on the right. */
export function toDot(root: LineageNode): string {
  const nodes = new Map<string, string>();
  const edges = new Set<string>();
  const walk = (node: LineageNode) => {
    if (!nodes.has(node.id) || node.kind === 'partition') {
      const r = node.record;
      const text =
        node.kind === 'partition'
          ? `${label(node)}\\n${r!.operators.join(' > ')}\\n${formatCount(r!.records)} records, ${formatBytes(r!.bytes)}\\ncrc ${r!.checksum}, attempt ${r!.attempt}, ${formatMs(r!.durationMs)}`
          : node.kind === 'input'
            ? `${label(node)}\\ninput block`
            : node.kind === 'dataset'
              ? `${label(node)}\\n${node.key}\\nstored dataset`
              : `${label(node)}\\n${node.kind === 'missing' ? 'cleaned up' : '...'}`;
      const shape =
        node.kind === 'partition'
          ? 'box'
          : node.kind === 'missing' || node.kind === 'truncated'
            ? 'box, style=dashed'
            : 'cylinder';
      const attrs = `label="${text.replace(/"/g, '\\"')}", shape=${shape}`;
      if (node.kind !== 'repeat' || !nodes.has(node.id)) nodes.set(node.id, attrs);
    }
    for (const p of node.parents) {
      edges.add(`  ${dotString(p.id)} -> ${dotString(node.id)};`);
      walk(p);
    }
  };
  walk(root);
  return [
    'digraph lineage {',
    '  rankdir=LR;',
    '  node [fontname="monospace", fontsize=10];',
    ...[...nodes].map(([key, attrs]) => `  ${dotString(key)} [${attrs}];`),
    ...edges,
    '}',
    '',
  ].join('\n');
}

export interface NameCount {
  readonly name: string;
  readonly partitions: number[];
}

/** Distinct names one level under `prefix`, with the partitions that have a lineage record. */
export async function listNames(store: ObjectStore, prefix: string): Promise<NameCount[]> {
  const byName = new Map<string, number[]>();
  for (const k of lineageDataKeys(await store.list(prefix))) {
    const [name, file] = k.slice(prefix.length).split('/');
    if (!name || !file) continue;
    const list = byName.get(name) ?? [];
    list.push(Number.parseInt(file.replace(/^part-/, ''), 10));
    byName.set(name, list);
  }
  return [...byName].map(([name, partitions]) => ({ name, partitions: partitions.sort((a, b) => a - b) }));
}

const ranges = (ps: readonly number[]) =>
  ps.length === 0
    ? 'none'
    : ps.length === ps[ps.length - 1]! - ps[0]! + 1
      ? `${ps[0]}-${ps[ps.length - 1]}`
      : ps.join(',');

/**
 * What a tiny batch (issue 11) held in memory instead of the store, by area and name: its lineage
 * records are in the batch's manifest (`memoryLineage`).
 */
async function inMemoryNames(store: ObjectStore, t: number): Promise<(NameCount & { area: string })[]> {
  const byName = new Map<string, { area: string; name: string; partitions: number[] }>();
  const prefix = (area: string) => `${area}/${timeKey(t)}/`;
  for (const r of (await memoryLineageOf(store, prefix('rdd'))) ?? []) {
    const area = r.key.startsWith('shuffle/') ? 'shuffle' : 'rdd';
    const name = r.key.slice(prefix(area).length).split('/')[0]!;
    const entry = byName.get(`${area}/${name}`) ?? { area, name, partitions: [] };
    entry.partitions.push(r.partition);
    byName.set(`${area}/${name}`, entry);
  }
  return [...byName.values()].map((e) => ({ ...e, partitions: e.partitions.sort((a, b) => a - b) }));
}

async function storedFor(store: ObjectStore, t: number): Promise<string[]> {
  const lines: string[] = [];
  for (const r of await listNames(store, `rdd/${timeKey(t)}/`))
    lines.push(`rdd      ${r.name}  (partitions ${ranges(r.partitions)})`);
  for (const s of await listNames(store, `shuffle/${timeKey(t)}/`)) {
    lines.push(`shuffle  shuffle:${s.name}  (map tasks ${ranges(s.partitions)})`);
  }
  for (const m of await inMemoryNames(store, t)) {
    const what =
      m.area === 'rdd' ? `rdd      ${m.name}  (partitions` : `shuffle  shuffle:${m.name}  (map tasks`;
    lines.push(`${what} ${ranges(m.partitions)}; a tiny batch run in the driver: lineage in its manifest)`);
  }
  for (const [name, ps] of await outputPartsOf(store, t)) {
    lines.push(`output   ${name}  (parts ${ranges(ps)} in ${layout.outputBatch(name, t)})`);
  }
  return lines;
}

async function whyNothing(opened: OpenedStore, t: number): Promise<string> {
  const meta = await readGraphMeta(opened);
  const times = await committedBatchTimes(opened.store);
  if ((t - meta.zeroTimeMs) % meta.batchIntervalMs !== 0) {
    return `${t} is not a batch time: batches are every ${formatMs(meta.batchIntervalMs)} from zero time ${meta.zeroTimeMs}. Committed batches: sluice status ${opened.flags}`;
  }
  const idle = idleSpanOf(await listIdleSpans(opened.store), t);
  if (idle) {
    return `The batch is idle: committed in the idle span ${idle.fromMs}..${idle.toMs} (idle/), it ran no task and stored nothing; every RDD of it reads as empty.`;
  }
  if (times.includes(t)) {
    return 'The batch is committed but its RDD partitions were cleaned up (they are kept only while later batches may read them; saved outputs stay).';
  }
  return `No batch ${t} was committed in this store. Committed batches: sluice status ${opened.flags}`;
}

async function notFoundMessage(opened: OpenedStore, rdd: string, t: number, p: number): Promise<string> {
  const lines = [
    `no lineage record for ${rdd} partition ${p} of batch ${timeOfDay(t)} (${t}) in ${opened.description}.`,
  ];
  const stored = await storedFor(opened.store, t);
  if (stored.length === 0) {
    lines.push(await whyNothing(opened, t));
  } else {
    lines.push('Stored for this batch (pick one):', ...stored.map((s) => `  ${s}`));
    const first =
      (await listNames(opened.store, `rdd/${timeKey(t)}/`))[0] ??
      (await inMemoryNames(opened.store, t)).find((m) => m.area === 'rdd');
    if (first)
      lines.push(
        `e.g. sluice lineage ${shellQuote(first.name)} ${t} ${first.partitions[0] ?? 0} ${opened.flags}`,
      );
    else lines.push(await whyNothing(opened, t));
  }
  return lines.join('\n');
}

export function requireLineageArgs(
  rdd: string | undefined,
  batchTime: string | undefined,
): asserts batchTime is string {
  if (!rdd || !batchTime) {
    const missing = rdd ? '<batch-time>' : '<rdd>';
    throw new ArgumentError(
      missing,
      'sluice lineage needs an RDD name and a batch time (and a partition, default 0); ' +
        "'sluice lineage --list <batch-time>' shows what a batch stored",
      `missing argument ${missing}: sluice lineage <rdd> <batch-time> [partition]; ` +
        "'sluice lineage --list [batch-time]' shows what is stored",
    );
  }
}
