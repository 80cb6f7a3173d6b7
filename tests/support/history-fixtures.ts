// Recorded workflow histories (tests/fixtures/histories/), written by `npm run record-histories`
// and replayed by tests/replay.test.ts.
import path from 'node:path';
import proto from '@temporalio/proto';
import { PROJECT_ROOT } from '../../stack';

export const FIXTURES_DIR = path.join(PROJECT_ROOT, 'tests', 'fixtures', 'histories');

const { History } = proto.temporal.api.history.v1;

/**
 * protobufjs' own object form (enums by name, int64 and bytes as strings), read back with
 * History.fromObject. (The SDK's historyToJSON fails here with "type must be a Type": two
 * protobufjs copies, under @temporalio/common and @temporalio/proto.)
 */
export function historyToFixture(history: proto.temporal.api.history.v1.IHistory): string {
  return `${JSON.stringify(History.toObject(History.fromObject(history), { longs: String, enums: String, bytes: String }), null, 1)}\n`;
}

export function historyFromFixture(text: string): proto.temporal.api.history.v1.History {
  return History.fromObject(JSON.parse(text));
}
