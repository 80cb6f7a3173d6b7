import type { Channel, NotifyState } from './types';

/** The notification outcome of one account, as written to the ledger under the claimer's token. */
export interface Outcome {
  accountId: number;
  /**
   * 'pending' hands back an account that was claimed but never given to a provider; 'ambiguous'
   * parks one whose attempt may have reached the provider (resolved later, never resent blindly).
   */
  state: Extract<NotifyState, 'sent' | 'unreachable' | 'failed' | 'skipped' | 'pending' | 'ambiguous'>;
  channel?: Channel;
  fellBack: boolean;
  messageId?: string;
  /** Provider error code or reason; never customer data. */
  errorCode?: string;
  /** For 'ambiguous': when the first lookup is due, in ms from now. */
  nextLookupMs?: number;
}
