// The real twilio client (through createTwilioSms) against the local fake Twilio, over sockets.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isSmsConfigError } from '../domain/sms-errors';
import type { SmsSender } from '../domain/types';
import { createTwilioClient, createTwilioSms, type TwilioSmsOptions } from '../providers/sms';
import { countSegments, startFakeTwilio, type FakeTwilio } from '../stack/fake-twilio';

const accountSid = 'AC' + '0123456789abcdef'.repeat(2);
const authToken = 'test-auth-token';
const from = '+15005550006';
const BODY = 'Your PIN was reset. Set a new one in the app.';

let fake: FakeTwilio;
let options: TwilioSmsOptions;
let sms: SmsSender;

/** Catches the rejection of `p` (the test fails if it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  fake = await startFakeTwilio({
    accountSid,
    authToken,
    seed: 42,
    faults: {
      permanent: [
        { prefix: '+1555010', code: 21211 },
        { prefix: '+1555020', code: 21610 },
      ],
    },
  });
  options = { accountSid, authToken, from, apiUrl: fake.url, timeoutMs: 2_000 };
  sms = createTwilioSms(options);
});

afterAll(async () => {
  await fake.stop();
});

beforeEach(() => {
  fake.setFaults({
    rate429: 0,
    rate5xx: 0,
    rateDropAfterAccept: 0,
    latencyMs: 0,
    listLagMs: 0,
    rateSlowAccept: 0,
    listRate429: 0,
    listRate5xx: 0,
    rewriteLinks: false,
  });
  fake.reset();
});

describe('createTwilioSms against the fake Twilio', () => {
  it('sends and gets a Twilio-looking SID that the fake recorded', async () => {
    const { sid } = await sms.send({ to: '+15551230001', body: BODY });
    expect(sid).toMatch(/^SM[0-9a-f]{32}$/);
    const recorded = fake.messages();
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ sid, to: '+15551230001', from, body: BODY, numSegments: 1, encoding: 'GSM-7' });
    expect(fake.countsByRecipient().get('+15551230001')).toBe(1);
    expect(fake.duplicates()).toEqual([]);
  });

  it('returns the Message resource like Twilio (fetched through the real client)', async () => {
    const { sid } = await sms.send({ to: '+15551230002', body: BODY });
    const m = await createTwilioClient(options).messages(sid).fetch();
    expect(m).toMatchObject({ sid, accountSid, to: '+15551230002', from, body: BODY, status: 'queued' });
    expect(m.direction).toBe('outbound-api');
    expect(m.apiVersion).toBe('2010-04-01');
    expect(m.numMedia).toBe('0');
    expect(m.price).toBeNull();
    expect(m.errorCode).toBeNull();
    expect(m.dateCreated).toBeInstanceOf(Date);
    expect(Number.isNaN(m.dateCreated.getTime())).toBe(false);
    expect(m.uri).toBe(`/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`);
  });

  it('answers an unknown SID with 404 / 20404', async () => {
    const err = await failure(
      createTwilioClient(options)
        .messages('SM' + '0'.repeat(32))
        .fetch(),
    );
    expect(err).toBeInstanceOf(twilio.RestException);
    expect(err).toMatchObject({ status: 404, code: 20404 });
  });

  it('a number in a 21211 range throws a RestException classified permanent', async () => {
    const err = await failure(sms.send({ to: '+15550101234', body: BODY }));
    expect(err).toBeInstanceOf(twilio.RestException);
    expect(err).toMatchObject({ status: 400, code: 21211 });
    expect(sms.classify(err)).toEqual({ kind: 'permanent', code: '21211' });
    expect(String((err as Error).message)).not.toContain('+15550101234');
    expect(fake.messages()).toHaveLength(0);
    expect(fake.stats().permanent).toBe(1);
  });

  it('an opted-out number (21610) is permanent too', async () => {
    const err = await failure(sms.send({ to: '+15550209999', body: BODY }));
    expect(err).toMatchObject({ status: 400, code: 21610 });
    expect(sms.classify(err)).toEqual({ kind: 'permanent', code: '21610' });
  });

  it('permanent rules beat random faults', async () => {
    fake.setFaults({ rate429: 1 });
    const err = await failure(sms.send({ to: '+15550101234', body: BODY }));
    expect(sms.classify(err)).toEqual({ kind: 'permanent', code: '21211' });
  });

  it('429 / 20429 is rate_limited and not recorded', async () => {
    fake.setFaults({ rate429: 1 });
    const err = await failure(sms.send({ to: '+15551230003', body: BODY }));
    expect(err).toMatchObject({ status: 429, code: 20429 });
    expect(sms.classify(err)).toEqual({ kind: 'rate_limited', code: '20429' });
    expect(fake.messages()).toHaveLength(0);
    expect(fake.stats().rejected429).toBe(1);
  });

  it('5xx is ambiguous; this fake rejected it before processing, so reconciliation finds nothing', async () => {
    fake.setFaults({ rate5xx: 1 });
    const start = new Date();
    const err = await failure(sms.send({ to: '+15551230004', body: BODY }));
    expect(sms.classify(err).kind).toBe('ambiguous');
    expect(sms.classify(err).code).toMatch(/^http_50[03]$/);
    expect(await sms.listToSince('+15551230004', start)).toEqual([]);
  });

  it('a dropped connection after accept is ambiguous and reconciliation finds the message', async () => {
    fake.setFaults({ rateDropAfterAccept: 1 });
    const to = '+15551230005';
    const start = new Date();
    const err = await failure(sms.send({ to, body: BODY }));
    expect(sms.classify(err)).toEqual({ kind: 'ambiguous', code: 'ECONNRESET' });
    // Nothing customer-specific leaks into the error the pipeline may log or persist.
    expect(JSON.stringify(err)).not.toContain(to);
    expect(String((err as Error).message)).not.toContain(to);
    fake.setFaults({ rateDropAfterAccept: 0 });
    const found = await sms.listToSince(to, start);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ sid: fake.messages()[0].sid, to, body: BODY });
    expect(found[0].dateCreated).toBeInstanceOf(Date);
    expect(fake.stats().dropped).toBe(1);
  });

  it('a timeout after the fake recorded the message is ambiguous (ETIMEDOUT)', async () => {
    fake.setFaults({ latencyMs: 500 });
    const slow = createTwilioSms({ ...options, timeoutMs: 100 });
    const err = await failure(slow.send({ to: '+15551230006', body: BODY }));
    expect(slow.classify(err)).toEqual({ kind: 'ambiguous', code: 'ETIMEDOUT' });
    expect(fake.messages()).toHaveLength(1);
  });

  it('a refused connection is transient: nothing was sent', async () => {
    const closed = createTwilioSms({ ...options, apiUrl: `http://127.0.0.1:${await freePort()}` });
    const err = await failure(closed.send({ to: '+15551230007', body: BODY }));
    expect(closed.classify(err)).toEqual({ kind: 'transient', code: 'ECONNREFUSED' });
  });

  it('a wrong auth token is 401 / 20003, a configuration error', async () => {
    const wrong = createTwilioSms({ ...options, authToken: 'nope' });
    const err = await failure(wrong.send({ to: '+15551230008', body: BODY }));
    expect(err).toBeInstanceOf(twilio.RestException);
    expect(err).toMatchObject({ status: 401, code: 20003 });
    const failure20003 = wrong.classify(err);
    expect(failure20003).toEqual({ kind: 'permanent', code: '20003' });
    expect(isSmsConfigError(failure20003)).toBe(true);
    expect(fake.stats().unauthorized).toBe(1);
  });

  it('lists more than one page through next_page_uri with the real client', async () => {
    const to = '+15551239999';
    const start = new Date();
    const sids = new Set<string>();
    for (let batch = 0; batch < 6; batch++) {
      const sent = await Promise.all(
        Array.from({ length: 20 }, (_, i) => sms.send({ to, body: `${BODY} ${batch * 20 + i}` })),
      );
      for (const s of sent) sids.add(s.sid);
    }
    await sms.send({ to: '+15551238888', body: BODY }); // another recipient must not show up
    const client = createTwilioClient(options);

    const all = await client.messages.list({ to, dateSentAfter: start, pageSize: 50 });
    expect(all).toHaveLength(120);
    expect(new Set(all.map((m) => m.sid))).toEqual(sids);
    expect(fake.stats().listed).toBe(3); // 50 + 50 + 20

    const first = await client.messages.page({ to, pageSize: 50 });
    expect(first.instances).toHaveLength(50);
    expect(first.nextPageUrl).toBeDefined();
    const second = await first.nextPage();
    const third = await second!.nextPage();
    expect(third!.instances).toHaveLength(20);
    expect(third!.nextPageUrl).toBeUndefined();
    // Newest first, no overlap between pages.
    const pageSids = [...first.instances, ...second!.instances, ...third!.instances].map((m) => m.sid);
    expect(new Set(pageSids).size).toBe(120);
    const previous = await third!.previousPage();
    expect(previous!.instances.map((m) => m.sid)).toEqual(second!.instances.map((m) => m.sid));

    // listToSince reads every page: the attempt may be anywhere in the day's list.
    const recent = await sms.listToSince(to, start);
    expect(recent).toHaveLength(120);
    expect(new Set(recent.map((m) => m.sid))).toEqual(sids);
  });

  it('filters by DateSent in the forms twilio-node and curl send', async () => {
    const to = '+15551237777';
    await sms.send({ to, body: BODY });
    const client = createTwilioClient(options);
    const now = new Date();
    // Twilio filters by GMT day only: the time of day twilio-node sends is ignored.
    expect(await client.messages.list({ to, dateSentAfter: new Date(now.getTime() + 5_000) })).toHaveLength(1);
    expect(await client.messages.list({ to, dateSentAfter: new Date(now.getTime() + 86_400_000) })).toHaveLength(0);
    expect(await client.messages.list({ to, dateSentBefore: new Date(now.getTime() - 86_400_000) })).toHaveLength(0);
    expect(await client.messages.list({ to, dateSentAfter: new Date(now.getTime() - 60_000) })).toHaveLength(1);
    const today = now.toISOString().slice(0, 10);
    const auth = 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64');
    const list = async (query: string): Promise<number> => {
      const res = await fetch(`${fake.url}/2010-04-01/Accounts/${accountSid}/Messages.json?${query}`, {
        headers: { authorization: auth },
      });
      return ((await res.json()) as { messages: unknown[] }).messages.length;
    };
    expect(await list(`To=${encodeURIComponent(to)}&DateSent>=${today}`)).toBe(1);
    expect(await list(`To=${encodeURIComponent(to)}&DateSent=${today}`)).toBe(1);
    expect(await list(`To=${encodeURIComponent(to)}&DateSent<=2000-01-01`)).toBe(0);
    expect(await list(`To=${encodeURIComponent(to)}&From=${encodeURIComponent('+19999999999')}`)).toBe(0);
  });

  it('lags like Twilio: a new message is missing from lists until the lag passes, but fetch by SID sees it', async () => {
    fake.setFaults({ listLagMs: 1_500 });
    const to = '+15551233333';
    const { sid } = await sms.send({ to, body: BODY });
    expect(await sms.listToSince(to, new Date())).toEqual([]);
    expect(await sms.fetch(sid)).toMatchObject({ sid, to });
    expect(await sms.fetch('SM' + '0'.repeat(32))).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1_600));
    expect((await sms.listToSince(to, new Date())).map((m) => m.sid)).toEqual([sid]);
  });

  it('can process a create after the client gave up (slow accept): ambiguous, and the message exists', async () => {
    fake.setFaults({ rateSlowAccept: 1, slowAcceptMs: 400 });
    const impatient = createTwilioSms({ ...options, timeoutMs: 100 });
    const to = '+15551232222';
    const err = await failure(impatient.send({ to, body: BODY }));
    expect(impatient.classify(err)).toEqual({ kind: 'ambiguous', code: 'ETIMEDOUT' });
    expect(fake.messages()).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(fake.messages()).toHaveLength(1);
    expect(fake.stats().slowAccepted).toBe(1);
  });

  it('answers list and fetch with 429 / 5xx too, when told to', async () => {
    const { sid } = await sms.send({ to: '+15551231111', body: BODY });
    fake.setFaults({ listRate429: 1 });
    expect(sms.classify(await failure(sms.listToSince('+15551231111', new Date()))).kind).toBe('rate_limited');
    expect(sms.classify(await failure(sms.fetch(sid))).kind).toBe('rate_limited');
    fake.setFaults({ listRate429: 0, listRate5xx: 1 });
    expect(sms.classify(await failure(sms.listToSince('+15551231111', new Date()))).kind).toBe('ambiguous');
    expect(fake.stats().lookupFaults).toBe(3);
  });

  it('rewrites links like link shortening: the reference outside the link survives', async () => {
    fake.setFaults({ rewriteLinks: true });
    const body = 'Carrier: set a new PIN at https://example.com/pin?x=1. Ref 0123456789ABCDEF';
    const { sid } = await sms.send({ to: '+15551230909', body });
    const stored = await sms.fetch(sid);
    expect(stored!.body).not.toContain('https://example.com/pin');
    expect(stored!.body).toMatch(/https:\/\/twil\.io\/s\w+/);
    expect(stored!.body).toContain('Ref 0123456789ABCDEF');
  });

  it('computes num_segments: GSM-7 160 / 153, UCS-2 70 / 67', async () => {
    const client = createTwilioClient(options);
    const segmentsOf = async (body: string): Promise<string> => {
      const { sid } = await sms.send({ to: '+15551236666', body });
      return (await client.messages(sid).fetch()).numSegments;
    };
    expect(await segmentsOf('a'.repeat(160))).toBe('1');
    expect(await segmentsOf('a'.repeat(161))).toBe('2');
    expect(await segmentsOf('a'.repeat(306))).toBe('2');
    expect(await segmentsOf('a'.repeat(307))).toBe('3');
    expect(await segmentsOf('Hi 🙂')).toBe('1');
    expect(await segmentsOf('a'.repeat(68) + '🙂')).toBe('1'); // 70 UTF-16 units
    expect(await segmentsOf('a'.repeat(69) + '🙂')).toBe('2');
  });

  it('validates like Twilio: 21604 / 21602 / 21603', async () => {
    const auth = 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64');
    const post = async (form: string): Promise<{ http: number; code?: number }> => {
      const res = await fetch(`${fake.url}/2010-04-01/Accounts/${accountSid}/Messages.json`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
      });
      return { ...((await res.json()) as { code?: number }), http: res.status };
    };
    expect(await post('From=%2B1500&Body=x')).toMatchObject({ http: 400, code: 21604 });
    expect(await post('To=%2B1500&From=%2B1500')).toMatchObject({ http: 400, code: 21602 });
    expect(await post('To=%2B1500&Body=x')).toMatchObject({ http: 400, code: 21603 });
    const ok = await post('To=%2B1500&Body=x&MessagingServiceSid=MG' + '0'.repeat(32));
    expect(ok).toMatchObject({ http: 201, status: 'queued', from: null });
    expect(fake.messages()[0].messagingServiceSid).toBe('MG' + '0'.repeat(32));
    const other = await fetch(`${fake.url}/2010-04-01/Accounts/AC${'f'.repeat(32)}/Messages.json`, {
      headers: { authorization: auth },
    });
    expect(other.status).toBe(401);
  });

  it('can be steered over HTTP from another process', async () => {
    const control = (path: string, body?: unknown): Promise<Response> =>
      fetch(`${fake.url}/__control/${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
    expect((await control('faults', { rate429: 1 })).status).toBe(200);
    const err = await failure(sms.send({ to: '+15551235555', body: BODY }));
    expect(sms.classify(err).kind).toBe('rate_limited');
    expect((await control('faults', { rate429: 2 })).status).toBe(400);
    await control('faults', { rate429: 0 });
    await sms.send({ to: '+15551235555', body: BODY });
    await sms.send({ to: '+15551235555', body: BODY });
    expect(await (await control('stats')).json()).toMatchObject({ accepted: 2, rejected429: 1 });
    expect(await (await control('duplicates')).json()).toEqual([{ to: '+15551235555', count: 2 }]);
    await control('reset', {});
    expect(fake.messages()).toHaveLength(0);
  });

  it('repeats the same fault sequence for the same seed', async () => {
    const outcomes = async (): Promise<string> => {
      const f = await startFakeTwilio({ accountSid, authToken, seed: 7, faults: { rate429: 0.5 } });
      const s = createTwilioSms({ ...options, apiUrl: f.url });
      let out = '';
      for (let i = 0; i < 20; i++)
        out += await s.send({ to: '+15551234444', body: BODY }).then(
          () => 'o',
          () => 'x',
        );
      await f.stop();
      return out;
    };
    const first = await outcomes();
    expect(first).toMatch(/o/);
    expect(first).toMatch(/x/);
    expect(await outcomes()).toBe(first);
  });
});

describe('countSegments', () => {
  it('counts extension characters as two septets', () => {
    expect(countSegments('a'.repeat(159) + '€')).toEqual({ encoding: 'GSM-7', segments: 2 });
    expect(countSegments('a'.repeat(158) + '€')).toEqual({ encoding: 'GSM-7', segments: 1 });
  });
  it('switches to UCS-2 on one non-GSM character', () => {
    expect(countSegments('a'.repeat(70 - 1) + 'ł')).toEqual({ encoding: 'UCS-2', segments: 1 });
    expect(countSegments('a'.repeat(71 - 1) + 'ł')).toEqual({ encoding: 'UCS-2', segments: 2 });
    expect(countSegments('a'.repeat(133) + 'ł')).toEqual({ encoding: 'UCS-2', segments: 2 });
    expect(countSegments('a'.repeat(134) + 'ł')).toEqual({ encoding: 'UCS-2', segments: 3 });
  });
});
