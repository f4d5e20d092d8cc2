// The PSS language for CodeMirror, built from the grammar's own terminals.
// `gen/pss-tokens.json` is written by `make studio` from grammar/pss.lark
// (chalicelib/studio/tokens.py): keywords are the grammar's word literals, and every named
// terminal (DATE, CODE, CONSTNAME, STRING, COMMENT, ...) brings its regular expression, its
// Lark priority and a highlighting tag. The tokenizer picks what Lark's lexer would: the
// longest match, then the higher priority, then a literal over a regular expression.
import { HighlightStyle, StreamLanguage, syntaxHighlighting } from "@codemirror/language";
import { tags } from "@lezer/highlight";
import table from "../gen/pss-tokens.json";

const keywords = new Set(table.keywords);
const punctuation = table.punctuation; // longest first
const terminals = table.terminals.map((t) => ({
  tag: t.tag, priority: t.priority, re: new RegExp(`^(?:${t.pattern})`),
}));
const WORD = /^[A-Za-z_][A-Za-z0-9_]*/;

function better(best, len, priority, literal) {
  if (!best || len > best.len) return true;
  if (len < best.len) return false;
  if (priority !== best.priority) return priority > best.priority;
  return literal && !best.literal;
}

export function nextToken(rest) {
  let best = null;
  const offer = (len, priority, tag, literal) => {
    if (len > 0 && better(best, len, priority, literal)) best = { len, priority, tag, literal };
  };
  for (const t of terminals) {
    const m = t.re.exec(rest);
    if (m) offer(m[0].length, t.priority, t.tag, false);
  }
  const word = WORD.exec(rest);
  if (word && keywords.has(word[0])) offer(word[0].length, 0, "keyword", true);
  const p = punctuation.find((q) => rest.startsWith(q));
  if (p) offer(p.length, 0, "punctuation", true);
  return best;
}

const pssStream = StreamLanguage.define({
  name: "pss",
  token(stream) {
    if (stream.eatSpace()) return null;
    const found = nextToken(stream.string.slice(stream.pos));
    if (!found) { stream.next(); return "invalid"; }
    stream.pos += found.len;
    return found.tag;
  },
  languageData: { commentTokens: { line: "#" } },
});

// Colours at 4.5:1 or more on white.
const style = HighlightStyle.define([
  { tag: tags.keyword, color: "#7a1fa2", fontWeight: "600" },
  { tag: tags.lineComment, color: "#5b6670", fontStyle: "italic" },
  { tag: tags.string, color: "#0b6e36" },
  { tag: [tags.number, tags.literal], color: "#9a3412" },
  { tag: tags.atom, color: "#0550ae" },
  { tag: tags.typeName, color: "#00615f" },
  { tag: tags.bool, color: "#7a1fa2" },
  { tag: tags.compareOperator, color: "#b00020" },
  { tag: tags.invalid, color: "#b3261e", textDecoration: "underline wavy" },
]);

export const grammarDigest = table.grammar_sha256;

export function pss() {
  return [pssStream, syntaxHighlighting(style)];
}
