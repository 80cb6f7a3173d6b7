// A worker on a namespace without the workflow's search attributes refuses to start and names the
// missing ones (issue 12: otherwise every workflow task fails with BadSearchAttributes and the run
// sits in `created`). Fresh namespaces on the shared real server, as on a user's own server.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import { waitFor } from '../stack/ports';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { missingSearchAttributes, registerCommand } from '../workers/search-attributes-check';
import { freshDatabase, startProviders, type Providers } from './support/harness';
import { spawnWorker } from '../stack/worker-process';

const { IndexedValueType } = proto.temporal.api.enums.v1;

describe('the worker checks the search attributes at start', () => {
  let connection: Connection;
  let providers: Providers;
  let dbUrl: string;
  let closeDb: () => Promise<void>;
  const namespace = `sa-check-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    connection = await Connection.connect({ address: inject('temporalAddress') });
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    // The frontend learns a new namespace on its next namespace cache refresh.
    await waitFor('namespace', () => connection.operatorService.listSearchAttributes({ namespace }), 60_000, 500);
    // All but PinresetPaused: the new user's case in the issue.
    const four = Object.fromEntries(
      Object.entries(SEARCH_ATTRIBUTES)
        .filter(([n]) => n !== 'PinresetPaused')
        .map(([n, t]) => [
          n,
          IndexedValueType[`INDEXED_VALUE_TYPE_${t.toUpperCase()}` as keyof typeof IndexedValueType],
        ]),
    );
    await waitFor(
      'search attributes',
      () => connection.operatorService.addSearchAttributes({ namespace, searchAttributes: four }),
      60_000,
      500,
    );
    const db = await freshDatabase('sa_check');
    dbUrl = db.url;
    closeDb = () => db.db.end();
    providers = await startProviders();
  });

  afterAll(async () => {
    await providers?.stop();
    await closeDb?.();
    await connection?.close();
  });

  it('finds exactly the missing one, and none on the namespace the stack set up', async () => {
    expect(await missingSearchAttributes(connection, namespace)).toEqual(['PinresetPaused (Bool)']);
    expect(await missingSearchAttributes(connection, 'default')).toEqual([]);
  });

  it('a worker process exits 1 naming PinresetPaused and the command that registers it', async () => {
    const w = spawnWorker({
      ...providers.env,
      DATABASE_URL: dbUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TASK_QUEUE: `sa-${randomUUID()}`,
      WORKFLOW_BUNDLE_PATH: inject('workflowBundlePath'),
    });
    w.ready.catch(() => undefined); // it must never get ready
    const exit = await w.exited;
    expect(exit.code).toBe(1);
    const out = w.output();
    expect(out).toContain('lacks search attributes the workflow sets: PinresetPaused (Bool)');
    expect(out).toContain(registerCommand(namespace, ['PinresetPaused']));
    expect(out).not.toContain('"worker started"');
    expect(out).not.toMatch(/PinresetRunId \(Keyword\)/);
  });
});
