// A Temporal client for scripts: the configured connection (plain, TLS, mTLS or API key) and the
// shared data converter. Fails fast with a one-line reason when the server cannot be reached.
import { Client, Connection } from '@temporalio/client';
import type { TemporalConfig } from '../config';
import { connectionOptions } from '../workers/connection';
import { OperationFailedError, UsageError } from './errors';

export interface TemporalClient {
  client: Client;
  connection: Connection;
  close(): Promise<void>;
}

export async function connectTemporal(t: TemporalConfig, connectTimeoutMs = 5_000): Promise<TemporalClient> {
  // Loaded on first use: commands that only read the database do not depend on the codec.
  const { dataConverterFromEnv } = await import('../workers/data-converter');
  let dataConverter: ReturnType<typeof dataConverterFromEnv>;
  try {
    dataConverter = dataConverterFromEnv(process.env);
  } catch (err) {
    throw new UsageError(`invalid payload codec configuration: ${(err as Error).message}`);
  }
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...(await connectionOptions(t)), connectTimeout: connectTimeoutMs });
  } catch (err) {
    throw new OperationFailedError(`cannot reach Temporal at ${t.address}: ${(err as Error).message.split('\n')[0]}`);
  }
  const client = new Client({ connection, namespace: t.namespace, dataConverter });
  return { client, connection, close: () => connection.close() };
}

/** The run's page in the Temporal Web UI; without TEMPORAL_UI_URL, the path and how to get a link. */
export function workflowUiUrl(t: TemporalConfig, workflowId: string): string {
  const page = `/namespaces/${encodeURIComponent(t.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return t.uiUrl ? `${t.uiUrl.replace(/\/+$/, '')}${page}` : `${page} on your Web UI (set TEMPORAL_UI_URL for a link)`;
}
