// The Temporal Web UI, in a real browser (Debian's chromium through playwright-core), shows a run
// as PostgreSQL's ledger has it: an operator pauses the run from the "Send a Signal" dialog, the
// "Current Details" Markdown then shows the pause and counts equal to pinreset_counts(); after
// the run completes, the workflows list filtered by the PinresetRunId search attribute finds it
// and its details show the final counts. Screenshots of every step go to tests/artifacts/; the
// paused run also to docs/webui-run.png (README) when that is missing or UPDATE_DOCS_SCREENSHOT=1.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Db } from '../db/pool';
import { readCounts } from '../db/sql/read-counts';
import type { Counts } from '../domain/types';
import { workflowIdForRun } from '../domain/run';
import { startRun } from '../run-api/start-run';
import { PROJECT_ROOT } from '../stack';
import { cancelSignal, progressQuery, resumeSignal, setRateUpdate } from '../workflows/api';
import type { pinResetRun } from '../workflows/pin-reset-run';
import { PROGRESS_ROWS } from '../workflows/progress-markdown';
import { account, insertAccounts, type AccountSpec } from './support/accounts';
import {
  freshDatabase,
  startProviders,
  startWorker,
  temporalClient,
  type Providers,
  type RunningWorker,
} from './support/harness';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];
const ARTIFACTS = path.join(PROJECT_ROOT, 'tests', 'artifacts');
const DOCS_SCREENSHOT = path.join(PROJECT_ROOT, 'docs', 'webui-run.png');

const INVALID_PREFIX = '+1212555'; // the local Twilio answers 21211: falls back to email
const OPTED_OUT_PREFIX = '+1313555'; // 21610: failed (no email)
const PAUSE_REASON = 'checking complaints (web UI)';

/** Mixed outcomes spread over every batch, so a paused run shows every row moving. */
function cohort(): AccountSpec[] {
  return Array.from({ length: 300 }, (_, i) => {
    const id = i + 1;
    if (id % 10 === 1) return account(id, { phone: null, phoneType: null }); // email
    if (id % 10 === 2) return account(id, { phone: `${INVALID_PREFIX}${1000 + id}` }); // SMS 21211 -> email
    if (id % 20 === 3) return account(id, { smsOptOut: true, email: null }); // unreachable
    if (id % 50 === 4) return account(id, { phone: `${OPTED_OUT_PREFIX}${1000 + id}`, email: null }); // failed
    return account(id); // SMS
  });
}

async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Debian's chromium is not installed (${CHROMIUM} is missing), so the Web UI cannot be tested. ` +
        'Install it with: apt-get update && apt-get install -y --no-install-recommends chromium',
    );
  }
  const profile = await mkdtemp(path.join(tmpdir(), 'pinreset-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    return {
      context,
      async close() {
        await context.close().catch(() => undefined);
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
}

async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const LABEL_TO_KEY = new Map(
  Object.entries(PROGRESS_ROWS).map(([k, label]) => [label, k as Exclude<keyof Counts, 'delivery'>]),
);

interface ShownDetails {
  text: string;
  counts: Counts;
}

/** Opens the workflow's "User Metadata" tab and reads the rendered Current Details Markdown. */
async function readCurrentDetails(page: Page, ui: string, workflowId: string): Promise<ShownDetails> {
  await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
  await page.locator('[data-testid="user-metadata-tab"]:visible').click();
  const frame = page.frameLocator('iframe#user-metadata-current-details');
  const rows = frame.locator('table tbody tr');
  await rows.first().waitFor();
  const counts = {} as Counts;
  for (const cells of await rows.evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? '')),
  )) {
    const key = LABEL_TO_KEY.get(cells[0]);
    if (!key) throw new Error(`unexpected row in the current details table: ${JSON.stringify(cells)}`);
    counts[key] = Number(cells[1].replace(/,/g, ''));
  }
  return { text: await frame.locator('body').innerText(), counts };
}

/** Reads the ledger's counts in the order and with the keys of the table. */
async function ledgerCounts(db: Db, runId: string): Promise<Counts> {
  const c = await readCounts(db, runId);
  return Object.fromEntries(Object.keys(PROGRESS_ROWS).map((k) => [k, c[k as keyof Counts]])) as unknown as Counts;
}

async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file });
  return file;
}

