// The run API's errors and the exit codes of `pinreset` (cli/main.ts) they choose. Messages name the
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
export class OperationFailedError extends Error {
  readonly exitCode = EXIT.FAILURE;
  constructor(message: string) {
    super(message);
    this.name = 'OperationFailedError';
  }
}

export class UnknownRunError extends OperationFailedError {
  constructor(runId: string) {
    super(`unknown run ${JSON.stringify(runId)}: no such run in the database (see \`pinreset list\`)`);
    this.name = 'UnknownRunError';
  }
}

/** Parameters or a cohort that a run cannot start with (bad values, duplicate run id, accounts held by a live run): exit 2. */
export class RunInputError extends Error {
  readonly exitCode = EXIT.USAGE;
  constructor(readonly problems: string[]) {
    super(`cannot start the run:\n  - ${problems.join('\n  - ')}`);
    this.name = 'RunInputError';
  }
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof RunInputError) return EXIT.USAGE;
  return EXIT.FAILURE;
}

/** One line (config and run-input errors list several problems: joined with "; "). */
export function errorLine(err: unknown): string {
  if (err instanceof ConfigError || err instanceof RunInputError) {
    const what = err instanceof ConfigError ? 'invalid configuration' : 'cannot start the run';
    return `${what}: ${err.problems.join('; ')}`;
  }
  const e = err as { message?: string; code?: string };
  return (e?.message ?? String(err)).replace(/\s*\n\s*/g, '; ');
}
