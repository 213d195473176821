// Entry of a bare-loop worker thread (bench/bare.ts, measureBareThreads): registers the
// TypeScript loader, then loads bare.ts, which runs its worker side. Plain JavaScript so that it
// loads under Node.js without any flag.
import { register } from 'tsx/esm/api';

register();
await import('./bare.ts');
