#!/usr/bin/env node
// The `sluice` command. Installed from npm, it runs the compiled CLI (dist/cli/main.js) and loads
// TypeScript (through tsx) only for a `.ts` pipeline module. In this repository, where the sources
// are present, it registers tsx and runs cli/main.ts, so no build step is needed during development.
// Plain JavaScript so that it runs under Node.js 20 without any flag.
import { existsSync } from 'node:fs';

const source = new URL('../cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/cli/main.js');
}
