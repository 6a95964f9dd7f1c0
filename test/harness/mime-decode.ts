/**
 * Just enough MIME decoding to read what nodemailer sends as a single text/plain message:
 * unfolded headers, RFC 2047 encoded words (B and Q), quoted-printable or base64 bodies,
 * UTF-8. Not a general parser (no multipart); tests of the mail channels need nothing more.
 */

export interface DecodedMail {
  /** Lower-case header names, first occurrence, decoded. */
  headers: Record<string, string>;
  subject: string;
  /** The text body with `\n` line ends. */
  text: string;
}

function hexBytes(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    const hex = text.slice(i + 1, i + 3);
    if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(ch, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/** "=?UTF-8?Q?caf=C3=A9?= =?UTF-8?B?...?=" -> text; whitespace between two encoded words goes. */
export function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, data: string) =>
      enc.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('utf8') : hexBytes(data.replace(/_/g, ' ')).toString('utf8'),
    );
}

export function decodeMail(raw: string): DecodedMail {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    headers[name] ??= decodeWords(line.slice(i + 1).trim());
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  let text: string;
  if (encoding === 'quoted-printable') text = hexBytes(body.replace(/=\r?\n/g, '')).toString('utf8');
  else if (encoding === 'base64') text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  else text = body;
  return { headers, subject: headers.subject ?? '', text: text.replace(/\r\n/g, '\n') };
}
