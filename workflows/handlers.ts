// The run's signals, queries and updates: each a thin call into RunState.
import * as wf from '@temporalio/workflow';
import { rateProblems } from '../domain/run';
import { lifecycle } from './activity-stubs';
import { approveUpdate, cancelSignal, pauseSignal, progressQuery, resumeSignal, setRateUpdate } from './api';
import type { BatchWindow } from './batch-window';
import type { RunState } from './run-state';

export function registerHandlers(run: RunState, window: BatchWindow): void {
  const { runId } = run.input;
  wf.setHandler(progressQuery, () => run.progress(window.size), {
    description: 'Live progress: counts by outcome, batches, rate, pause state, exposure window.',
  });
  wf.setHandler(pauseSignal, (arg) => run.pause(arg?.reason ?? 'paused by operator', 'operator'), {
    description:
      'Stop sending within seconds: no new batches, and the batches in flight stop before their next message (claimed, unsent accounts go back in line). Optional { reason }.',
  });
  wf.setHandler(resumeSignal, () => void run.resume(), {
    description: 'Resume dispatching batches after a pause (also after an auto-pause).',
  });
  wf.setHandler(cancelSignal, (arg) => run.cancel(arg?.reason ?? 'cancelled by operator'), {
    description:
      'Cancel: sending stops within seconds (as pause), nothing new starts, the run ends cancelled and records where it stopped.',
  });
  wf.setHandler(
    approveUpdate,
    async (arg) => {
      if (run.carried.approval) return { ...run.carried.approval, already: true };
      const approval = run.approve(arg.by);
      // The database keeps the first approval; answer with what it holds.
      const recorded = await wf.CancellationScope.nonCancellable(() =>
        lifecycle.recordApproval({ runId, by: approval.by }),
      );
      run.carried.approval = recorded;
      return { ...recorded, already: false };
    },
    {
      description:
        'Approve the notifications after the canary: { "by": "<who>" }. Refused until the canary accounts are notified; a second approval answers with the first.',
      validator: (arg) => {
        if (!arg || typeof arg.by !== 'string' || !arg.by.trim())
          throw new Error('approve needs { "by": "<who approves>" }');
        const problem = run.approvalProblem();
        if (problem) throw new Error(problem);
      },
    },
  );
  wf.setHandler(
    setRateUpdate,
    async (rate) => {
      const previous = run.carried.ratePerSecond;
      await lifecycle.setSendRate({ runId, ratePerSecond: rate });
      run.carried.ratePerSecond = rate;
      run.bump();
      return { previous, current: rate };
    },
    {
      description:
        'Change the run\'s notification ceiling (messages/s for all workers together, or "unlimited"; 0 is refused: pause to stop). Takes effect within a second.',
      validator: (rate) => {
        const problems = rateProblems(rate);
        if (problems.length) throw new Error(problems.join('; '));
      },
    },
  );
}
