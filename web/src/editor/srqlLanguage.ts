// SRQL highlighting: a CodeMirror StreamLanguage tokenizer. Fields (`name:`),
// values, quoted strings, regexes `/…/`, AND/OR/NOT, pipes, functions.

import { HighlightStyle, StreamLanguage, syntaxHighlighting, type StringStream } from '@codemirror/language';
import { tags as t } from '@lezer/highlight';

interface State {
  /** The next token is a value (after `field:`). */
  value: boolean;
  /** The next word is a pipe name (after `|`). */
  pipe: boolean;
  /** Inside a pipe stage (after its name). */
  inPipe: boolean;
}

const KEYWORDS = /^(AND|OR|NOT|TO)$/i;
const PIPE_WORDS = /^(by|as)$/i;

function readQuoted(stream: StringStream): void {
  stream.next(); // the opening quote
  let escaped = false;
  let c: string | void;
  while ((c = stream.next()) !== undefined) {
    if (c === '"' && !escaped) return;
    escaped = !escaped && c === '\\';
  }
}

function readRegex(stream: StringStream): boolean {
  // A value is a regex only when the next unescaped `/` closes it (docs/srql.md).
  const rest = stream.string.slice(stream.pos + 1);
  const m = /^(?:[^/\\]|\\.)*\//.exec(rest);
  if (!m) return false;
  stream.pos += 1 + m[0].length;
  return true;
}

export const srqlStreamLanguage = StreamLanguage.define<State>({
  name: 'srql',
  startState: () => ({ value: false, pipe: false, inPipe: false }),
  copyState: (s) => ({ ...s }),
  token(stream, state) {
    if (stream.eatSpace()) {
      state.value = false;
      return null;
    }
    const ch = stream.peek() ?? '';

    if (state.value) {
      state.value = false;
      if (ch === '"') {
        readQuoted(stream);
        return 'string';
      }
      if (ch === '/' && readRegex(stream)) return 'regexp';
      if (ch === '(' || ch === '[') {
        stream.next();
        return 'bracket';
      }
      if (/[<>]/.test(ch)) {
        stream.match(/^[<>]=?/);
        state.value = true;
        return 'compareOperator';
      }
      if (ch === '*' && /[\s)]|$/.test(stream.string.charAt(stream.pos + 1) || ' ')) {
        stream.next();
        return 'special(string)';
      }
      stream.match(/^(?:\\.|[^\s()"|,\]])+/);
      if (/^-?\d+(\.\d+)?$/.test(stream.current())) return 'number';
      return 'string';
    }

    if (ch === '|') {
      stream.next();
      state.pipe = true;
      state.inPipe = false;
      return 'operator';
    }
    if (state.pipe && stream.match(/^[A-Za-z_]+/)) {
      state.pipe = false;
      state.inPipe = true;
      return 'controlKeyword';
    }
    state.pipe = false;

    if (ch === '"') {
      readQuoted(stream);
      return 'string';
    }
    if (ch === '(' || ch === ')' || ch === '[' || ch === ']') {
      stream.next();
      return 'bracket';
    }
    if (ch === ',') {
      stream.next();
      return 'punctuation';
    }
    if (ch === '!' || (ch === '-' && /[A-Za-z_(]/.test(stream.string.charAt(stream.pos + 1)))) {
      stream.next();
      return 'logicOperator';
    }
    // field:  (a name, maybe dotted, directly followed by `:`)
    if (stream.match(/^[A-Za-z_@][\w.@]*(?=:)/)) {
      stream.next(); // the colon
      state.value = true;
      const name = stream.current().slice(0, -1).toLowerCase();
      return /^(in|time|timestamp|timeframe|sort|limit|stats|having|bucket|agg|value_field|series)$/.test(name)
        ? 'macroName'
        : 'propertyName';
    }
    // function(
    if (stream.match(/^[A-Za-z_][\w]*(?=\()/)) return 'function(variableName)';
    if (stream.match(/^-?\d+(\.\d+)?(?![\w.])/)) return 'number';
    if (stream.match(/^[A-Za-z_][\w-]*/)) {
      const w = stream.current();
      if (KEYWORDS.test(w)) return 'keyword';
      if (state.inPipe && PIPE_WORDS.test(w)) return 'keyword';
      return state.inPipe ? 'variableName' : 'content';
    }
    stream.match(/^[^\s|()"[\],]+/) || stream.next();
    return state.inPipe ? 'variableName' : 'content';
  },
  languageData: { closeBrackets: { brackets: ['(', '[', '"'] } },
});

export const srqlHighlight = syntaxHighlighting(
  HighlightStyle.define([
    { tag: t.propertyName, color: 'var(--hl-field)' },
    { tag: t.macroName, color: 'var(--hl-directive)', fontWeight: '600' },
    { tag: t.string, color: 'var(--hl-value)' },
    { tag: t.special(t.string), color: 'var(--hl-op)' },
    { tag: t.number, color: 'var(--hl-number)' },
    { tag: t.regexp, color: 'var(--hl-regex)' },
    { tag: t.keyword, color: 'var(--hl-keyword)', fontWeight: '600' },
    { tag: t.controlKeyword, color: 'var(--hl-pipe)', fontWeight: '600' },
    { tag: [t.operator, t.logicOperator, t.compareOperator], color: 'var(--hl-op)' },
    { tag: t.function(t.variableName), color: 'var(--hl-func)' },
    { tag: t.variableName, color: 'var(--hl-var)' },
    { tag: [t.bracket, t.punctuation], color: 'var(--fg-dim)' },
    { tag: t.content, color: 'var(--hl-text)' },
  ]),
);
