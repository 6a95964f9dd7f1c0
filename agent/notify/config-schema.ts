import { EVENT_TYPES } from './events.js';

/*
 * The `notifications` key of the agent configuration. Example (YAML):
 *
 *   notifications:
 *     reminderInterval: 1h          # a repeat of one problem is held back this long, then a reminder
 *     unreachableAfter: 10m         # Docker, Git or the backup store down this long -> dependency-unreachable
 *     timeout: 10s                  # deadline of one send
 *     channels:
 *       ops-mail:
 *         events: [update-failed, revert-refused, backup-failed, dependency-unreachable]
 *         ses: { region: eu-west-1, from: agent@example.org, to: [ops@example.org] }
 *       relay:
 *         smtp:
 *           host: smtp.example.org
 *           port: 587
 *           starttls: true
 *           username: gitops-agent
 *           passwordFile: /etc/gitops-agent/smtp-password
 *           from: "gitops-agent <agent@example.org>"
 *           to: [ops@example.org]
 *       chat:
 *         events: [update-applied, update-failed, revert-pushed]
 *         webhook: { urlFile: /etc/gitops-agent/slack-hook-url, format: slack }
 *       audit:
 *         webhook: { url: "https://audit.example.org/events", format: json, headersFile: /etc/gitops-agent/audit-headers }
 *
 * Secrets never go in the file itself: passwords, hook URLs (their path is the secret) and
 * header values come from files or environment variables.
 */

const DURATION = { type: 'string', pattern: '^((\\d+(\\.\\d+)?)(ms|s|m|h))+$' };
const ADDRESS = { type: 'string', pattern: '^([^<>\\r\\n]*<[^\\s@<>]+@[^\\s@<>]+>|[^\\s@<>]+@[^\\s@<>]+)$' };
const ADDRESSES = { type: 'array', minItems: 1, items: ADDRESS };
const ENV_NAME = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' };
const HTTP_URL = { type: 'string', pattern: '^https?://' };

/** JSON Schema (draft-07) fragment for `notifications`; self-contained (no $ref), to be placed under any key. */
export const NOTIFICATIONS_SCHEMA: Readonly<Record<string, unknown>> = {
  type: 'object',
  additionalProperties: false,
  required: ['channels'],
  description: 'Where the agent sends notifications (email through SES or SMTP, webhooks) and how often.',
  properties: {
    reminderInterval: { ...DURATION, description: 'A problem that keeps happening (same event key) is sent again at most this often, as a reminder with the count of repeats. Default 1h.' },
    unreachableAfter: { ...DURATION, description: 'Docker, Git or the backup store unreachable this long -> dependency-unreachable. Default 10m.' },
    timeout: { ...DURATION, description: 'Deadline of one send on one channel. Default 10s.' },
    channels: {
      type: 'object',
      propertyNames: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        description: 'One channel: exactly one of ses, smtp, webhook.',
        properties: {
          events: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: { type: 'string', enum: [...EVENT_TYPES] },
            description: 'Event types sent to this channel (default: all).',
          },
          ses: {
            type: 'object',
            additionalProperties: false,
            required: ['region', 'from', 'to'],
            description: 'Amazon SES (API v2); credentials from the standard AWS chain.',
            properties: {
              region: { type: 'string', pattern: '^[a-z]{2}(-[a-z]+)+-\\d+$' },
              from: ADDRESS,
              to: ADDRESSES,
              endpoint: HTTP_URL,
            },
          },
          smtp: {
            type: 'object',
            additionalProperties: false,
            required: ['host', 'from', 'to'],
            description: 'An SMTP relay. Default port 465 with secure, else 587. STARTTLS is required by default when a username is set.',
            properties: {
              host: { type: 'string', minLength: 1 },
              port: { type: 'integer', minimum: 1, maximum: 65535 },
              secure: { type: 'boolean', description: 'Implicit TLS (port 465).' },
              starttls: { type: 'boolean', description: 'Require STARTTLS.' },
              username: { type: 'string', minLength: 1 },
              passwordFile: { type: 'string', minLength: 1 },
              passwordEnv: ENV_NAME,
              from: ADDRESS,
              to: ADDRESSES,
              rejectUnauthorized: { type: 'boolean', description: 'Check the server certificate (default true).' },
            },
            not: { required: ['passwordFile', 'passwordEnv'] },
            dependencies: { passwordFile: ['username'], passwordEnv: ['username'] },
          },
          webhook: {
            type: 'object',
            additionalProperties: false,
            description: 'POST JSON. format json: the event; slack: a Slack-compatible message (Mattermost, Rocket.Chat too). Exactly one of url, urlFile, urlEnv.',
            properties: {
              url: HTTP_URL,
              urlFile: { type: 'string', minLength: 1 },
              urlEnv: ENV_NAME,
              format: { type: 'string', enum: ['json', 'slack'] },
              headers: { type: 'object', additionalProperties: { type: 'string' } },
              headersFile: { type: 'string', minLength: 1, description: 'A file of "Name: value" lines (secret headers such as Authorization).' },
            },
            oneOf: [{ required: ['url'] }, { required: ['urlFile'] }, { required: ['urlEnv'] }],
          },
        },
        oneOf: [{ required: ['ses'] }, { required: ['smtp'] }, { required: ['webhook'] }],
      },
    },
  },
};
