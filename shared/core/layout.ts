/**
 * Where everything lives in the object store. One place, so the S3 and directory stores,
 * the driver, the executor and `sluice status` agree. Times are zero-padded epoch
 * milliseconds so that keys sort in time order.
 *
 *   meta/graph.json                               graph fingerprint, zero time, interval
 *   batches/<t>/received.json                     write-ahead entry: input blocks of the batch
 *   inputs/<t>/<stream>/<p>.blk                   input blocks
 *   inputs/<t>/<stream>/<p>.<seq>.blk             blocks written during the interval, listed in the
 *                                                 write-ahead entry (shared/core/receiver/)
 *   rdd/<t>/<rdd>/<p>.blk (+ .lineage.json)       materialized RDD partitions and their lineage
 *   shuffle/<t>/<shuffle>/<map>.blk (+ .lineage.json)   one object per map task, index in lineage
 *   manifests/<t>.json                            the batch's commit record
 *   outputs/<name>/dt=<YYYY-MM-DD>/hr=<HH>/batch=<t>/part-<ppppp>[.<ext>]
 *                                                 saved outputs, Hive-style partitions by the batch
 *                                                 time in UTC (+ _SUCCESS once the batch's parts are all written)
 *   lineage/outputs/<name>/.../part-<ppppp>[.<ext>].lineage.json
 *                                                 lineage of saved outputs: under its own prefix, never
 *                                                 beside the data (a reader of outputs/ sees data only)
 *   deadletter/<t>/<origin>.jsonl                 records that could not be used, with reasons
 *   lease/<epoch>.json (+ .released)              the driver lease (see lease.ts)
 *
 * Output keys (and their lineage keys) are made only by `outputKey` below: the replay feature
 * and `sluice lineage` read outputs back through `parseOutputKey`.
 *
 * @module
 */
export function timeKey(timeMs: number): string {
  return String(timeMs).padStart(15, '0');
}

export function parseTimeKey(text: string): number {
  return Number(text);
}

export const layout = {
  graph: () => 'meta/graph.json',
  received: (t: number) => `batches/${timeKey(t)}/received.json`,
  inputBlock: (t: number, stream: string, p: number) => `inputs/${timeKey(t)}/${stream}/${p}.blk`,
  rddPartition: (t: number, rdd: string, p: number) => `rdd/${timeKey(t)}/${rdd}/${p}.blk`,
  shuffleOutput: (t: number, shuffle: string, map: number) => `shuffle/${timeKey(t)}/${shuffle}/${map}.blk`,
  /** The lineage record of a data object: beside it, except for saved outputs (under `lineage/`). */
  lineageOf: (dataKey: string) =>
    dataKey.startsWith(OUTPUTS) ? `${LINEAGE}${dataKey}.lineage.json` : `${dataKey}.lineage.json`,
  manifest: (t: number) => `manifests/${timeKey(t)}.json`,
  manifestsPrefix: () => 'manifests/',
  /** Part `p` of output `name` in batch `t`; `ext` is '' or starts with a dot. */
  output: (name: string, t: number, p: number, ext: string) =>
    outputKey(name, t, `part-${String(p).padStart(5, '0')}${ext}`),
  /** Written by the driver once every part of the batch is written: the batch's output is complete. */
  outputSuccess: (name: string, t: number) => outputKey(name, t, SUCCESS),
  /** The folder of one batch of an output (ends with '/'). */
  outputBatch: (name: string, t: number) => outputKey(name, t, ''),
  /** Everything saved under output `name` (ends with '/'). */
  outputsOf: (name: string) => `${OUTPUTS}${name}/`,
  /** The lineage records of one batch of output `name` (ends with '/'). */
  outputBatchLineage: (name: string, t: number) => `${LINEAGE}${outputKey(name, t, '')}`,
  /** The lineage records of output `name` (or of every output). */
  outputLineagePrefix: (name?: string) => `${LINEAGE}${OUTPUTS}${name === undefined ? '' : `${name}/`}`,
  /** Where the saved outputs of every batch live (list it, then `outputDirsOf`). */
  outputsPrefix: () => OUTPUTS,
  deadLetter: (t: number, origin: string) => `deadletter/${timeKey(t)}/${origin}.jsonl`,
};

