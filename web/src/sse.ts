// Server-Sent Events over fetch(), because EventSource cannot send the
// Authorization header. Parses the stream per the HTML spec (event, data,
// id, retry; blank line dispatches) and reconnects with Last-Event-ID.

import { authHeaders } from './api';

export interface SseMessage {
  event: string;
  data: string;
  id: string | null;
}

export interface SseHandlers {
  onMessage: (m: SseMessage) => void;
  onOpen?: () => void;
  onError?: (message: string, fatal: boolean) => void;
}

/** Splits a text stream into SSE messages; feed it chunks, it calls `emit`. */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | null = null;
  private skipLf = false;
  lastEventId: string | null = null;
  retryMs: number | null = null;

  constructor(private readonly emit: (m: SseMessage) => void) {}

  push(chunk: string): void {
    // The previous chunk ended in "\r": a "\n" starting this one belongs to it.
    if (this.skipLf && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.skipLf = false;
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, nl);
      const sepLen = this.buffer.startsWith('\r\n', nl) ? 2 : 1;
      // A "\r" at the end ends the line now (CR-only streams must not wait
      // for the next chunk); it may be the first half of "\r\n", so a "\n"
      // at the start of the next chunk is skipped.
      if (this.buffer[nl] === '\r' && sepLen === 1 && nl === this.buffer.length - 1) this.skipLf = true;
      this.buffer = this.buffer.slice(nl + sepLen);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        if (this.id !== null) this.lastEventId = this.id;
        this.emit({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      }
      this.event = '';
      this.data = [];
      this.id = null;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}

/** Opens `url` as an SSE stream, reconnecting until the returned function is called. */
export function openSse(url: string, handlers: SseHandlers): () => void {
  const controller = new AbortController();
  let lastEventId: string | null = null;
  let stopped = false;

  const run = async (): Promise<void> => {
    let delay = 1000;
    while (!stopped) {
      try {
        const headers: Record<string, string> = { Accept: 'text/event-stream', ...authHeaders() };
        if (lastEventId) headers['Last-Event-ID'] = lastEventId;
        const res = await fetch(url, { headers, signal: controller.signal, cache: 'no-store' });
        if (!res.ok || !res.body) {
          let message = `HTTP ${res.status}`;
          try {
            const j = (await res.json()) as { error?: { message?: string } };
            message = j.error?.message ?? message;
          } catch {
            /* not JSON */
          }
          // A 4xx will not fix itself by retrying (bad query, no permission).
          const fatal = res.status >= 400 && res.status < 500 && res.status !== 429;
          handlers.onError?.(message, fatal);
          if (fatal) return;
        } else {
          handlers.onOpen?.();
          delay = 1000;
          const parser = new SseParser((m) => {
            if (m.id !== null) lastEventId = m.id;
            handlers.onMessage(m);
          });
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            parser.push(value);
          }
          if (parser.retryMs !== null) delay = parser.retryMs;
          if (!stopped) handlers.onError?.('stream ended; reconnecting', false);
        }
      } catch (e) {
        if (stopped) return;
        handlers.onError?.(`connection lost (${e instanceof Error ? e.message : String(e)}); reconnecting`, false);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  };
  void run();
  return () => {
    stopped = true;
    controller.abort();
  };
}
