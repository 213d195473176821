// Entry of a worker thread: registers the TypeScript loader, then runs the worker (worker.ts).
// Plain JavaScript so that it loads under Node.js without any flag.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
