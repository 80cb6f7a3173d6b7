// Builds a pinreset worker: the workflow code (prebuilt bundle in production, bundled at start
// otherwise) plus activities wired to the given dependencies.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createActivities, type ActivityDeps } from '../activities';
import { dataConverterFromEnv } from './data-converter';

export const WORKFLOWS_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'workflows', 'index.ts');
/** Workflow interceptors: signals and updates in plain text are refused when encryption is on. */
export const WORKFLOW_INTERCEPTOR_MODULES = [
  path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'workflows', 'refuse-plaintext.ts'),
];

export interface PinresetWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** Path of a prebuilt workflow bundle (see workers/build-bundle.ts). */
  workflowBundlePath?: string;
  maxConcurrentActivities?: number;
  /** How long SIGTERM waits for activities in flight before cancelling them. */
  shutdownGraceTime?: string;
  identity?: string;
  /** Payload encryption; by default from the environment (PAYLOAD_CODEC_KEY). */
  dataConverter?: DataConverter;
  extra?: Partial<WorkerOptions>;
}

export async function createPinresetWorker(o: PinresetWorkerOptions): Promise<Worker> {
  const workflowSource = o.workflowBundlePath
    ? { workflowBundle: { codePath: o.workflowBundlePath } }
    : { workflowsPath: WORKFLOWS_PATH };
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    ...workflowSource,
    activities: createActivities(o.deps),
    dataConverter: o.dataConverter ?? dataConverterFromEnv(process.env, { refusePlaintext: true }),
    // Bundled already in a prebuilt bundle (workers/build-bundle.ts).
    ...(o.workflowBundlePath ? {} : { interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES } }),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities ?? 16,
    shutdownGraceTime: (o.shutdownGraceTime ?? '20s') as WorkerOptions['shutdownGraceTime'],
    ...(o.identity ? { identity: o.identity } : {}),
    ...o.extra,
  });
}
