// AES-256-GCM payload codec: every payload the SDK hands to Temporal (workflow and activity inputs
// and results, heartbeat details, signal and update arguments, query results, failure details,
// and with encodeCommonAttributes failure messages and stack traces) is stored encrypted.
//
// Wire format, as in Temporal's encryption samples for every SDK: the whole original Payload
// (metadata and data) serialized as protobuf, encrypted; the new payload carries
//   metadata.encoding            = "binary/encrypted"
//   metadata["encryption-key-id"] = the id of the key that encrypted it
//   data                         = 12-byte random IV || ciphertext || 16-byte GCM tag
// The key id is also the GCM additional data, so a payload relabelled with another key id fails
// authentication instead of decrypting under the wrong key.
//
// Keys rotate by id: new payloads use the current key; payloads written under older keys decode
// as long as those keys are listed. Pure: no I/O, no logging; errors never contain key material
// or payload contents.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
// Default import: the package is CommonJS, which Node's ESM loader exposes as a default export only.
import proto from '@temporalio/proto';
import { REFUSED_PLAINTEXT } from '../workflows/refuse-plaintext';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

const ProtoPayload = proto.temporal.api.common.v1.Payload;
type ProtoPayloadProps = Parameters<typeof ProtoPayload.encode>[0];
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export interface CodecKey {
  id: string;
  /** 32 bytes. */
  key: Uint8Array;
}

/** A payload the codec cannot decode: unknown key id, tampered or truncated data. */
export class PayloadCodecError extends Error {
  override readonly name = 'PayloadCodecError';
}

export interface AesGcmCodecOptions {
  /** Encrypts new payloads. */
  current: CodecKey;
  /** Decrypt only: keys payloads may still be encrypted with (rotation). */
  previous?: CodecKey[];
  /**
   * Workers: decode a payload that is not encrypted as REFUSED_PLAINTEXT (workflows/refuse-plaintext.ts),
   * so a signal or update sent in plain text is refused. Off for clients and the codec server,
   * which must still show what is there.
   */
  refusePlaintext?: boolean;
}

const REFUSED_PAYLOAD: Payload = {
  metadata: { encoding: new TextEncoder().encode('json/plain') },
  data: new TextEncoder().encode(JSON.stringify(REFUSED_PLAINTEXT)),
};

function checkKey(k: CodecKey): void {
  if (!KEY_ID.test(k.id)) throw new PayloadCodecError('codec key id must be 1-64 characters of A-Z a-z 0-9 . _ -');
  if (!(k.key instanceof Uint8Array) || k.key.length !== KEY_BYTES) {
    throw new PayloadCodecError(`codec key "${k.id}" must be exactly ${KEY_BYTES} bytes (AES-256)`);
  }
}

export class AesGcmCodec implements PayloadCodec {
  readonly keyId: string;
  private readonly current: Buffer;
  private readonly keys = new Map<string, Buffer>();
  private readonly refusePlaintext: boolean;

  constructor(opts: AesGcmCodecOptions) {
    for (const k of [opts.current, ...(opts.previous ?? [])]) {
      checkKey(k);
      const existing = this.keys.get(k.id);
      if (existing && !existing.equals(Buffer.from(k.key)))
        throw new PayloadCodecError(`codec key id "${k.id}" is given twice with different keys`);
      this.keys.set(k.id, Buffer.from(k.key));
    }
    this.keyId = opts.current.id;
    this.current = this.keys.get(this.keyId)!;
    this.refusePlaintext = opts.refusePlaintext ?? false;
  }

  /** Key ids this codec can decode. */
  knownKeyIds(): string[] {
    return [...this.keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => (isEncrypted(p) ? this.decrypt(p) : this.refusePlaintext ? REFUSED_PAYLOAD : p));
  }

