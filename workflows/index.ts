// Every workflow the worker registers.
export { pinResetRun } from './pin-reset-run';
export { rerunBatch } from './rerun-batch';
