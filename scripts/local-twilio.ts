// The project's local Twilio server as a process (docker-compose.yml `local` profile): the Twilio
// Messages API the real twilio client talks to, with nothing leaving the machine. Credentials are
// the local fake ones unless TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN say otherwise.
import { LOCAL_TWILIO } from '../stack';
import { startFakeTwilio } from '../stack/fake-twilio';

const port = Number(process.env.LOCAL_TWILIO_PORT ?? 8089);
const twilio = await startFakeTwilio({
  port,
  host: process.env.LOCAL_TWILIO_HOST ?? '0.0.0.0',
  accountSid: process.env.TWILIO_ACCOUNT_SID || LOCAL_TWILIO.accountSid,
  authToken: process.env.TWILIO_AUTH_TOKEN || LOCAL_TWILIO.authToken,
});
console.log(`local Twilio API listening on ${twilio.url}`);
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void twilio.stop().finally(() => process.exit(0)));
