/**
 * An SMTP server on 127.0.0.1 that keeps every message (npm smtp-server, test-env README
 * section 6). STARTTLS with the given certificate; AUTH PLAIN and LOGIN against `users`, only
 * after STARTTLS (smtp-server refuses AUTH in clear text); a wrong password gets 535, which
 * nodemailer reports as EAUTH.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { decodeMail } from './mime-decode.js';

export interface SinkMessage {
  /** Envelope sender and recipients. */
  mailFrom: string;
  rcptTo: string[];
  /** The authenticated user, if any. */
  user?: string;
  /** The session was under TLS (STARTTLS done) when the message came. */
  secure: boolean;
  headers: Record<string, string>;
  subject: string;
  text: string;
  raw: string;
}

export interface SmtpSinkOptions {
  key: string;
  cert: string;
  /** user name -> password */
  users: Record<string, string>;
}

export interface SmtpSink {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly messages: SinkMessage[];
  /** Failed AUTH attempts (user names). */
  readonly authFailures: string[];
  close(): Promise<void>;
}

export async function startSmtpSink(opts: SmtpSinkOptions): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const authFailures: string[] = [];
  const server = new SMTPServer({
    key: opts.key,
    cert: opts.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    disabledCommands: [],
    onAuth(auth, _session, callback) {
      const user = auth.username ?? '';
      if (Object.hasOwn(opts.users, user) && opts.users[user] === auth.password) return callback(null, { user });
      authFailures.push(user);
      const err = Object.assign(new Error('Authentication failed'), { responseCode: 535 });
      callback(err);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const mail = decodeMail(raw);
        const from = session.envelope.mailFrom;
        messages.push({
          mailFrom: from === false ? '' : from.address,
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          ...(typeof session.user === 'string' ? { user: session.user } : {}),
          secure: session.secure,
          headers: mail.headers,
          subject: mail.subject,
          text: mail.text,
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    messages,
    authFailures,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
