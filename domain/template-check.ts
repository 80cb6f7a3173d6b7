import { REFERENCE_EXAMPLE, smsSegments, smsText, type TemplateContext } from './templates';

/** Throws when the configured SMS would not be one GSM-7 segment: a bad template must not reach customers. */
export function assertTemplatesFit(message: TemplateContext): void {
  const seg = smsSegments(smsText(message, REFERENCE_EXAMPLE));
  if (seg.encoding !== 'GSM-7' || seg.segments !== 1) {
    throw new Error(
      `the SMS template is ${seg.units} ${seg.encoding === 'GSM-7' ? 'GSM-7 characters' : 'UCS-2 units'} (${seg.segments} segments): ` +
        'shorten CARRIER_NAME or RESET_URL, or remove characters outside GSM-7, so it fits one segment',
    );
  }
}
