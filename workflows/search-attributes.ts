// Custom search attributes, registered on the dev server by the local stack and in production by
// `temporal operator search-attribute create`. Values are stored unencrypted: ids and states only.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  PinresetRunId: 'Keyword',
  PinresetPhase: 'Keyword',
  PinresetReason: 'Keyword',
  PinresetOperator: 'Keyword',
  PinresetPaused: 'Bool',
  /** Set on redrive runs only: the run whose failed notifications they retry. */
  PinresetSourceRunId: 'Keyword',
} as const;

export const RUN_ID = defineSearchAttributeKey('PinresetRunId', SearchAttributeType.KEYWORD);
export const PHASE = defineSearchAttributeKey('PinresetPhase', SearchAttributeType.KEYWORD);
export const REASON = defineSearchAttributeKey('PinresetReason', SearchAttributeType.KEYWORD);
export const OPERATOR = defineSearchAttributeKey('PinresetOperator', SearchAttributeType.KEYWORD);
export const PAUSED = defineSearchAttributeKey('PinresetPaused', SearchAttributeType.BOOL);
export const SOURCE_RUN_ID = defineSearchAttributeKey('PinresetSourceRunId', SearchAttributeType.KEYWORD);
