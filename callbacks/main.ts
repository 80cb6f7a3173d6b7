// `npm run callbacks`: the status-callback receiver as its own process (callbacks/server.ts).
// Needs DATABASE_URL, TWILIO_AUTH_TOKEN and PUBLIC_CALLBACK_URL (the URL Twilio calls, exactly:
// signatures are checked against it); CALLBACKS_PORT (default 8088), CALLBACKS_MAX_BODY_BYTES,
// SENDGRID_WEBHOOK_PUBLIC_KEY (optional: email bounces at <public path's folder>/email-events).
// Stateless: run as many replicas as the traffic needs behind one address.
import { loadConfig } from '../config';
import { createPool } from '../db/pool';
import { JsonLogger } from '../workers/logger';
import { startCallbackServer } from './server';

const logger = new JsonLogger({ base: { service: 'pinreset-callbacks', pid: process.pid } });

async function main(): Promise<void> {
  const config = loadConfig(process.env, ['database', 'callbacks']);
  if (!config.sms.authToken) throw new Error('TWILIO_AUTH_TOKEN is missing (it signs the status callbacks)');
  const db = createPool(config.database.url, config.database.poolSize);
  const server = await startCallbackServer({
    db,
    authToken: config.sms.authToken,
    publicUrl: config.callbacks.publicUrl!,
    port: config.callbacks.port,
    host: config.callbacks.host,
    maxBodyBytes: config.callbacks.maxBodyBytes,
    sendgridPublicKey: config.callbacks.sendgridPublicKey,
  });
  logger.always('callbacks started', {
    port: server.port,
    publicPath: new URL(config.callbacks.publicUrl!).pathname,
    emailWebhook: config.callbacks.sendgridPublicKey ? 'on' : 'off',
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      // Stop taking callbacks; Twilio retries the ones refused meanwhile (the URL asks it to).
      void server
        .close()
        .then(() => db.end())
        .then(() => {
          logger.always('callbacks stopped');
          process.exit(0);
        });
    });
  }
}

main().catch((err) => {
  logger.error('callbacks failed', { error: err });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 200).unref();
});
