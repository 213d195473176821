/**
 * DStreams: the class (dstream.ts) and its families of operators, each in its own module
 * (windows, joins, state, outputs). This module is where DStream is imported from: it loads the
 * class first, then the families, which declare their methods on it and add them to it.
 *
 * @module
 */
import './dstream-joins.ts';
import './dstream-outputs.ts';
import './dstream-windows.ts';
import './stateful-streams.ts';

export * from './dstream.ts';
export { MapWithStateDStream } from './stateful-streams.ts';
