import type { Channel, NotifyState } from './types';

/** The settled notification outcome of one account, as written to the ledger. */
export interface Outcome {
  accountId: number;
  /** 'pending' releases an account that was claimed but never attempted. */
  state: Extract<NotifyState, 'sent' | 'unreachable' | 'failed' | 'skipped' | 'pending'>;
  channel?: Channel;
  fellBack: boolean;
  messageId?: string;
  /** Provider error code or reason; never customer data. */
  errorCode?: string;
}
