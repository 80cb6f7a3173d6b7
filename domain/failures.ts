// The ApplicationFailure types that cross from activities to the workflow: each name written once,
// imported by the activity that throws it and the workflow code that reads it.
export const FAILURE = {
  /** A notify batch stopped because the run was paused or cancelled: what it claimed and never sent went back in line; the workflow queues the batch again. */
  runStopped: 'RunStopped',
  /** Too many notifications of a batch failed (the run's auto-pause guard): the workflow pauses the run. */
  failureThreshold: 'FailureThreshold',
  /** The provider refused our own setup (credentials, sender): the workflow pauses the run. */
  providerConfig: 'ProviderConfig',
  /** The run has no row in the database. */
  unknownRun: 'UnknownRun',
  /** A batch rerun asked for while its run is still live. */
  runLive: 'RunLive',
} as const;

export type FailureType = (typeof FAILURE)[keyof typeof FAILURE];

/** ApplicationFailure types with which a notify batch asks the workflow to pause the run. */
export const PAUSE_FAILURE_TYPES: readonly FailureType[] = [FAILURE.failureThreshold, FAILURE.providerConfig];