const OUTPUTS = 'outputs/';
const LINEAGE = 'lineage/';
const SUCCESS = '_SUCCESS';

/**
 * The one function that makes saved-output keys:
 * `outputs/<name>/dt=YYYY-MM-DD/hr=HH/batch=<t>/<file>`, with the date and hour of the batch
 * time `t` in UTC and `t` in epoch milliseconds (not padded: 13 digits until the year 2286).
 */
export function outputKey(name: string, t: number, file: string): string {
  const iso = new Date(t).toISOString(); // 2026-11-29T12:31:43.000Z
  return `${OUTPUTS}${name}/dt=${iso.slice(0, 10)}/hr=${iso.slice(11, 13)}/batch=${t}/${file}`;
}

export interface OutputKey {
  /** The output's name (the prefix given to saveAsJsonLines and the like). */
  readonly name: string;
  readonly batchTimeMs: number;
  /** `part-00003.jsonl`, `_SUCCESS`, or '' for a batch folder. */
  readonly file: string;
  /** The part number, for part files. */
  readonly partition?: number;
}

const OUTPUT_KEY =
  /^(?:lineage\/)?outputs\/(.+)\/dt=\d{4}-\d{2}-\d{2}\/hr=\d{2}\/batch=(\d+)\/([^/]*?)(?:\.lineage\.json)?$/;

/** Reads an output key (or the key of its lineage record) back; undefined for any other key. */
export function parseOutputKey(key: string): OutputKey | undefined {
  const m = OUTPUT_KEY.exec(key);
  if (!m) return undefined;
  const t = Number(m[2]);
  if (outputKey(m[1]!, t, m[3]!) !== key.replace(/^lineage\//, '').replace(/\.lineage\.json$/, ''))
    return undefined;
  const part = /^part-(\d+)/.exec(m[3]!);
  return { name: m[1]!, batchTimeMs: t, file: m[3]!, ...(part ? { partition: Number(part[1]) } : {}) };
}

/** One batch of a saved output: its folder, batch time and file suffix. */
export interface OutputDir {
  /** The batch folder, `outputs/<name>/dt=.../hr=.../batch=<t>/`. */
  readonly dir: string;
  readonly prefix: string;
  readonly batchTimeMs: number;
  /** The part files' suffix without the dot (`jsonl`, `parquet`, '' for text files). */
  readonly suffix: string;
}

/**
 * The batches of output `prefix` among store keys (from `store.list(layout.outputsPrefix())`),
 * oldest first, with the keys of their part files and whether `_SUCCESS` was written: the reader's
 * side of `outputKey` (outputs as the input of another pipeline, `sluice batch --input store:`).
 */
export function outputDirsOf(
  keys: readonly string[],
  prefix: string,
): (OutputDir & { readonly parts: string[]; readonly complete: boolean })[] {
  const byTime = new Map<number, { parts: string[]; complete: boolean; suffix: string }>();
  for (const key of keys) {
    const k = parseOutputKey(key);
    if (!k || k.name !== prefix || key.startsWith(LINEAGE)) continue;
    const entry = byTime.get(k.batchTimeMs) ?? { parts: [], complete: false, suffix: '' };
    byTime.set(k.batchTimeMs, entry);
    if (k.file === SUCCESS) entry.complete = true;
    else if (k.partition !== undefined) {
      entry.parts.push(key);
      const dot = k.file.indexOf('.');
      if (dot >= 0) entry.suffix = k.file.slice(dot + 1);
    }
  }
  return [...byTime.entries()]
    .map(([t, e]) => ({
      dir: outputKey(prefix, t, ''),
      prefix,
      batchTimeMs: t,
      suffix: e.suffix,
      parts: e.parts.sort(),
      complete: e.complete,
    }))
    .sort((a, b) => a.batchTimeMs - b.batchTimeMs);
}