  encrypt(payload: Payload): Payload {
    const plain = ProtoPayload.encode(payload as ProtoPayloadProps).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(utf8.encode(this.keyId));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      metadata: { encoding: utf8.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8.encode(this.keyId) },
      data: Buffer.concat([iv, body, cipher.getAuthTag()]),
    };
  }

  decrypt(payload: Payload): Payload {
    const idBytes = payload.metadata?.[KEY_ID_METADATA];
    if (!idBytes) throw new PayloadCodecError('encrypted payload has no encryption-key-id');
    const keyId = fromUtf8.decode(idBytes);
    const key = this.keys.get(keyId);
    if (!key) {
      // Ids are labels, not secrets: naming the missing one is what an operator needs.
      throw new PayloadCodecError(
        `unknown encryption key id "${KEY_ID.test(keyId) ? keyId : '(malformed)'}": add it to PAYLOAD_CODEC_OLD_KEYS`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadCodecError('encrypted payload is truncated');
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(idBytes);
    decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(buf.subarray(IV_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadCodecError(
        `encrypted payload failed authentication under key "${keyId}" (tampered, or not written with this key)`,
      );
    }
    const decoded = ProtoPayload.decode(plain);
    return { metadata: { ...decoded.metadata }, data: decoded.data };
  }
}

export function isEncrypted(p: Payload): boolean {
  const enc = p.metadata?.encoding;
  return enc !== undefined && fromUtf8.decode(enc) === ENCRYPTED_ENCODING;
}

/** Strict standard base64 (padding optional) to bytes; undefined when it is not base64. */
export function decodeBase64(text: string): Buffer | undefined {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 === 1) return undefined;
  return Buffer.from(t, 'base64');
}

/**
 * Keys from the environment:
 *   PAYLOAD_CODEC_KEY      base64 of 32 random bytes (e.g. `openssl rand -base64 32`)
 *   PAYLOAD_CODEC_KEY_ID   its id, e.g. "2025-11"
 *   PAYLOAD_CODEC_OLD_KEYS optional "id:base64,id:base64" still accepted for decoding
 * Undefined when none is set; throws (naming the variable, never the value) on a partial or bad setup:
 * a typo must not silently turn encryption off.
 */
export function codecOptionsFromEnv(env: Record<string, string | undefined>): AesGcmCodecOptions | undefined {
  const key = env.PAYLOAD_CODEC_KEY?.trim();
  const id = env.PAYLOAD_CODEC_KEY_ID?.trim();
  const old = env.PAYLOAD_CODEC_OLD_KEYS?.trim();
  if (!key && !id && !old) return undefined;
  const problems: string[] = [];
  if (!key) problems.push('PAYLOAD_CODEC_KEY is missing (base64 of 32 random bytes)');
  if (!id) problems.push('PAYLOAD_CODEC_KEY_ID is missing (a short label such as 2025-11)');
  const keyBytes = key ? decodeBase64(key) : undefined;
  if (key && (!keyBytes || keyBytes.length !== KEY_BYTES))
    problems.push(`PAYLOAD_CODEC_KEY must be base64 of exactly ${KEY_BYTES} bytes`);
  if (id && !KEY_ID.test(id)) problems.push('PAYLOAD_CODEC_KEY_ID must be 1-64 characters of A-Z a-z 0-9 . _ -');
  const previous: CodecKey[] = [];
  if (old) {
    old
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .forEach((entry, i) => {
        const colon = entry.indexOf(':');
        const oid = colon > 0 ? entry.slice(0, colon) : '';
        const bytes = colon > 0 ? decodeBase64(entry.slice(colon + 1)) : undefined;
        if (!KEY_ID.test(oid) || !bytes || bytes.length !== KEY_BYTES) {
          problems.push(`PAYLOAD_CODEC_OLD_KEYS entry ${i + 1} must be id:base64-of-32-bytes`);
        } else previous.push({ id: oid, key: bytes });
      });
  }
  if (problems.length)
    throw new PayloadCodecError(`invalid payload codec configuration:\n  - ${problems.join('\n  - ')}`);
  return { current: { id: id!, key: keyBytes! }, previous };
}
