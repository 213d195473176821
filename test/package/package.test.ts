/**
 * Sluice as users install it: `npm pack` (which builds dist/ first, through `prepack`), the tarball
 * installed into a fresh project under test/.tmp that has no TypeScript and no tsx of its own, then
 * used the three ways the README shows: `import { runBatches } from 'sluice'` from an `.mjs` test,
 * `npx sluice run` on a `.ts` and an `.mjs` pipeline module, and `new SluicePipeline(...)` in a
 * TypeScript CDK app of the shape `cdk init app` makes, synthesized with local esbuild (never
 * Docker) under cdk-nag's AwsSolutions checks.
 *
 * The install uses npm's cache (`--prefer-offline`): the package's dependencies are the ones the
 * repository's own `npm ci` put there. The CDK app's own devDependencies (aws-cdk-lib, constructs,
 * cdk-nag, @types/node) are linked from the repository's node_modules instead of copied, as a
 * hundreds-of-megabytes install would be the slowest part of the test and proves nothing about Sluice.
 */
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WORK = path.join(ROOT, 'test/.tmp', `package-${process.pid}`);
const APP = path.join(WORK, 'app');
let tarball = '';

function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 540_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function write(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

/** Every committed output record under a store's outputs/ (part files only, not lineage or markers). */
function outputRecords(storeDir: string): unknown[] {
  const dir = path.join(storeDir, 'outputs');
  const files = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /^part-\d+(\.jsonl)?$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
  return files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l)),
  );
}

function countsByPage(records: unknown[]): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const [page, n] of records as [string, number][]) totals[page] = (totals[page] ?? 0) + n;
  return totals;
}

const CLICKS = ['{"page":"/a"}', '{"page":"/b"}', '{"page":"/a"}', '{"page":"/c"}', '{"page":"/a"}'];

const TS_PIPELINE = `import type { StreamingContext } from 'sluice';

interface Click {
  readonly page: string;
}

export const options = { batchIntervalMs: 200, partitions: 2 };

export default function clicks(ctx: StreamingContext): void {
  ctx
    .inputStream<Click>()
    .map((c): [string, number] => [c.page, 1])
    .reduceByKey((a, b) => a + b)
    .saveAsTextFiles('clicks-per-page');
}
`;

const MJS_PIPELINE = `export const options = { batchIntervalMs: 200, partitions: 2 };

export default function clicks(ctx) {
  ctx
    .inputStream()
    .map((c) => [c.page, 1])
    .reduceByKey((a, b) => a + b)
    .saveAsTextFiles('clicks-per-page');
}
`;

beforeAll(() => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(APP, { recursive: true });
  // `npm pack` runs `prepack` (npm run build), so the tarball always holds a fresh dist/.
  const packed = ok(run('npm', ['pack', '--pack-destination', WORK, '--silent'], ROOT), 'npm pack');
  tarball = path.join(WORK, packed.trim().split('\n').pop()!.trim());
  write(
    path.join(APP, 'package.json'),
    `${JSON.stringify({ name: 'clicks-app', version: '0.1.0', private: true }, null, 2)}\n`,
  );
  ok(
    run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], APP),
    'npm install <tarball>',
  );
}, 600_000);

