// With payload encryption on, a signal or update whose input arrived in plain text (sent by a
// client without the codec: `temporal workflow signal`, a Web UI without the codec server) is
// refused, not acted on: operators steer runs only through the codec. The worker's codec turns
// every unencrypted payload it decodes into REFUSED_PLAINTEXT (codec/aes-gcm.ts, refusePlaintext);
// this interceptor, bundled with the workflow (workers/create-worker.ts), drops such signals and
// rejects such updates with a message that says why.
import { ApplicationFailure, log, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** The value the worker's codec puts in place of a payload that was not encrypted. */
export const REFUSED_PLAINTEXT = { pinresetRefusedPlaintext: true } as const;

export function isRefusedPlaintext(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>).pinresetRefusedPlaintext === true;
}

const refusal = (kind: string, name: string) =>
  `${kind} ${name} refused: its input is not encrypted while payload encryption is on; send it with the codec (the pinreset CLI with PAYLOAD_CODEC_KEY, or the Web UI through the codec server)`;

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      async handleSignal(input, next) {
        if (input.args.some(isRefusedPlaintext)) {
          log.warn(refusal('signal', input.signalName));
          return;
        }
        return next(input);
      },
      validateUpdate(input, next) {
        if (input.args.some(isRefusedPlaintext)) throw new Error(refusal('update', input.name));
        return next(input);
      },
      async handleUpdate(input, next) {
        if (input.args.some(isRefusedPlaintext))
          throw ApplicationFailure.nonRetryable(refusal('update', input.name), 'PlaintextRefused');
        return next(input);
      },
    },
  ],
});
