import type { Config } from '../../config/config.js';
import type { Clock } from '../../lib/clock.js';
import { eventBusSink } from './event-bus.sink.js';
import { hermesSink } from './hermes.sink.js';
import type { AlertSink } from './sink.js';
import { webhookSink } from './webhook.sink.js';

export type SinkConfig = Pick<Config, 'hermesUrl' | 'eventBusUrl' | 'webhooks' | 'providerTimeoutMs'>;

/** Builds one sink per configured destination; an unset URL means no sink, and a repeated webhook URL counts once. */
export function createSinks(config: SinkConfig, clock: Clock): AlertSink[] {
  const sinks: AlertSink[] = [];
  if (config.hermesUrl) sinks.push(hermesSink(config.hermesUrl, config.providerTimeoutMs));
  if (config.eventBusUrl) sinks.push(eventBusSink(config.eventBusUrl, config.providerTimeoutMs));
  for (const webhook of config.webhooks) {
    const sink = webhookSink(webhook, config.providerTimeoutMs, clock);
    if (!sinks.some((existing) => existing.name === sink.name)) sinks.push(sink);
  }
  return sinks;
}

export type { AlertSink, OutgoingAlert } from './sink.js';
export { SinkError } from './sink.js';
export { signWebhookBody, webhookSinkName } from './webhook.sink.js';
