/**
 * Where everything lives in the object store. One place, so the S3 and directory stores,
 * the driver, the executor and `sluice status` agree. Times are zero-padded epoch
 * milliseconds so that keys sort in time order.
 *
 *   meta/graph.json                               graph fingerprint, zero time, interval
 *   batches/<t>/received.json                     write-ahead entry: input blocks of the batch
 *   inputs/<t>/<stream>/<p>.blk                   input blocks
 *   rdd/<t>/<rdd>/<p>.blk (+ .lineage.json)       materialized RDD partitions and their lineage
 *   shuffle/<t>/<shuffle>/<map>.blk (+ .lineage.json)   one object per map task, index in lineage
 *   manifests/<t>.json                            the batch's commit record
 *   outputs/<prefix>-<t>[.<suffix>]/part-<p>      saved outputs (+ _SUCCESS)
 *   deadletter/<t>/<origin>.jsonl                 records that could not be used, with reasons
 *   lease/<epoch>.json (+ .released)              the driver lease (see lease.ts)
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
  lineageOf: (dataKey: string) => `${dataKey}.lineage.json`,
  manifest: (t: number) => `manifests/${timeKey(t)}.json`,
  manifestsPrefix: () => 'manifests/',
  /** The directory of a saved output of batch t: `<prefix>-<t>[.<suffix>]` (under `outputs/`). */
  outputDir: (prefix: string, t: number, suffix?: string) => `${prefix}-${t}${suffix ? `.${suffix}` : ''}`,
  /** Where the saved outputs of every batch live (list it, then `parseOutputDir` each directory). */
  outputsPrefix: () => 'outputs/',
  output: (dir: string, p: number, ext: string) => `outputs/${dir}/part-${String(p).padStart(5, '0')}${ext}`,
  outputSuccess: (dir: string) => `outputs/${dir}/_SUCCESS`,
  deadLetter: (t: number, origin: string) => `deadletter/${timeKey(t)}/${origin}.jsonl`,
};

/** A saved output directory as `layout.outputDir` names it: its prefix, batch time and suffix. */
export interface OutputDir {
  readonly dir: string;
  readonly prefix: string;
  readonly batchTimeMs: number;
  readonly suffix: string;
}

/**
 * The output directories of `prefix` among store keys (from `store.list(layout.outputsPrefix())`),
 * oldest first, with the keys of their part files and whether `_SUCCESS` was written. The one
 * place that knows how output keys are laid out, for readers (outputs as the input of another
 * pipeline, `sluice batch --input store:`).
 */
export function outputDirsOf(
  keys: readonly string[],
  prefix: string,
): (OutputDir & { readonly parts: string[]; readonly complete: boolean })[] {
  const byDir = new Map<string, { parts: string[]; complete: boolean }>();
  const root = layout.outputsPrefix();
  for (const key of keys) {
    if (!key.startsWith(root)) continue;
    const rest = key.slice(root.length);
    const slash = rest.indexOf('/');
    if (slash < 0) continue;
    const dir = rest.slice(0, slash);
    const file = rest.slice(slash + 1);
    const entry = byDir.get(dir) ?? { parts: [], complete: false };
    byDir.set(dir, entry);
    if (file === '_SUCCESS') entry.complete = true;
    else if (file.startsWith('part-') && !file.endsWith('.json')) entry.parts.push(key);
  }
  const out: (OutputDir & { parts: string[]; complete: boolean })[] = [];
  const re = /^(.*)-(\d+)(?:\.([^./]+))?$/;
  for (const [dir, entry] of byDir) {
    const m = re.exec(dir);
    if (!m || m[1] !== prefix) continue;
    out.push({
      dir,
      prefix,
      batchTimeMs: Number(m[2]),
      suffix: m[3] ?? '',
      ...entry,
      parts: entry.parts.sort(),
    });
  }
  return out.sort((a, b) => a.batchTimeMs - b.batchTimeMs);
}
