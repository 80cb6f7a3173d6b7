// `--wait`: follows a run to its end, a progress line on stderr now and then, and returns its result.
import type { Client } from '@temporalio/client';
import { progressQuery, type RunResult } from '../workflows/api';
import { workflowIdForRun } from '../domain/run';
import { formatProgressLine } from './format-progress';

export async function waitForRun(
  client: Client,
  runId: string,
  everyMs = 5_000,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<RunResult> {
  const handle = client.workflow.getHandle(workflowIdForRun(runId));
  const ticker = setInterval(() => {
    handle.query(progressQuery).then(
      (p) => log(formatProgressLine(p, Date.now())),
      () => undefined,
    );
  }, everyMs);
  try {
    return (await handle.result()) as RunResult;
  } finally {
    clearInterval(ticker);
  }
}
