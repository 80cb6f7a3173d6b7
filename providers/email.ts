// EmailSender on nodemailer's pooled SMTP transport.
import nodemailer from 'nodemailer';
import type { SendMailOptions, Transporter } from 'nodemailer';
import { classifyEmailError, type EmailErrorFields } from '../domain/email-errors';
import type { ClassifiedFailure, EmailMessage, EmailSender, SentEmail } from '../domain/types';

export interface SmtpEmailOptions {
  /** SMTP_URL, e.g. smtp://127.0.0.1:2525 or smtps://user:pass@host:465. */
  url: string;
  from: string;
  /** Reuse connections (default true). */
  pool?: boolean;
  /** Pool size (default 8). */
  maxConnections?: number;
  /** Messages per pooled connection before it is replaced (nodemailer default 100). */
  maxMessages?: number;
  /**
   * Times the pool silently resends a message whose connection closed mid-send. Default 0:
   * surface it as an ambiguous failure and let the pipeline decide, like autoRetry=false for SMS.
   */
  maxRequeues?: number;
  /** Connect, greeting and socket-inactivity timeout (default 30 s). */
  timeoutMs?: number;
}

/** A failed send, stripped of addresses and server text (which can quote the address). */
export class EmailSendError extends Error {
  override readonly name = 'EmailSendError';
  constructor(
    readonly code: string,
    readonly responseCode?: number,
    readonly command?: string,
    readonly originalCode?: string,
  ) {
    super(`SMTP send failed: ${[code, responseCode, command && `at ${command}`].filter(Boolean).join(' ')}`);
  }
}

function errorFields(error: unknown): EmailErrorFields {
  if (typeof error !== 'object' || error === null) return {};
  const e = error as { responseCode?: unknown; code?: unknown; originalCode?: unknown };
  const f: EmailErrorFields = {};
  if (typeof e.responseCode === 'number') f.responseCode = e.responseCode;
  if (typeof e.code === 'string') f.code = e.code;
  if (typeof e.originalCode === 'string') f.originalCode = e.originalCode;
  return f;
}

function sanitize(error: unknown): EmailSendError {
  if (error instanceof EmailSendError) return error;
  const { responseCode, code, originalCode } = errorFields(error);
  const command = (error as { command?: unknown } | null)?.command;
  return new EmailSendError(
    code ?? 'unknown',
    responseCode,
    typeof command === 'string' ? command : undefined,
    originalCode,
  );
}

export function createSmtpEmail(opts: SmtpEmailOptions): EmailSender {
  const timeout = opts.timeoutMs ?? 30_000;
  const common = {
    url: opts.url,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
  const transporter: Transporter =
    opts.pool === false
      ? nodemailer.createTransport(common)
      : nodemailer.createTransport({
          ...common,
          pool: true,
          maxConnections: opts.maxConnections ?? 8,
          maxMessages: opts.maxMessages ?? 100,
          maxRequeues: opts.maxRequeues ?? 0,
        });

  return {
    async send(message: EmailMessage): Promise<SentEmail> {
      const mail: SendMailOptions = {
        from: message.from ?? opts.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        // Deterministic per run and account: a resend after an ambiguous failure is deduplicated.
        messageId: message.messageId,
        ...(message.html !== undefined ? { html: message.html } : {}),
      };
      try {
        const info = await transporter.sendMail(mail);
        // One recipient per mail, so a partial rejection cannot happen; guard anyway.
        const rejected = (info as { rejected?: unknown[] }).rejected;
        if (Array.isArray(rejected) && rejected.length > 0) {
          const first = (info as { rejectedErrors?: unknown[] }).rejectedErrors?.[0];
          throw first ?? new EmailSendError('EENVELOPE');
        }
        return { messageId: message.messageId };
      } catch (error) {
        throw sanitize(error);
      }
    },

    classify(error: unknown): ClassifiedFailure {
      return classifyEmailError(errorFields(error));
    },

    async close(): Promise<void> {
      transporter.close();
    },
  };
}
