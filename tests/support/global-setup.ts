// Starts one real Temporal dev server and one real PostgreSQL for the whole test run (each test
// file then makes its own database and task queue), and prebuilds the workflow bundle once.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startStack, PROJECT_ROOT, type Stack } from '../../stack';
import { buildBundle } from '../../workers/build-bundle';

let stack: Stack | undefined;

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalUiUrl: string;
    databaseUrl: string;
    workflowBundlePath: string;
  }
}

export async function setup(project: TestProject): Promise<void> {
  // Per process: two test runs at once must not share (and wipe) each other's servers.
  const dataDir = path.join(PROJECT_ROOT, '.data', `test-stack-${process.pid}`);
  const [started, bundle] = await Promise.all([
    startStack({ dataDir, parts: { providers: false } }),
    buildBundle(path.join(dataDir, 'workflow-bundle.js')),
  ]);
  stack = started;
  project.provide('temporalAddress', stack.temporal!.address);
  project.provide('temporalUiUrl', stack.temporal!.uiUrl);
  project.provide('databaseUrl', stack.postgres!.url);
  project.provide('workflowBundlePath', bundle);
}

export async function teardown(): Promise<void> {
  await stack?.stop();
  await rm(path.join(PROJECT_ROOT, '.data', `test-stack-${process.pid}`), { recursive: true, force: true });
}
