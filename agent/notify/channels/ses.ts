import type { SESv2Client, SESv2ClientConfig } from '@aws-sdk/client-sesv2';
import { errorMessage } from '../../core/errors.js';
import { NotifySendError, type Channel, type SendFailureKind } from '../channel.js';

/** Amazon SES (API v2) as a channel. Credentials are not here: the standard AWS chain provides them. */
export interface SesChannelConfig {
  region: string;
  /** A verified identity (address or domain) of the account. */
  from: string;
  to: string[];
  /** Another endpoint (a VPC endpoint, or a local fake in tests). */
  endpoint?: string;
}

/** Test and embedding hooks: extra SDK client settings (e.g. static credentials for a fake endpoint). */
export interface SesChannelOptions {
  clientConfig?: Partial<SESv2ClientConfig>;
}

// SES answers that mean "this message will not be sent as it is": retrying the same one is useless.
const REJECTIONS = new Set(['MessageRejected', 'MailFromDomainNotVerifiedException', 'AccountSuspendedException', 'SendingPausedException', 'BadRequestException', 'NotFoundException']);

function classify(err: unknown): SendFailureKind {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  if (e.name && REJECTIONS.has(e.name)) return 'rejected';
  if (e.name === 'CredentialsProviderError' || e.$metadata?.httpStatusCode === 403 || e.name === 'UnrecognizedClientException') return 'auth';
  if (e.$metadata?.httpStatusCode) return 'http';
  if (e.code && /^E[A-Z]+$/.test(e.code)) return 'network';
  return 'other';
}

const loadSdk = () => import('@aws-sdk/client-sesv2');

/**
 * Sends a Simple (subject + text) message through SESv2 SendEmail. The SDK is loaded on the
 * first send, so an agent without SES channels never pays for it. The SDK's own retries
 * (throttling, 5xx) stay on; the notifier's deadline bounds them.
 */
export function createSesChannel(name: string, config: SesChannelConfig, options: SesChannelOptions = {}): Channel {
  let client: SESv2Client | undefined;
  let sdk: Awaited<ReturnType<typeof loadSdk>> | undefined;
  return {
    name,
    kind: 'ses',
    async send(message, _event, signal) {
      sdk ??= await loadSdk();
      client ??= new sdk.SESv2Client({ region: config.region, ...(config.endpoint ? { endpoint: config.endpoint } : {}), ...options.clientConfig });
      const command = new sdk.SendEmailCommand({
        FromEmailAddress: config.from,
        Destination: { ToAddresses: config.to },
        Content: {
          Simple: {
            Subject: { Data: message.subject, Charset: 'UTF-8' },
            Body: { Text: { Data: message.text, Charset: 'UTF-8' } },
          },
        },
      });
      try {
        await client.send(command, { abortSignal: signal });
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const kind = classify(err);
        const label = (err as { name?: string }).name ?? 'Error';
        // the SDK's messages carry the service's answer, never the credentials
        throw new NotifySendError(kind, `SES ${config.region}: ${label}: ${errorMessage(err)}`, { cause: err, data: { region: config.region } });
      }
    },
    async close() {
      client?.destroy();
      client = undefined;
    },
  };
}
