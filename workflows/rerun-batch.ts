// Re-dispatches one batch of a run: reset, then notify. An operator tool for after a manual
// repair, and the proof that a batch processed twice changes nothing the first time did.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ChannelPolicy, Counts } from '../domain/types';

const acts = wf.proxyActivities<Activities>({
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '15s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

export interface RerunBatchInput {
  runId: string;
  first: number;
  last: number;
  reason: string;
  policy: ChannelPolicy;
}

export async function rerunBatch(input: RerunBatchInput): Promise<{ reset: Counts; notify: Counts }> {
  await acts.assertRunNotLive({ runId: input.runId });
  const reset = await acts.resetBatch({ ...input, size: input.last - input.first + 1 });
  const notify = await acts.notifyBatch(input);
  return { reset, notify };
}
