// Safe deploys (docs/changing-the-workflow.md): histories recorded from a released version of the
// workflow (tests/fixtures/histories/, `npm run record-histories`) must replay on the current code.
// A change that would make a run in flight take another path (a new activity, a reordered step, a
// different timer) fails here with a DeterminismViolationError, before it reaches a worker.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, inject } from 'vitest';
import { Worker } from '@temporalio/worker';
import { FIXTURES_DIR, historyFromFixture } from './support/history-fixtures';

describe('recorded histories replay on the current workflow code', () => {
  it('every fixture replays without a non-determinism error', async () => {
    const files = (await readdir(FIXTURES_DIR)).filter((f) => f.endsWith('.json')).sort();
    // The recorder writes a canary/pause/update/continue-as-new chain and a cancelled run.
    expect(files.length).toBeGreaterThanOrEqual(6);
    const histories = (async function* () {
      for (const f of files)
        yield { workflowId: f, history: historyFromFixture(await readFile(path.join(FIXTURES_DIR, f), 'utf8')) };
    })();
    const results: { file: string; error?: unknown }[] = [];
    for await (const r of Worker.runReplayHistories(
      { workflowBundle: { codePath: inject('workflowBundlePath') } },
      histories,
    )) {
      results.push({
        file: r.workflowId,
        error: r.error ? `${(r.error as Error).name}: ${(r.error as Error).message}` : undefined,
      });
    }
    expect(results.map((r) => r.file)).toEqual(files);
    expect(results.filter((r) => r.error)).toEqual([]);
  });
});
