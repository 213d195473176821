/**
 * Summarizes V8 CPU profiles (`node --cpu-prof`): the functions with the most self time.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/run.ts --only grep \
 *     --intervals 1000 --workers 1 --rate 600000 --batches 10
 *   npx tsx bench/profile-top.ts /tmp/prof [--top 25] [--lines 5]
 *
 * `--lines N` also shows the hottest source lines of the top N functions (from V8's position
 * ticks; lines of the transpiled TypeScript, which tsx keeps close to the source).
 *
 * Every thread writes its own profile (the driver and each worker thread); each is summarized
 * on its own, largest first.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
  positionTicks?: { line: number; ticks: number }[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const clean = url.replace(/^file:\/\//, '').replace(/\?.*$/, '');
  const nm = clean.lastIndexOf('node_modules/');
  if (nm >= 0) return clean.slice(nm + 'node_modules/'.length);
  const cwd = `${process.cwd()}/`;
  return clean.startsWith(cwd) ? clean.slice(cwd.length) : clean;
}

export function summarize(profile: Profile, top: number, hotLines = 0): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, number>();
  const ticksByFunction = new Map<string, Map<number, number>>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const f = node.callFrame;
    total += us;
    if (f.functionName === '(idle)') idle += us;
    const key = `${f.functionName || '(anonymous)'}  ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    for (const t of node.positionTicks ?? []) {
      let m = ticksByFunction.get(key);
      if (!m) ticksByFunction.set(key, (m = new Map()));
      m.set(t.line, (m.get(t.line) ?? 0) + t.ticks);
    }
  }
  const busy = total - idle;
  const rows = [...byFunction.entries()]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  const lines = [
    `  ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / Math.max(1, total)).toFixed(0)}%)`,
  ];
  rows.forEach(([k, us], i) => {
    lines.push(
      `  ${((100 * us) / Math.max(1, busy)).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`,
    );
    const ticks = ticksByFunction.get(k);
    if (i < hotLines && ticks) {
      const sum = [...ticks.values()].reduce((a, b) => a + b, 0);
      const hot = [...ticks.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4);
      lines.push(
        `           lines: ${hot.map(([l, t]) => `${l} (${((100 * t) / sum).toFixed(0)}%)`).join(', ')}`,
      );
    }
  });
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, lines: { type: 'string', default: '0' } },
  });
  const top = Number(values.top);
  const hotLines = Number(values.lines);
  const files: string[] = [];
  for (const p of positionals) {
    const stat = await fs.stat(p);
    if (stat.isDirectory()) {
      for (const f of await fs.readdir(p)) if (f.endsWith('.cpuprofile')) files.push(path.join(p, f));
    } else files.push(p);
  }
  if (files.length === 0)
    throw new Error('usage: tsx bench/profile-top.ts <dir or .cpuprofile files> [--top N]');
  const profiles = await Promise.all(
    files.map(async (f) => ({ file: f, profile: JSON.parse(await fs.readFile(f, 'utf8')) as Profile })),
  );
  profiles.sort(
    (a, b) => b.profile.endTime - b.profile.startTime - (a.profile.endTime - a.profile.startTime),
  );
  for (const { file, profile } of profiles) {
    process.stdout.write(`${path.basename(file)}\n${summarize(profile, top, hotLines)}\n\n`);
  }
}

await main();
