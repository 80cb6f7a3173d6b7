// Exit codes of `pinreset` (cli/main.ts) and the errors that choose them. Messages name the
// argument, variable, file or run at fault, never a customer's data.
import { ConfigError } from '../config';

export const EXIT = {
  /** Done (for `start --wait` / `redrive --wait`: the run completed). */
  OK: 0,
  /** Runtime failure: unknown run, Temporal or PostgreSQL unreachable, no worker answered, the run was cancelled (--wait). */
  FAILURE: 1,
  /** Bad arguments or configuration: nothing was started or changed. */
  USAGE: 2,
} as const;

/** A bad argument or a refused input: exit 2, nothing started. */
export class UsageError extends Error {
  readonly exitCode = EXIT.USAGE;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Something that failed at run time (unknown run, server down, no worker...): exit 1. */
export class RuntimeFailure extends Error {
  readonly exitCode = EXIT.FAILURE;
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeFailure';
  }
}

export class UnknownRunError extends RuntimeFailure {
  constructor(runId: string) {
    super(`unknown run ${JSON.stringify(runId)}: no such run in the database (see \`pinreset list\`)`);
    this.name = 'UnknownRunError';
  }
}

/**
 * startRun's RunInputError (bad parameters, duplicate run id), recognised by name: importing
 * start-run here would load the workflow code just to print an argument error.
 */
function isRunInputError(err: unknown): err is Error & { problems: string[] } {
  return err instanceof Error && err.name === 'RunInputError' && Array.isArray((err as { problems?: unknown }).problems);
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError || err instanceof ConfigError || isRunInputError(err)) return EXIT.USAGE;
  return EXIT.FAILURE;
}

/** One line (config and run-input errors list several problems: joined with "; "). */
export function errorLine(err: unknown): string {
  if (err instanceof ConfigError || isRunInputError(err)) {
    const what = err instanceof ConfigError ? 'invalid configuration' : 'cannot start the run';
    return `${what}: ${err.problems.join('; ')}`;
  }
  const e = err as { message?: string; code?: string };
  return (e?.message ?? String(err)).replace(/\s*\n\s*/g, '; ');
}