describe('the npm package', () => {
  it('holds the compiled engine with its types, the bin and the docs, and no sources or tests', () => {
    const files = ok(run('tar', ['-tzf', tarball], WORK), 'tar')
      .split('\n')
      .filter(Boolean);
    for (const f of [
      'package/package.json',
      'package/bin/sluice.js',
      'package/dist/shared/index.js',
      'package/dist/shared/index.d.ts',
      'package/dist/shared/engine.js',
      'package/dist/aws/index.js',
      'package/dist/infra/index.js',
      'package/dist/infra/index.d.ts',
      'package/dist/functions/scheduler.js',
      'package/dist/cli/ui/assets/index.html',
      'package/dist/cli/ui/assets/app.js',
      'package/dist/functions/partition.js',
      'package/dist/functions/recovery.js',
      'package/dist/shared/local/worker.js',
      'package/dist/cli/main.js',
    ]) {
      expect(files, f).toContain(f);
    }
    const stray = files.filter(
      (f) =>
        /^package\/(shared|cli|aws|infra|functions|test|examples|bench)\//.test(f) || /(?<!\.d)\.ts$/.test(f),
    );
    expect(stray).toEqual([]);
  });

  it('is installed into a project with no TypeScript and no tsx of its own', () => {
    const pkg = JSON.parse(readFileSync(path.join(APP, 'package.json'), 'utf8'));
    expect(Object.keys(pkg.dependencies)).toEqual(['sluice']);
    expect(pkg.devDependencies).toBeUndefined();
    // the installed package is the tarball's copy, not a link back into this repository
    expect(
      realpathSync(path.join(APP, 'node_modules/sluice')).startsWith(ROOT + path.sep + 'node_modules'),
    ).toBe(false);
    expect(existsSync(path.join(APP, 'node_modules/sluice/dist/shared/index.js'))).toBe(true);
    expect(existsSync(path.join(APP, 'node_modules/sluice/shared'))).toBe(false);
  });

  it("an .mjs test imports runBatches (and the subpaths) from 'sluice' and runs it", () => {
    write(
      path.join(APP, 'wordcount.test.mjs'),
      `import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runBatches, StreamingContext } from 'sluice';
import * as engine from 'sluice/engine';
import * as aws from 'sluice/aws';

test('word counts per batch', async () => {
  const out = await runBatches([['a b', 'a'], ['b']], (lines) =>
    lines.flatMap((l) => l.split(' ')).map((w) => [w, 1]).reduceByKey((a, b) => a + b),
  );
  assert.deepEqual(out.map((batch) => [...batch].sort()), [[['a', 2], ['b', 1]], [['b', 1]]]);
  assert.equal(engine.StreamingContext, StreamingContext);
  assert.equal(typeof engine.stableHash, 'function');
  assert.equal(typeof aws.SqsSource, 'function');
});
`,
    );
    const r = run(process.execPath, ['--test', 'wordcount.test.mjs'], APP);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/# pass 1/);
  });

  it.each(['clicks.ts', 'clicks.mjs'])(
    'npx sluice run runs a user pipeline module %s on worker threads',
    (file) => {
      const module = path.join('src', file);
      write(path.join(APP, module), file.endsWith('.ts') ? TS_PIPELINE : MJS_PIPELINE);
      write(path.join(APP, 'clicks.jsonl'), `${CLICKS.join('\n')}\n`);
      const store = path.join('.sluice', file.replace('.', '-'));
      const args = ['sluice', 'run', module, '--source', 'file:clicks.jsonl', '--format', 'json'];
      args.push('--batches', '3', '--workers', '2', '--store', store, '--fresh', '--quiet');
      const r = run('npx', ['--no-install', ...args], APP);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(countsByPage(outputRecords(path.join(APP, store)))).toEqual({ '/a': 3, '/b': 1, '/c': 1 });
    },
  );

  it('sluice ui serves its page, scripts and charts from the installed package', async () => {
    write(path.join(APP, 'src/clicks.mjs'), MJS_PIPELINE);
    write(path.join(APP, 'clicks.jsonl'), `${CLICKS.join('\n')}\n`);
    const store = path.join('.sluice', 'ui-store');
    ok(
      run(
        'npx',
        [
          '--no-install',
          'sluice',
          'run',
          'src/clicks.mjs',
          '--source',
          'file:clicks.jsonl',
          '--format',
          'json',
        ].concat(['--batches', '2', '--store', store, '--fresh', '--quiet']),
        APP,
      ),
      'sluice run',
    );
    const child = spawn(
      process.execPath,
      [path.join(APP, 'node_modules/sluice/bin/sluice.js'), 'ui', '--store', store, '--port', '0'],
      { cwd: APP, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let text = '';
        const onData = (chunk: Buffer) => {
          text += chunk.toString();
          const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(text);
          if (m) resolve(m[0]);
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('exit', (code) => reject(new Error(`sluice ui exited ${code}: ${text}`)));
      });
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<script[^>]+app\.js/);
      for (const asset of ['app.js', 'style.css', 'uplot.js', 'uplot.css']) {
        const r = await fetch(new URL(`assets/${asset}`, url));
        expect(r.status, asset).toBe(200);
        expect((await r.text()).length, asset).toBeGreaterThan(100);
      }
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('npx sluice --version reads the installed package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(ok(run('npx', ['--no-install', 'sluice', '--version'], APP), 'sluice --version').trim()).toBe(
      pkg.version,
    );
  });

  it('a TypeScript CDK app with new SluicePipeline(...) type-checks, synthesizes with local esbuild and passes cdk-nag', () => {
    // The user's devDependencies, linked from this repository's install (see the file comment).
    for (const dep of ['aws-cdk-lib', 'constructs', 'cdk-nag', '@types/node']) {
      const link = path.join(APP, 'node_modules', dep);
      rmSync(link, { recursive: true, force: true });
      mkdirSync(path.dirname(link), { recursive: true });
      symlinkSync(realpathSync(path.join(ROOT, 'node_modules', dep)), link);
    }
    // The files `cdk init app --language typescript` makes, with the stack using Sluice.
    write(path.join(APP, 'src/clicks.ts'), TS_PIPELINE);
    write(
      path.join(APP, 'cdk.json'),
      `${JSON.stringify({ app: 'npx tsc && npx tsx bin/clicks.ts' }, null, 2)}\n`,
    );
    write(
      path.join(APP, 'tsconfig.json'),
      `${JSON.stringify(
        {
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            lib: ['es2022'],
            declaration: true,
            strict: true,
            noImplicitAny: true,
            noImplicitReturns: true,
            inlineSourceMap: true,
            experimentalDecorators: true,
            strictPropertyInitialization: false,
            skipLibCheck: true,
            typeRoots: ['./node_modules/@types'],
            noEmit: true,
            isolatedModules: true,
            types: ['node'],
          },
          exclude: ['node_modules', 'cdk.out'],
        },
        null,
        2,
      )}\n`,
    );
    write(
      path.join(APP, 'bin/clicks.ts'),
      `#!/usr/bin/env node
import * as cdk from 'aws-cdk-lib/core';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ClicksStack } from '../lib/clicks-stack';

const app = new cdk.App();
new ClicksStack(app, 'ClicksStack', {});
cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
`,
    );
    write(
      path.join(APP, 'lib/clicks-stack.ts'),
      `import * as cdk from 'aws-cdk-lib/core';
import { Construct } from 'constructs';
import { SluicePipeline } from 'sluice/cdk';

export class ClicksStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props?: cdk.StackProps) {
    super(scope, id, props);
    const clicks = new SluicePipeline(this, 'Clicks', {
      pipeline: 'src/clicks.ts',
      batchInterval: cdk.Duration.seconds(1),
      partitions: 4,
    });
    new cdk.CfnOutput(this, 'QueueUrl', { value: clicks.inputQueue.queueUrl });
  }
}
`,
    );
    // `npx tsc` of cdk.json: the package's .d.ts types check in the user's project.
    const tsc = run(
      process.execPath,
      [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
      APP,
    );
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);

    // `npx tsx bin/clicks.ts` of cdk.json (tsx comes with sluice), as `cdk synth` runs it. No Docker:
    // CDK_DOCKER names a command that does not exist, so a Docker fallback would fail the synth.
    const out = path.join(WORK, 'cdk.out');
    const synth = run('npx', ['--no-install', 'tsx', 'bin/clicks.ts'], APP, {
      CDK_OUTDIR: out,
      CDK_DOCKER: path.join(WORK, 'no-docker-here'),
    });
    expect(synth.status, synth.stdout + synth.stderr).toBe(0);
    expect(synth.stdout + synth.stderr).not.toMatch(/AwsSolutions-|docker/i);

    const template = JSON.parse(readFileSync(path.join(out, 'ClicksStack.template.json'), 'utf8'));
    const functions = Object.values(
      template.Resources as Record<string, { Type: string; Properties: any }>,
    ).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(3);
    // Each function's bundle holds the handler and the user's pipeline module, with the engine inlined.
    for (const fn of functions) {
      expect(fn.Properties.Handler).toBe('index.handler');
      const asset = fn.Properties.Code.S3Key.replace(/\.zip$/, '');
      const bundle = readFileSync(path.join(out, `asset.${asset}`, 'index.mjs'), 'utf8');
      expect(bundle).toContain('saveAsTextFiles("clicks-per-page")');
      expect(bundle).not.toMatch(/from ["']sluice(\/[a-z]+)?["']/);
      expect(bundle).toMatch(/export\s*\{[^}]*\bhandler\b/);
    }
  });
});
