// The SRQL editor: CodeMirror 6 with SRQL highlighting, completion from the
// field registry, the API's error underlined at its span, history on
// ArrowUp/ArrowDown (single-line queries) and Ctrl/Cmd+Enter to run.

import { useEffect, useRef } from 'react';
import { EditorState, Prec } from '@codemirror/state';
import { EditorView, keymap, placeholder as cmPlaceholder, drawSelection } from '@codemirror/view';
import { defaultKeymap, history as cmHistory, historyKeymap } from '@codemirror/commands';
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap, completionStatus } from '@codemirror/autocomplete';
import { setDiagnostics, type Diagnostic } from '@codemirror/lint';
import { bracketMatching } from '@codemirror/language';
import type { ApiErrorBody, FieldsResponse } from '../api';
import { spanToRange } from '../srql';
import { srqlHighlight, srqlStreamLanguage } from './srqlLanguage';
import { srqlCompletion } from './completion';
import { loadHistory } from './history';

export interface SrqlEditorProps {
  value: string;
  onChange: (v: string) => void;
  onRun: () => void;
  fields: FieldsResponse | null;
  error: ApiErrorBody | null;
  placeholder?: string;
  testId?: string;
}

const theme = EditorView.theme(
  {
    '&': { backgroundColor: 'var(--bg-input)', color: 'var(--fg)', fontSize: '13px', borderRadius: '4px' },
    '&.cm-focused': { outline: '1px solid var(--accent)' },
    '.cm-content': { fontFamily: 'var(--mono)', padding: '6px 0', caretColor: 'var(--fg)' },
    '.cm-line': { padding: '0 8px' },
    '.cm-scroller': { fontFamily: 'var(--mono)', maxHeight: '160px' },
    '.cm-tooltip': { backgroundColor: 'var(--bg-panel)', border: '1px solid var(--border)', color: 'var(--fg)' },
    '.cm-tooltip-autocomplete ul li[aria-selected]': { backgroundColor: 'var(--accent-bg)', color: 'var(--fg)' },
    '.cm-completionDetail': { color: 'var(--fg-dim)', marginLeft: '8px', fontStyle: 'normal' },
    '.cm-completionInfo': { maxWidth: '320px', whiteSpace: 'pre-wrap' },
    '.cm-placeholder': { color: 'var(--fg-dim)' },
    '.cm-lintRange-error': {
      backgroundImage: 'none',
      textDecoration: 'underline wavy var(--danger)',
      textUnderlineOffset: '3px',
      backgroundColor: 'rgba(248, 81, 73, 0.15)',
    },
    '.cm-diagnostic-error': { borderLeft: '3px solid var(--danger)' },
    '.cm-selectionBackground, &.cm-focused .cm-selectionBackground': { backgroundColor: 'var(--sel) !important' },
  },
  { dark: true },
);

export function SrqlEditor(props: SrqlEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const latest = useRef(props);
  latest.current = props;
  const histIndex = useRef(-1);

  useEffect(() => {
    if (!host.current) return undefined;
    const historyStep = (dir: 1 | -1) => (v: EditorView) => {
      if (completionStatus(v.state) !== null) return false;
      if (v.state.doc.lines > 1) return false;
      const h = loadHistory();
      if (h.length === 0) return false;
      const next = Math.max(-1, Math.min(h.length - 1, histIndex.current + dir));
      if (next === histIndex.current) return true;
      histIndex.current = next;
      const text = next < 0 ? '' : h[next];
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: text }, selection: { anchor: text.length } });
      return true;
    };
    const runKeys = Prec.highest(
      keymap.of([
        { key: 'Mod-Enter', run: () => (latest.current.onRun(), true) },
        { key: 'Shift-Enter', run: () => (latest.current.onRun(), true) },
        { key: 'ArrowUp', run: historyStep(1) },
        { key: 'ArrowDown', run: historyStep(-1) },
      ]),
    );
    const state = EditorState.create({
      doc: latest.current.value,
      extensions: [
        runKeys,
        cmHistory(),
        drawSelection(),
        closeBrackets(),
        bracketMatching(),
        srqlStreamLanguage,
        srqlHighlight,
        autocompletion({ override: [srqlCompletion(() => latest.current.fields)], activateOnTyping: true, icons: false }),
        keymap.of([...closeBracketsKeymap, ...completionKeymap, ...historyKeymap, ...defaultKeymap]),
        cmPlaceholder(latest.current.placeholder ?? 'SRQL: host:web-01 kind:process | stats count() by user'),
        EditorView.lineWrapping,
        theme,
        EditorView.contentAttributes.of({ 'aria-label': 'SRQL query', spellcheck: 'false', autocapitalize: 'off' }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) {
            const text = u.state.doc.toString();
            if (text !== latest.current.value) latest.current.onChange(text);
            // Any edit invalidates the old error's position.
            if (u.transactions.some((tr) => tr.isUserEvent('input') || tr.isUserEvent('delete'))) histIndex.current = -1;
          }
        }),
      ],
    });
    const v = new EditorView({ state, parent: host.current });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
  }, []);

  // Outside changes (history pick, pivot, zoom) replace the text.
  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const cur = v.state.doc.toString();
    if (cur !== props.value) v.dispatch({ changes: { from: 0, to: cur.length, insert: props.value } });
  }, [props.value]);

  // The API's error, underlined at its byte span.
  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const diags: Diagnostic[] = [];
    const e = props.error;
    if (e?.span) {
      const { from, to } = spanToRange(v.state.doc.toString(), e.span);
      const hint = e.suggestions?.length ? ` Did you mean ${e.suggestions.map((s) => `\`${s}\``).join(', ')}?` : '';
      diags.push({ from, to, severity: 'error', message: e.message + hint, source: e.code });
    }
    v.dispatch(setDiagnostics(v.state, diags));
  }, [props.error]);

  return <div className="srql-editor" data-testid={props.testId ?? 'srql-editor'} ref={host} />;
}
