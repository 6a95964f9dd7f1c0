import { errorMessage } from '../../core/errors.js';
import { NotifySendError, type Channel, type SendFailureKind } from '../channel.js';

/** An SMTP relay as a channel. */
export interface SmtpChannelConfig {
  host: string;
  port: number;
  /** Implicit TLS from the first byte (usually port 465). */
  secure?: boolean;
  /** Require STARTTLS (nodemailer's requireTLS): refuse to go on in clear text. */
  starttls?: boolean;
  username?: string;
  /** Resolved by the caller from a file or the environment; never logged. */
  password?: string;
  from: string;
  to: string[];
  /** Check the server's certificate (default true); false only for a relay with a self-signed certificate. */
  rejectUnauthorized?: boolean;
}

// nodemailer's error codes, grouped by what the operator has to look at
const KINDS: Record<string, SendFailureKind> = {
  EAUTH: 'auth',
  ENOAUTH: 'auth',
  EENVELOPE: 'rejected',
  EMESSAGE: 'rejected',
  ECONNECTION: 'network',
  ESOCKET: 'network',
  ETIMEDOUT: 'network',
  EDNS: 'network',
  ETLS: 'network',
  EPROTOCOL: 'network',
  EABORT: 'timeout',
};

const loadNodemailer = () => import('nodemailer');

/**
 * Sends plain-text mail through nodemailer, one connection per message: notifications are
 * rare, and a pooled connection would sit idle and break between them. The module is loaded on
 * the first send.
 */
export function createSmtpChannel(name: string, config: SmtpChannelConfig): Channel {
  return {
    name,
    kind: 'smtp',
    async send(message, _event, signal) {
      const { createTransport } = await loadNodemailer();
      const transport = createTransport({
        host: config.host,
        port: config.port,
        secure: config.secure ?? false,
        requireTLS: config.starttls ?? false,
        ...(config.username !== undefined ? { auth: { user: config.username, pass: config.password ?? '' } } : {}),
        tls: { rejectUnauthorized: config.rejectUnauthorized ?? true },
        // the notifier's deadline aborts the send; these only bound a silent server
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 30_000,
        // the message is our own text: never let an option read files or URLs
        disableFileAccess: true,
        disableUrlAccess: true,
        logger: false,
        debug: false,
      });
      try {
        await transport.sendMail({ from: config.from, to: config.to, subject: message.subject, text: message.text, signal });
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const e = err as { code?: string; responseCode?: number };
        const kind = (e.code && KINDS[e.code]) || 'other';
        const code = [e.code, e.responseCode].filter((x) => x !== undefined).join(' ');
        // nodemailer's messages quote the server's answer, never the credentials
        throw new NotifySendError(kind, `SMTP ${config.host}:${config.port}: ${code ? `${code}: ` : ''}${errorMessage(err)}`, {
          cause: err,
          data: { host: config.host, port: config.port, code: e.code, responseCode: e.responseCode },
        });
      } finally {
        transport.close();
      }
    },
  };
}
