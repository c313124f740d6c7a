import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from '../src/sse';

/** Feeds `chunks` to a parser; returns the messages and the parser. */
function parse(chunks: string[]): { messages: SseMessage[]; parser: SseParser } {
  const messages: SseMessage[] = [];
  const parser = new SseParser((m) => messages.push(m));
  for (const c of chunks) parser.push(c);
  return { messages, parser };
}

const msg = (data: string, event = 'message', id: string | null = null): SseMessage => ({ event, data, id });

describe('SseParser', () => {
  it.each<[string, string[], SseMessage[]]>([
    ['one message', ['data: hello\n\n'], [msg('hello')]],
    ['no space after the colon', ['data:hello\n\n'], [msg('hello')]],
    ['only the first space is dropped', ['data:  two\n\n'], [msg(' two')]],
    ['multi-line data joined by \\n', ['data: a\ndata: b\n\n'], [msg('a\nb')]],
    ['event and id', ['event: event\nid: 7\ndata: {"x":1}\n\n'], [msg('{"x":1}', 'event', '7')]],
    ['CRLF line endings', ['event: warning\r\ndata: w\r\n\r\n'], [msg('w', 'warning')]],
    ['CR line endings', ['data: a\rdata: b\r\r'], [msg('a\nb')]],
    ['comments are ignored', [': keep-alive\n\n', 'data: x\n\n'], [msg('x')]],
    ['no data, no message', ['event: ping\n\n'], []],
    ['not dispatched without the blank line', ['data: pending\n'], []],
    ['a field without a colon', ['data\n\n'], [msg('')]],
    ['unknown fields are ignored', ['foo: bar\ndata: y\n\n'], [msg('y')]],
    ['an id with NUL is ignored', ['id: a\0b\ndata: z\n\n'], [msg('z')]],
    ['two messages in one chunk', ['data: 1\n\ndata: 2\n\n'], [msg('1'), msg('2')]],
    ['event type resets after dispatch', ['event: e\ndata: 1\n\ndata: 2\n\n'], [msg('1', 'e'), msg('2')]],
    ['split inside a field name', ['da', 'ta: split\n', '\n'], [msg('split')]],
    ['split inside a value', ['data: hel', 'lo\n\n'], [msg('hello')]],
    ['split between \\r and \\n', ['data: a\r', '\ndata: b\r\n\r\n'], [msg('a\nb')]],
    ['one character at a time', [...'id: 9\ndata: slow\n\n'], [msg('slow', 'message', '9')]],
    ['a CR at the end of a chunk dispatches at once', ['data: x\r\r'], [msg('x')]],
    ['CR then CRLF across chunks', ['data: a\r', '\r\n'], [msg('a')]],
    ['UTF-8 text', ['data: héllo 😀\n\n'], [msg('héllo 😀')]],
  ])('%s', (_name, chunks, want) => expect(parse(chunks).messages).toEqual(want));

  it('remembers the last event id across messages', () => {
    const { parser } = parse(['id: 1\ndata: a\n\n', 'data: b\n\n', 'id: 3\ndata: c\n\n']);
    expect(parser.lastEventId).toBe('3');
  });

  it('does not take the id of an undispatched message', () => {
    const { parser } = parse(['id: 1\ndata: a\n\n', 'id: 2\n\n']);
    expect(parser.lastEventId).toBe('1');
  });

  it.each<[string, number | null]>([
    ['retry: 5000\n', 5000],
    ['retry: 5s\n', null],
    ['retry: -1\n', null],
  ])('retry %j', (line, want) => expect(parse([line]).parser.retryMs).toBe(want));
});
