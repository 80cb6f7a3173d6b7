// createSmtpEmail (pooled nodemailer) against the local fake SMTP server, over sockets.
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EmailMessage, EmailSender } from '../domain/types';
import { createSmtpEmail, EmailSendError } from '../providers/email';
import { startFakeSmtp, type FakeSmtp } from '../stack/fake-smtp';

const FROM = 'Carrier Security <security@carrier.example>';

let fake: FakeSmtp;
let email: EmailSender;
let n = 0;

function message(to: string, messageId = `run-1.${++n}@pinreset.example`): EmailMessage {
  return { to, subject: 'Your PIN was reset', text: 'Set a new PIN in the app.', messageId };
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  fake = await startFakeSmtp({
    seed: 1,
    controlPort: 0,
    faults: {
      rejectRecipients: [
        { suffix: '@bounce.example', code: 550 },
        { suffix: 'full@mailbox.example', code: 450 },
      ],
    },
  });
  email = createSmtpEmail({ url: fake.url, from: FROM, timeoutMs: 5_000 });
});

afterAll(async () => {
  await email.close();
  await fake.stop();
});

beforeEach(() => {
  fake.setFaults({ rate4xx: 0, rate5xx: 0 });
  fake.reset();
});

describe('createSmtpEmail against the fake SMTP', () => {
  it('delivers and the recorded Message-ID is the one given', async () => {
    const m = { ...message('ana@example.com'), html: '<p>Set a new PIN in the app.</p>' };
    expect(await email.send(m)).toEqual({ messageId: m.messageId });
    const recorded = fake.messages();
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({
      from: 'security@carrier.example',
      to: ['ana@example.com'],
      messageId: m.messageId,
      subject: 'Your PIN was reset',
    });
    expect(recorded[0].receivedAt).toBeInstanceOf(Date);
    expect(fake.countsByMessageId().get(m.messageId)).toBe(1);
  });

  it('a 451 at the end of DATA is transient and not recorded', async () => {
    fake.setFaults({ rate4xx: 1 });
    const err = await failure(email.send(message('bo@example.com')));
    expect(err).toBeInstanceOf(EmailSendError);
    expect(email.classify(err)).toEqual({ kind: 'transient', code: 'smtp_451' });
    expect(fake.messages()).toHaveLength(0);
    expect(fake.stats().rejected4xx).toBe(1);
  });

  it('a 554 at the end of DATA is permanent', async () => {
    fake.setFaults({ rate5xx: 1 });
    const err = await failure(email.send(message('cy@example.com')));
    expect(email.classify(err)).toEqual({ kind: 'permanent', code: 'smtp_554' });
    expect(fake.stats().rejected5xx).toBe(1);
  });

  it('rejects recipients at RCPT TO: 550 permanent, 450 transient, no address in the error', async () => {
    const hard = await failure(email.send(message('dee@bounce.example')));
    expect(email.classify(hard)).toEqual({ kind: 'permanent', code: 'smtp_550' });
    expect(String((hard as Error).message)).not.toContain('bounce.example');
    expect(JSON.stringify(hard)).not.toContain('dee@');
    const soft = await failure(email.send(message('full@mailbox.example')));
    expect(email.classify(soft)).toEqual({ kind: 'transient', code: 'smtp_450' });
    expect(fake.stats().rejectedRecipients).toBe(2);
    expect(fake.messages()).toHaveLength(0);
    // The pool carries on after a rejected envelope.
    await email.send(message('ed@example.com'));
    expect(fake.messages()).toHaveLength(1);
  });

  it('the same Message-ID twice is a raw duplicate, not a duplicate', async () => {
    const m = message('fay@example.com', 'run-1.acct-77@pinreset.example');
    await email.send(m);
    await email.send(m);
    expect(fake.rawDuplicates()).toEqual([{ to: 'fay@example.com', count: 2 }]);
    expect(fake.duplicates()).toEqual([]);
    expect(fake.countsByMessageId().get(m.messageId)).toBe(2);
    expect(fake.countsByRecipient().get('fay@example.com')).toBe(2);
    await email.send(message('fay@example.com', 'run-2.acct-77@pinreset.example'));
    expect(fake.duplicates()).toEqual([{ to: 'fay@example.com', count: 2 }]);
  });

  it('a refused connection is transient', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const closed = createSmtpEmail({ url: `smtp://127.0.0.1:${port}`, from: FROM });
    const err = await failure(closed.send(message('gil@example.com')));
    expect(closed.classify(err)).toEqual({ kind: 'transient', code: 'ECONNREFUSED' });
    await closed.close();
  });

  it('a connection cut mid-conversation is ambiguous', async () => {
    // A server that greets, then drops the connection once the message data starts.
    const server = net.createServer((socket) => {
      socket.write('220 cut.example ESMTP\r\n');
      socket.on('data', (d) => {
        const line = d.toString();
        if (/^EHLO/i.test(line)) socket.write('250-cut.example\r\n250 8BITMIME\r\n');
        else if (/^(MAIL|RCPT)/i.test(line)) socket.write('250 OK\r\n');
        else if (/^DATA/i.test(line)) socket.write('354 go ahead\r\n');
        else socket.destroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const cut = createSmtpEmail({ url: `smtp://127.0.0.1:${(server.address() as net.AddressInfo).port}`, from: FROM });
    const err = await failure(cut.send(message('hal@example.com')));
    expect(cut.classify(err).kind).toBe('ambiguous');
    await cut.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('can be steered over HTTP from another process', async () => {
    const control = fake.controlUrl!;
    const res = await fetch(`${control}/__control/faults`, { method: 'POST', body: JSON.stringify({ rate5xx: 1 }) });
    expect(res.status).toBe(200);
    const err = await failure(email.send(message('ivy@example.com')));
    expect(email.classify(err).kind).toBe('permanent');
    await fetch(`${control}/__control/faults`, { method: 'POST', body: JSON.stringify({ rate5xx: 0 }) });
    await email.send(message('ivy@example.com'));
    expect(await (await fetch(`${control}/__control/stats`)).json()).toMatchObject({ accepted: 1, rejected5xx: 1 });
    expect((await fetch(`${control}/__control/faults`, { method: 'POST', body: '{"rate4xx": -1}' })).status).toBe(400);
    await fetch(`${control}/__control/reset`, { method: 'POST' });
    expect(fake.messages()).toHaveLength(0);
  });

  it('keeps up with a burst through the pool', async () => {
    const sends = Array.from({ length: 200 }, (_, i) => email.send(message(`user${i}@example.com`)));
    await Promise.all(sends);
    expect(fake.messages()).toHaveLength(200);
    expect(fake.duplicates()).toEqual([]);
  });
});
