// The layer rules of eslint.config.mjs refuse what they promise: each case lints a real file of
// the folder with one forbidden line added (`npm run lint` checks the whole tree as it is).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../stack';

const eslint = new ESLint({ cwd: PROJECT_ROOT });

async function problemsWith(file: string, line: string): Promise<string[]> {
  const text = await readFile(path.join(PROJECT_ROOT, file), 'utf8');
  const [result] = await eslint.lintText(`${text}\n${line}\n`, { filePath: path.join(PROJECT_ROOT, file) });
  return result.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('layer rules', () => {
  it.each([
    ['workers/metrics.ts', "export { waitFor } from '../stack/ports';", /no-restricted-imports: .*local stack/],
    [
      'activities/reset-batch.ts',
      "export { startRun } from '../run-api/start-run';",
      /no-restricted-imports: .*run API/,
    ],
    ['workflows/api.ts', "export { readFileSync } from 'node:fs';", /no-restricted-imports: .*deterministic sandbox/],
    [
      'workflows/progress-markdown.ts',
      "export type { Db } from '../db/pool';",
      /no-restricted-imports: .*only through activities/,
    ],
    ['domain/plan.ts', "export type { Config } from '../config';", /no-restricted-imports: .*domain\/ is pure/],
  ])('%s refuses %s', async (file, line, rule) => {
    expect(await problemsWith(file, line)).toEqual(expect.arrayContaining([expect.stringMatching(rule)]));
  });

  it('refuses a promise nobody awaits', async () => {
    const problems = await problemsWith(
      'activities/keepalive.ts',
      'export function lost(): void { Promise.reject(new Error("x")); }',
    );
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/no-floating-promises/)]));
  });

  it('accepts the files as they are', async () => {
    expect(await problemsWith('workers/metrics.ts', '')).toEqual([]);
  });
}, 120_000);
