/**
 * Errors of the command line. Each says what went wrong and what to do; `main.ts` turns them into
 * one line on stderr and an exit code (2 for a bad option value, 1 for everything else), without a
 * stack trace unless SLUICE_DEBUG=1.
 *
 * @module
 */
import { type ConfigError, SluiceError } from '../shared/errors.ts';

/** A command-line option with a value the CLI cannot use. Exit code 2. */
export class UsageError extends SluiceError {
  /** The flag as typed, e.g. `--partitions`. */
  readonly option: string;
  readonly detail: string;
  constructor(option: string, detail: string, message = `invalid option '${option}': ${detail}`) {
    super(message);
    this.name = 'UsageError';
    this.option = option;
    this.detail = detail;
  }
}

/** A required command-line argument is missing or wrong. Exit code 2. */
export class ArgumentError extends UsageError {
  constructor(argument: string, detail: string, message = `invalid argument ${argument}: ${detail}`) {
    super(argument, detail, message);
    this.name = 'ArgumentError';
  }
}

/** Something the user can fix that is not an option value (no store there, no such record). Exit code 1. */
export class CliError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** Engine option names (ConfigError.option) and the `sluice run` flag that sets each. */
const FLAG_OF_ENGINE_OPTION: Readonly<Record<string, string>> = {
  rate: '--rate',
  source: '--source',
  dataset: '--dataset',
  format: '--format',
  workers: '--workers',
  batchIntervalMs: '--interval',
  partitions: '--partitions',
  maxRecordsPerBatch: '--max-records',
  skipBatch: '--skip-batch',
  store: '--store',
};

/** A ConfigError from the engine as the CLI flag the user typed, when there is one. */
export function usageErrorFromConfig(err: ConfigError): UsageError | undefined {
  const flag = FLAG_OF_ENGINE_OPTION[err.option];
  if (!flag) return undefined;
  const detail = err.message.replace(/^Invalid option '[^']*': /, '');
  return new UsageError(flag, detail);
}

/** A UsageError for a flag (`--x`), an ArgumentError for a positional argument (`<x>`). */
export function badValue(name: string, detail: string): UsageError {
  return name.startsWith('<') ? new ArgumentError(name, detail) : new UsageError(name, detail);
}
