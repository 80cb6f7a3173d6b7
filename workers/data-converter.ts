// The data converter shared by workers and clients. Plain JSON unless payload encryption is
// configured (see the AES-GCM codec work in issue 5).
import type { DataConverter } from '@temporalio/common';

export function dataConverterFromEnv(_env: Record<string, string | undefined> = process.env): DataConverter | undefined {
  return undefined;
}
