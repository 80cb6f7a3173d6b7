// Prebuilds the workflow bundle for production workers (WORKFLOW_BUNDLE_PATH): no webpack at
// worker start, and the exact code that was tested is the code that runs.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from './create-worker';
import { dataConverterFromEnv } from './data-converter';

export async function buildBundle(outFile: string): Promise<string> {
  // With payload encryption on (the worker's own rule, which also rejects a partial setting),
  // failures raised inside workflow code are encrypted too.
  const failureConverterPath = dataConverterFromEnv(process.env)?.failureConverterPath;
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: new DefaultLogger('WARN'),
    ...(failureConverterPath ? { failureConverterPath } : {}),
  });
  await mkdir(path.dirname(outFile), { recursive: true });
  await writeFile(outFile, code);
  return outFile;
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const out = path.resolve(process.argv[2] ?? 'dist/workflow-bundle.js');
  buildBundle(out).then(
    (f) => console.log(`workflow bundle written to ${f}`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
