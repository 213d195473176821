/**
 * The ObjectStore conformance suite (test/conformance/object-store.ts) over the local stores: in
 * memory, and on a directory. The S3 store runs it in test/integration/s3-object-store.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { DirectoryObjectStore, MemoryObjectStore } from '../../shared/index.ts';
import { objectStoreConformance } from '../conformance/object-store.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

objectStoreConformance('memory', { open: () => new MemoryObjectStore() });

objectStoreConformance('directory', {
  open: () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-store-'));
    dirs.push(dir);
    return new DirectoryObjectStore(dir);
  },
});
