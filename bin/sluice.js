#!/usr/bin/env node
// The `sluice` command: registers the TypeScript loader (tsx), then runs the CLI (cli/main.ts).
// Plain JavaScript so that it runs under Node.js 20 without any flag.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
