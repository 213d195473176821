/**
 * The README's `runBatches` example, run as written: the code block is taken from README.md,
 * compiled, run against this checkout's `runBatches`, and its result compared with the comment
 * that shows it. A change to the code or to the result order fails here until the README says so.
 */
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { runBatches } from '../../shared/index.ts';

const README = new URL('../../README.md', import.meta.url);

/** The ```ts blocks of a markdown text. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The value shown in the block's last `// ...` comment (a JS literal with single quotes). */
function shownResult(block: string): unknown {
  const comment = block
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('// '))
    .at(-1);
  if (!comment) throw new Error('the README example shows no result comment');
  return JSON.parse(comment.slice(3).replaceAll("'", '"'));
}

async function runBlock(block: string): Promise<unknown> {
  const body = block.replace(/^import .*$/gm, ''); // runBatches is passed in below
  const js = ts.transpileModule(body, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  }).outputText;
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
    ...args: string[]
  ) => (...a: unknown[]) => Promise<unknown>;
  return new AsyncFunction('runBatches', `${js}\nreturn out;`)(runBatches);
}

describe('README.md', () => {
  it('the runBatches example returns what the README shows, in the documented order', async () => {
    const block = tsBlocks(readFileSync(README, 'utf8')).find((b) => b.includes('await runBatches('));
    expect(block, 'a ```ts block calling runBatches in README.md').toBeDefined();
    const shown = shownResult(block!);
    expect(await runBlock(block!)).toEqual(shown);
  });
});
