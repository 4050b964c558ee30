// A small Markdown renderer that builds DOM nodes (never HTML strings, so nothing in the text can
// become markup): headings, paragraphs, block quotes, lists (nested by indentation), fenced code,
// pipe tables, rules; inline code, bold, italics, links (http(s) only), autolinks and citations
// `[n]` / `[n, m]` (made by the `cite` option).

import { el, externalLink } from "./dom.js";

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

const INLINE = new RegExp(
  [
    /(`+)([\s\S]*?[^`])\1(?!`)/.source, // 1, 2: code
    /\*\*(?=\S)([\s\S]*?\S)\*\*/.source, // 3: bold
    /__(?=\S)([\s\S]*?\S)__/.source, // 4: bold
    /\[([^\]\n]+)\]\(([^()\s]+)\)/.source, // 5, 6: link
    /\[(\d+(?:\s*,\s*\d+)*)\]/.source, // 7: citations
    /<(https?:\/\/[^\s<>]+)>/.source, // 8: autolink
    /(https?:\/\/[^\s<>()[\]]*[^\s<>()[\].,;:!?'"])/.source, // 9: bare URL
    /(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])/.source, // 10: italics
    /(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])/.source, // 11: italics
  ].join("|"),
  "g",
);

const indentOf = (line) => line.match(/^\s*/)[0].length;
const blank = (line) => line.trim() === "";

/** The inline nodes of `text`. */
export function inline(text, options = {}) {
  const nodes = [];
  let at = 0;
  INLINE.lastIndex = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > at) nodes.push(text.slice(at, match.index));
    at = match.index + match[0].length;
    const [, , code, bold, bold2, linkText, linkUrl, cites, auto, bare, em, em2] = match;
    if (code !== undefined) nodes.push(el("code", {}, code.replace(/^ (.*) $/s, "$1")));
    else if (bold !== undefined || bold2 !== undefined) {
      nodes.push(el("strong", {}, inline(bold ?? bold2, options)));
    } else if (linkText !== undefined) {
      nodes.push(externalLink(linkUrl, inline(linkText, options)));
    } else if (cites !== undefined) nodes.push(...citations(cites, match[0], options));
    else if (auto !== undefined || bare !== undefined) nodes.push(externalLink(auto ?? bare));
    else nodes.push(el("em", {}, inline(em ?? em2, options)));
  }
  if (at < text.length) nodes.push(text.slice(at));
  return nodes;
}

function citations(list, raw, { cite }) {
  const made = cite ? list.split(",").map((n) => cite(Number(n.trim()))) : [];
  return made.length > 0 && made.every(Boolean) ? made : [raw];
}

/** The block nodes of `markdown`. */
export function markdown(markdownText, options = {}) {
  const lines = String(markdownText ?? "").replace(/\r\n?/g, "\n").split("\n");
  const nodes = [];
  let i = 0;
  while (i < lines.length) {
    if (blank(lines[i])) {
      i += 1;
      continue;
    }
    const [node, next] = block(lines, i, options);
    nodes.push(node);
    i = next;
  }
  return nodes;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

/** One block starting at line `i`: the node and the index of the line after it. */
function block(lines, i, options) {
  const line = lines[i];
  let match;
  if ((match = line.match(FENCE))) return fence(lines, i, match);
  if ((match = line.match(HEADING))) {
    return [el(`h${match[1].length}`, {}, inline(match[2], options)), i + 1];
  }
  if (RULE.test(line)) return [el("hr"), i + 1];
  if (QUOTE.test(line)) {
    const quoted = [];
    while (i < lines.length && !blank(lines[i]) && QUOTE.test(lines[i])) {
      quoted.push(lines[i].replace(QUOTE, ""));
      i += 1;
    }
    return [el("blockquote", {}, markdown(quoted.join("\n"), options)), i];
  }
  if (ITEM.test(line)) return list(lines, i, options);
  if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
    return table(lines, i, options);
  }
  const text = [];
  while (i < lines.length && !blank(lines[i]) && (text.length === 0 || !startsBlock(lines[i]))) {
    text.push(lines[i].trim());
    i += 1;
  }
  return [el("p", {}, inline(text.join("\n"), options)), i];
}

function fence(lines, i, match) {
  const marker = match[1];
  const close = new RegExp(`^\\s{0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}\\s*$`);
  const code = [];
  i += 1;
  while (i < lines.length && !close.test(lines[i])) {
    code.push(lines[i]);
    i += 1;
  }
  const language = match[2] ? `language-${match[2]}` : null;
  return [el("pre", {}, el("code", { class: language }, code.join("\n"))), i + 1];
}

function list(lines, i, options) {
  const first = lines[i].match(ITEM);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const node = el(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) node.setAttribute("start", parseInt(first[2], 10));
  while (i < lines.length) {
    const match = lines[i].match(ITEM);
    if (!match || match[1].length !== indent || /\d/.test(match[2]) !== ordered) break;
    const offset = match[1].length + match[2].length + 1;
    const item = [match[3]];
    i += 1;
    while (i < lines.length) {
      const line = lines[i];
      if (blank(line)) {
        const next = lines[i + 1];
        if (next !== undefined && !blank(next) && indentOf(next) > indent) {
          item.push("");
          i += 1;
          continue;
        }
        break;
      }
      const nested = line.match(ITEM);
      if (nested && nested[1].length <= indent) break;
      if (!nested && indentOf(line) <= indent && startsBlock(line)) break;
      item.push(line.slice(Math.min(indentOf(line), offset)));
      i += 1;
    }
    const simple = item.length === 1;
    node.appendChild(el("li", {}, simple ? inline(item[0], options) : markdown(item.join("\n"), options)));
    // Items separated by a blank line stay in one list.
    let next = i;
    while (next < lines.length && blank(lines[next])) next += 1;
    const following = lines[next]?.match(ITEM);
    if (next > i && following && following[1].length === indent && /\d/.test(following[2]) === ordered) {
      i = next;
    }
  }
  return [node, i];
}

function cells(line) {
  return line
    .trim()
    .replace(/^\|/, "")
    .replace(/\|$/, "")
    .split("|")
    .map((cell) => cell.trim());
}

function table(lines, i, options) {
  const head = cells(lines[i]);
  const rows = [];
  i += 2;
  while (i < lines.length && !blank(lines[i]) && lines[i].includes("|")) {
    rows.push(cells(lines[i]));
    i += 1;
  }
  return [
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, head.map((cell) => el("th", {}, inline(cell, options))))),
      el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell) => el("td", {}, inline(cell, options)))))),
    ),
    i,
  ];
}
