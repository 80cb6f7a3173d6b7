// The activity factory: every dependency comes in, so tests wire real or local servers.
import type { ActivityDeps } from './deps';
import { makeNotifyBatch } from './notify-batch';
import { makeResetBatch } from './reset-batch';
import { makeRunLifecycle } from './run-lifecycle';
import { makeFollowUpDeliveries } from './follow-up-deliveries';

export type { ActivityDeps } from './deps';

export function createActivities(deps: ActivityDeps) {
  return {
    ...makeRunLifecycle(deps),
    resetBatch: makeResetBatch(deps),
    notifyBatch: makeNotifyBatch(deps),
    followUpDeliveries: makeFollowUpDeliveries(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
