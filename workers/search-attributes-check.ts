// The worker refuses to start on a namespace that lacks one of the workflow's search attributes:
// otherwise every workflow task fails with BadSearchAttributes and runs sit in `created` forever
// while `start` and `status` exit 0 (issue 12, tried on a user's own server).
import proto from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

const { IndexedValueType } = proto.temporal.api.enums.v1;

/** "Name (Type)" for every attribute missing or registered with another type. */
export async function missingSearchAttributes(
  connection: Pick<NativeConnection, 'operatorService'>,
  namespace: string,
): Promise<string[]> {
  const res = await connection.operatorService.listSearchAttributes({ namespace });
  const registered = res.customAttributes ?? {};
  const missing: string[] = [];
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
    const want = IndexedValueType[`INDEXED_VALUE_TYPE_${type.toUpperCase()}` as keyof typeof IndexedValueType];
    const have = registered[name];
    if (have !== want)
      missing.push(
        have === undefined ? `${name} (${type})` : `${name} (${type}, registered as ${IndexedValueType[have] ?? have})`,
      );
  }
  return missing;
}

/** The exact command that registers them (docs/operators.md has the same). */
export function registerCommand(namespace: string, names = Object.keys(SEARCH_ATTRIBUTES)): string {
  const pairs = names
    .map((n) => `--name ${n} --type ${SEARCH_ATTRIBUTES[n as keyof typeof SEARCH_ATTRIBUTES]}`)
    .join(' ');
  return `temporal operator search-attribute create --namespace ${namespace} ${pairs}`;
}

export async function assertSearchAttributes(
  connection: Pick<NativeConnection, 'operatorService'>,
  namespace: string,
): Promise<void> {
  const missing = await missingSearchAttributes(connection, namespace);
  if (missing.length === 0) return;
  const names = missing.map((m) => m.slice(0, m.indexOf(' ')));
  throw new Error(
    `namespace ${namespace} lacks search attributes the workflow sets: ${missing.join(', ')}. ` +
      `Every workflow task would fail with BadSearchAttributes. Register them, then start the worker again: ${registerCommand(namespace, names)}`,
  );
}
