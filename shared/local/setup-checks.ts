/**
 * Checks of what `sluice run` is pointed at, before anything runs, so that a mistake in the
 * setup is a usage error naming the option and what is wrong (exit 2), not an "unexpected error"
 * from deep inside the first write: a store directory that is a file or cannot be written, a file
 * source that is a directory or does not exist.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.ts';

const code = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** Creates the store directory if needed and checks that it is a directory this process can write. */
export async function checkStoreDir(dir: string): Promise<void> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (stat && !stat.isDirectory())
    throw new ConfigError(
      'store',
      `${dir} is a file, not a directory: pass a directory for the store (it is created if missing)`,
    );
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (err) {
    const c = code(err);
    const why =
      c === 'ENOTDIR' || c === 'EEXIST'
        ? 'a part of the path is a file, not a directory'
        : c === 'EACCES' || c === 'EPERM' || c === 'EROFS'
          ? 'permission denied (or a read-only file system)'
          : `cannot create it (${c ?? (err as Error).message})`;
    throw new ConfigError('store', `cannot use ${dir} as the store directory: ${why}`);
  }
  try {
    await fs.access(dir, constants.W_OK | constants.X_OK);
    // access() says yes to root on a read-only mount: try a write
    const probe = path.join(dir, `.write-check-${process.pid}`);
    await fs.writeFile(probe, '');
    await fs.rm(probe, { force: true });
  } catch (err) {
    throw new ConfigError(
      'store',
      `cannot write to the store directory ${dir} (${code(err) ?? (err as Error).message}): choose another with --store, or fix its permissions`,
    );
  }
}

/** Checks that a file source's path is a readable file. */
export async function checkSourceFile(file: string): Promise<void> {
  const stat = await fs.stat(file).catch((err: unknown) => {
    throw new ConfigError(
      'source',
      code(err) === 'ENOENT'
        ? `file source: ${file} does not exist`
        : `file source: cannot read ${file} (${code(err)})`,
    );
  });
  if (stat.isDirectory())
    throw new ConfigError(
      'source',
      `file source: ${file} is a directory; --source file:<path> reads one file`,
    );
  await fs.access(file, constants.R_OK).catch((err: unknown) => {
    throw new ConfigError('source', `file source: cannot read ${file} (${code(err)})`);
  });
}
