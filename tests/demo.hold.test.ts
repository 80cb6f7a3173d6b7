// `npm run demo -- --hold` hands over its stack: the `export ...` block it prints, pasted into a
// shell, is all the CLI needs to work on the demo's run; so is the env file it writes. The demo
// runs as a process with its own Temporal dev server and PostgreSQL, as an operator starts it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../stack';
import { until } from './support/until';

const BASE_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', PINRESET_ENV_FILE: '' };

function bash(
  script: string,
  env: Record<string, string> = BASE_ENV,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: PROJECT_ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('demo --hold', () => {
  let demo: ChildProcess | undefined;
  let out = '';

  afterAll(async () => {
    if (demo && demo.exitCode === null) {
      const exited = new Promise((r) => demo!.once('exit', r));
      demo.kill('SIGINT');
      await exited;
    }
  });

  it('prints a ready-to-paste export block and writes an env file; the CLI works on the held stack with either', async () => {
    // Nothing of the test stack leaks in: the demo starts its own servers.
    demo = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/demo.ts', '--accounts', '300', '--rate', 'unlimited', '--hold'],
      {
        cwd: PROJECT_ROOT,
        env: { ...BASE_ENV, USER: 'demo-tester' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    demo.stdout!.on('data', (d) => (out += d));
    demo.stderr!.on('data', (d) => (out += d));
    await until(
      'the demo run to finish with the stack held',
      async () => out.includes('Stack still up') || demo!.exitCode !== null,
      // A whole stack, bundle, seed and run of its own: minutes on a loaded 2-core machine.
      480_000,
      250,
    );
    expect(out, out.slice(-2000)).toContain('Stack still up');

    const block = /# --- pinreset demo stack ---\n([\s\S]*?)\n# ---\n/.exec(out)?.[1];
    expect(block, out.slice(0, 3000)).toBeDefined();
    const names = block!.split('\n').map((l) => /^export ([A-Z_]+)=/.exec(l)?.[1]);
    expect(names.every(Boolean), block).toBe(true);
    for (const v of [
      'DATABASE_URL',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
      'TEMPORAL_TASK_QUEUE',
      'TEMPORAL_UI_URL',
      'TWILIO_ACCOUNT_SID',
      'TWILIO_AUTH_TOKEN',
      'TWILIO_FROM',
      'TWILIO_API_URL',
      'SMTP_URL',
      'EMAIL_FROM',
    ]) {
      expect(names).toContain(v);
    }
    const runId = /^Run (\S+): http/m.exec(out)?.[1];
    expect(runId).toBeDefined();

    // Pasted into a fresh shell that knows nothing else.
    const pasted = await bash(
      `${block}\nnode --import tsx cli/main.ts list --json && node --import tsx cli/main.ts status ${runId}`,
    );
    expect(pasted.code, pasted.stderr).toBe(0);
    const [listed] = pasted.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    expect(listed).toMatchObject({ id: runId, status: 'completed', reason: 'DEMO-T-MOBILE-2021' });
    expect(pasted.stdout).toMatch(/state +: COMPLETED/);

    // The env file, named by PINRESET_ENV_FILE: the same; and `start` links to the held stack's Web UI.
    const envFile = /export PINRESET_ENV_FILE=(\S+)/.exec(out)?.[1];
    expect(envFile && existsSync(envFile)).toBe(true);
    const uiUrl = /^export TEMPORAL_UI_URL=(\S+)$/m.exec(block!)?.[1];
    const fromFile = await bash(
      // Receipts within seconds, as the demo's own run: without these, the 30003s of the local
      // Twilio's mix are retried after the production 5 minutes and the run waits for them.
      `node --import tsx cli/main.ts start --reason DEMO-HANDOVER --run-id demo-handover-1 --rate unlimited --retry-after 5 --receipt-deadline 30 --wait`,
      { ...BASE_ENV, PINRESET_ENV_FILE: envFile! },
    );
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toContain(`web ui   : ${uiUrl}/namespaces/default/workflows/pinreset-run-demo-handover-1`);
    expect(fromFile.stdout).toContain('Run demo-handover-1 completed');
  }, 600_000);
});
