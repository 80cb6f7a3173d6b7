// The data converter shared by workers and clients. Plain JSON unless payload encryption is
// configured: then every payload goes through the AES-256-GCM codec (codec/aes-gcm.ts) and failure
// messages and stack traces are encoded too, so they get encrypted as well.
//
//   PAYLOAD_CODEC_KEY       base64 of 32 random bytes
//   PAYLOAD_CODEC_KEY_ID    its id (stored in each payload's metadata as encryption-key-id)
//   PAYLOAD_CODEC_OLD_KEYS  optional "id:base64,..." still decoded (key rotation)
//
// Workers, every client (CLI, scripts, tests) and the codec server (scripts/codec-server.ts)
// must be given the same keys. A prebuilt workflow bundle must be built with
// FAILURE_CONVERTER_PATH as bundleWorkflowCode's failureConverterPath, or failures raised by
// workflow code itself stay in clear (activity failures are encoded by the worker either way).
import { fileURLToPath } from 'node:url';
import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec, codecOptionsFromEnv } from '../codec/aes-gcm';

/** Module exporting `failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true })`. */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('./failure-converter.cjs', import.meta.url));

/** The codec configured by the environment, or undefined when encryption is off. */
export function payloadCodecFromEnv(
  env: Record<string, string | undefined> = process.env,
  o: { refusePlaintext?: boolean } = {},
): AesGcmCodec | undefined {
  const opts = codecOptionsFromEnv(env);
  return opts ? new AesGcmCodec({ ...opts, ...o }) : undefined;
}

/**
 * Workers pass refusePlaintext: signals and updates sent in plain text are then refused
 * (workflows/refuse-plaintext.ts).
 * undefined (SDK defaults) when no codec key is configured; throws on a partial or invalid
 * configuration, which must stop a worker rather than let it write clear-text payloads.
 */
export function dataConverterFromEnv(
  env: Record<string, string | undefined> = process.env,
  o: { refusePlaintext?: boolean } = {},
): DataConverter | undefined {
  const codec = payloadCodecFromEnv(env, o);
  if (!codec) return undefined;
  return { payloadCodecs: [codec], failureConverterPath: FAILURE_CONVERTER_PATH };
}