describe('the Temporal Web UI shows a run as the ledger has it', () => {
  let db: Db;
  let providers: Providers;
  let worker: RunningWorker;
  let client: Client;
  let closeClient: () => Promise<void>;
  let browser: { context: BrowserContext; close(): Promise<void> } | undefined;
  let page: Page;
  let runId: string;
  let handle: WorkflowHandle<typeof pinResetRun>;
  const ui = inject('temporalUiUrl');

  beforeAll(async () => {
    ({ db } = await freshDatabase('webui'));
    providers = await startProviders({
      twilio: {
        permanent: [
          { prefix: INVALID_PREFIX, code: 21211 },
          { prefix: OPTED_OUT_PREFIX, code: 21610 },
        ],
      },
    });
    worker = await startWorker(providers.deps(db));
    ({ client, close: closeClient } = await temporalClient());
    await insertAccounts(db, cohort());
  });

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await closeClient?.();
    await providers?.stop();
    await db?.end();
  });

  /** Runs a UI step; on failure keeps a screenshot of what the browser showed. */
  async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (page) {
        await screenshot(page, `failed-${name}.png`).catch(() => undefined);
        await page
          .content()
          .then((html) => writeFile(path.join(ARTIFACTS, `failed-${name}.html`), html))
          .catch(() => undefined);
      }
      throw err;
    }
  }

  it('pauses from the "Send a Signal" dialog, then shows the paused run with the ledger counts', async () => {
    // In the test, not in beforeAll: without chromium this fails with the install hint.
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.setDefaultTimeout(30_000);

    // Slow enough (5 msg/s: 60 s for the cohort) that the operator's pause lands mid-run, even
    // on a loaded machine.
    ({ runId, handle } = await startRun(db, client, {
      reason: 'INC-2024-0042',
      operator: 'oncall@secops',
      taskQueue: worker.taskQueue,
      params: { batchSize: 25, batchConcurrency: 1, ratePerSecond: 5 },
    }));
    const workflowId = workflowIdForRun(runId);
    expect(workflowId).toBe(`pinreset-run-${runId}`);
    await waitUntil('the first notifications', async () => providers.twilio.messages().length >= 20);

    await step('pause-signal', async () => {
      await page.goto(`${ui}/namespaces/default/workflows/${workflowId}`);
      await expect.poll(() => page.locator('[data-testid="workflow-id-heading"]:visible').innerText()).toContain(runId);
      await page.locator('button[aria-controls="workflow-actions"]:visible').click();
      await page.locator('[data-testid="signal-button"]:visible').click();
      const dialog = page.locator('dialog[open][data-testid="signal-confirmation-modal"]');
      await dialog.locator('[data-testid="signal-select-button"]:visible').click();
      // The handler descriptions are what the operator picks from.
      const pause = dialog.locator('[role="option"]:visible', { hasText: 'Stop sending within seconds' });
      await expect.poll(() => pause.innerText()).toContain('pause');
      await pause.click();
      await dialog.locator('[role="textbox"][aria-label="Data"]:visible').click();
      // insertText: the JSON editor would auto-close typed braces and quotes.
      await page.keyboard.insertText(JSON.stringify({ reason: PAUSE_REASON }));
      await screenshot(page, 'webui-1-pause-dialog.png');
      // A busy workflow (the server's per-workflow lock, contended on a loaded machine) answers
      // "Workflow is busy." in the dialog; an operator submits again, and so does the test
      // (pause is idempotent).
      for (let attempt = 1; ; attempt++) {
        await dialog.locator('[data-testid="confirm-modal-button"]:visible').click();
        const closed = await waitUntil(
          'the signal dialog to close',
          async () => (await dialog.count()) === 0,
          5_000,
        ).then(
          () => true,
          () => false,
        );
        if (closed) break;
        const error = await dialog.locator('[role="alert"]').allInnerTexts();
        if (attempt >= 5) throw new Error(`the signal was not accepted after ${attempt} attempts: ${error.join(' ')}`);
      }
    });

    // Paused, and the batch that was in flight has finished: the counts stand still.
    const progress = await waitUntil('the run to pause with nothing in flight', async () => {
      const p = await handle.query(progressQuery);
      return p.paused && p.batches.inFlight === 0 ? p : undefined;
    });
    expect(progress.pauseReason).toBe(PAUSE_REASON);
    const ledger = await ledgerCounts(db, runId);
    expect(ledger.pending).toBeGreaterThan(0); // really mid-run
    expect(ledger.sentSms).toBeGreaterThan(0);

    // The UI reads the details from the workflow: retry until the last task's details are in
    // (on timeout, the last reading is compared below, so a mismatch shows as a diff).
    let last: ShownDetails | undefined;
    const shown = await step('paused-details', () =>
      waitUntil(
        'the current details to show the ledger counts',
        async () => {
          last = await readCurrentDetails(page, ui, workflowId);
          return JSON.stringify(last.counts) === JSON.stringify(ledger) ? last : undefined;
        },
        30_000,
        1_000,
      ).catch((err) => last ?? Promise.reject(err)),
    );
    expect(shown.counts).toEqual(ledger);
    expect(shown.text).toContain(`PIN reset run ${runId}`);
    expect(shown.text).toContain(`State: paused (${PAUSE_REASON})`);
    expect(shown.text).toMatch(/ETA: none while paused \(\d+ pending\)/);
    expect(shown.text).toContain(
      `${ledger.sentSms + ledger.sentEmail + ledger.unreachable + ledger.failed + ledger.skipped + ledger.notifySkipped} of 300 accounts settled`,
    );
    expect(shown.text).toContain('Rate ceiling: 5 msg/s');
    // The static summary and details from the start.
    const summary = await page.frameLocator('iframe#user-metadata-summary').locator('body').innerText();
    expect(summary).toContain(`PIN reset ${runId}: INC-2024-0042`);
    const details = await page.frameLocator('iframe#user-metadata-details').locator('body').innerText();
    expect(details).toContain(`PinresetRunId = '${runId}'`);
    expect(details).toContain('Started by: oncall@secops');

    // For the README: the tabs, summary, details and live status of the paused run.
    await page
      .locator('[data-testid="user-metadata-tab"]:visible')
      .evaluate((el) => el.scrollIntoView({ block: 'start' }));
    // The committed copy changes at every run (ids, times): written when missing or on request.
    if (!existsSync(DOCS_SCREENSHOT) || process.env.UPDATE_DOCS_SCREENSHOT === '1') {
      await mkdir(path.dirname(DOCS_SCREENSHOT), { recursive: true });
      await page.screenshot({ path: DOCS_SCREENSHOT });
    }
    await screenshot(page, 'webui-2-paused-run.png');
  });

  it('finds the run by its search attribute and shows the completed counts', async () => {
    expect(handle, 'the first test started the run').toBeDefined();
    await handle.executeUpdate(setRateUpdate, { args: ['unlimited'] });
    await handle.signal(resumeSignal);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    const ledger = await ledgerCounts(db, runId);
    expect(ledger).toMatchObject({ planned: 300, reset: 300, pending: 0 });
    expect(result.counts).toMatchObject(ledger);
    const workflowId = workflowIdForRun(runId);

    await step('list', async () => {
      await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`PinresetRunId = '${runId}'`)}`);
      // Show the live phase in the list (a custom search attribute column).
      await page.locator('button[aria-label="Configure Columns"]:visible').click();
      await page.locator('button[aria-label="Add PinresetPhase column"]').click();
      // The column choice is kept in the browser's local storage; reloading closes the drawer.
      await page.reload();
      const table = page.locator('table:visible', { hasText: 'pinreset-run-' });
      const rows = table.locator('tbody tr');
      await expect.poll(async () => (await rows.allInnerTexts()).join('\n'), { timeout: 30_000 }).toMatch(/completed/i);
      // Cells by column header, as the operator reads them.
      const headers = (await table.locator('thead th').allInnerTexts()).map((h) => h.trim());
      const cells = await rows.evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim())),
      );
      expect(cells).toHaveLength(1); // the filter finds exactly this run's workflow
      const row = Object.fromEntries(headers.map((h, i) => [h, cells[0][i]]));
      expect(row).toMatchObject({ 'Workflow ID': workflowId, Type: 'pinResetRun', PinresetPhase: 'completed' });
      expect(row.Status).toMatch(/^completed$/i);
      await screenshot(page, 'webui-3-list.png');
      await page.locator(`a:visible:text-is("${workflowId}")`).click();
      await expect.poll(() => page.locator('[data-testid="workflow-id-heading"]:visible').innerText()).toContain(runId);
    });

    const shown = await step('completed-details', () =>
      waitUntil(
        'the current details of the completed run',
        async () => {
          const d = await readCurrentDetails(page, ui, workflowId);
          return d.text.includes('State: completed') ? d : undefined;
        },
        30_000,
        1_000,
      ),
    );
    expect(shown.counts).toEqual(ledger);
    expect(shown.text).toMatch(/Finished \(completed\): 300 of 300 accounts settled; ran .* from start to end/);
    expect(shown.text).toMatch(/Exposure window: every PIN of the cohort was invalidated [\d.]+ s after the start/);
    await page
      .locator('[data-testid="user-metadata-tab"]:visible')
      .evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'webui-4-completed-run.png');
  });

  it('shows counts that move with the ledger while a batch is still in flight, then a cancelled run as cancelled', async () => {
    expect(page, 'the first test opened the browser').toBeDefined();
    // One batch of 900 at 20 msg/s: counts per finished batch would stay at 0 sent for 45 s.
    const ids = Array.from({ length: 900 }, (_, i) => 1001 + i);
    await insertAccounts(
      db,
      ids.map((id) => account(id)),
    );
    const live = await startRun(db, client, {
      reason: 'INC-2024-0043',
      operator: 'oncall@secops',
      taskQueue: worker.taskQueue,
      accountIds: ids,
      params: { batchSize: 900, batchConcurrency: 1, ratePerSecond: 20 },
    });
    const workflowId = workflowIdForRun(live.runId);
    const mid = await step('live-details', () =>
      waitUntil(
        'the details to show sends while the batch is in flight',
        async () => {
          const d = await readCurrentDetails(page, ui, workflowId);
          return d.counts.sentSms > 0 && /Batches: 1 planned, 1 reset, 0 notified, 1 in flight/.test(d.text)
            ? d
            : undefined;
        },
        90_000,
        1_000,
      ),
    );
    // The shown count was the ledger's at the time of its reading (the ledger has moved on since).
    expect(mid.counts.sentSms).toBeLessThanOrEqual((await readCounts(db, live.runId)).sentSms);
    expect(mid.counts.pending).toBe(900 - mid.counts.sentSms);
    // The rate and ETA come after 30 s of sending (MIN_WINDOW_S).
    expect(mid.text).toMatch(
      /Sent: (-|[\d.]+ msg\/s) over the last \d+ s · ETA: .* · In flight: [\d,]+ accounts being sent now/,
    );
    expect(mid.text).toMatch(/Read from the ledger at \d\d:\d\d:\d\d UTC/);
    // And they keep moving while the same batch is still in flight: a later reading shows more sent
    // (per finished batch, both would show the same count until the batch of 900 ends).
    const later = await step('live-details-later', () =>
      waitUntil(
        'the details to show more sends, the batch still in flight',
        async () => {
          const d = await readCurrentDetails(page, ui, workflowId);
          return d.counts.sentSms > mid.counts.sentSms && /1 in flight/.test(d.text) ? d : undefined;
        },
        60_000,
        1_000,
      ),
    );
    expect(later.counts.pending).toBe(900 - later.counts.sentSms);
    expect(later.counts.sentSms).toBeLessThan(900);
    expect(later.counts.sentSms).toBeLessThanOrEqual((await readCounts(db, live.runId)).sentSms);
    await page
      .locator('[data-testid="user-metadata-tab"]:visible')
      .evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'webui-5-live-counts.png');

    await live.handle.signal(cancelSignal, { reason: 'wrong cohort (drill)' });
    await live.handle.executeUpdate(setRateUpdate, { args: ['unlimited'] }).catch(() => undefined);
    expect((await live.handle.result()).status).toBe('cancelled');
    const ledger = await ledgerCounts(db, live.runId);
    const shown = await step('cancelled-details', () =>
      waitUntil(
        'the details of the cancelled run',
        async () => {
          const d = await readCurrentDetails(page, ui, workflowId);
          return d.text.includes('State: CANCELLED') ? d : undefined;
        },
        30_000,
        1_000,
      ),
    );
    expect(shown.text).toContain(
      'State: CANCELLED (wrong cohort (drill)): accounts not reached stay pending in the ledger',
    );
    expect(shown.text).toMatch(/Finished \(cancelled\): [\d,]+ of 900 accounts settled; ran .* from start to end/);
    expect(shown.counts).toEqual(ledger);
    // In the list: the phase column says cancelled, and the run is not among the paused ones.
    await step('cancelled-list', async () => {
      await page.goto(
        `${ui}/namespaces/default/workflows?query=${encodeURIComponent(`PinresetRunId = '${live.runId}' AND PinresetPhase = 'cancelled' AND PinresetPaused = false`)}`,
      );
      const rows = page.locator('table:visible', { hasText: 'pinreset-run-' }).locator('tbody tr');
      await expect.poll(async () => (await rows.allInnerTexts()).join('\n'), { timeout: 30_000 }).toContain(workflowId);
      await screenshot(page, 'webui-6-cancelled-list.png');
    });
  });
});
