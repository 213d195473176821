/**
 * Entry of the `sluice` command (bin/sluice.js imports it: through tsx from the sources, compiled when installed).
 *
 * @module
 */
import { main } from './program.ts';

// `sluice status | head`: the reader went away; that is not an error
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const code = await main(process.argv);
process.exitCode = code;
// Everything the CLI opens is closed by now; should a user's pipeline leave a handle open
// (a socket, a timer), do not hang after the summary. The timer is unref'd: it only fires
// if something else keeps the process alive.
setTimeout(() => process.exit(code), 2000).unref();
