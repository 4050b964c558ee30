//! A light scan of the HTML source: start and end tags and text, with comments, doctypes,
//! processing instructions and raw-text element content (scripts, styles, ...) skipped. It locates
//! the parsed elements in the source (html5ever reports no positions), estimates the nesting depth
//! before parsing, and strips the text of pages that are not parsed.

/// Deepest element nesting (estimated from the source) that is parsed.
/// html5ever checks element scopes by walking the stack of open elements, so
/// very deep documents cost time quadratic in their size.
const MAX_NESTING: usize = 512;

/// Elements whose start tags are located in the source. Never implied by the
/// parser (except `p`, by a stray `</p>`), so source tags and parsed elements
/// of one name correspond in order.
#[rustfmt::skip]
pub(super) const TRACKED: &[&str] = &[
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "pre", "li", "dt", "dd", "blockquote", "div",
    "section", "article", "main", "ul", "ol", "dl", "table", "td", "th", "figure", "figcaption",
    "details", "summary", "nav", "aside", "header", "footer", "hr",
];

/// Elements whose content the tokenizer reads as raw text (scripting on, as
/// html5ever parses by default).
#[rustfmt::skip]
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
    "plaintext",
];

/// Elements that hold no content or close implicitly; they do not count
/// towards the nesting estimate.
#[rustfmt::skip]
const NOT_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "frame", "basefont", "bgsound", "p", "li", "dt", "dd", "option",
    "optgroup", "tr", "td", "th", "tbody", "thead", "tfoot", "colgroup", "caption", "rb", "rt",
    "rtc", "rp", "html", "head", "body",
];

/// A token of the source scan.
pub(super) enum Token<'s> {
    /// A start tag beginning at byte `start`.
    Start {
        name: &'s str,
        start: usize,
        self_closing: bool,
    },
    End {
        name: &'s str,
    },
    /// Character data (`src[start..end]`, character references undecoded).
    Text {
        start: usize,
        end: usize,
    },
}

/// A forgiving HTML tokenizer that only finds tags and text: comments,
/// doctypes, processing instructions and raw-text element content (scripts,
/// styles, ...) are skipped. Linear in the source length.
pub(super) struct Scanner<'s> {
    src: &'s str,
    pos: usize,
    /// Raw-text element whose content comes next.
    raw: Option<&'static str>,
}

impl<'s> Scanner<'s> {
    pub(super) fn new(src: &'s str) -> Self {
        Scanner {
            src,
            pos: 0,
            raw: None,
        }
    }

    /// Skips `<!...>` markup starting at `at`.
    fn skip_declaration(&self, at: usize) -> usize {
        let rest = self.src.get(at..).unwrap_or("");
        let end = if rest.starts_with("<!-->") {
            Some(5)
        } else if rest.starts_with("<!--->") {
            Some(6)
        } else if rest.starts_with("<!--") {
            rest.get(4..)
                .and_then(|body| body.find("-->"))
                .map(|i| i + 7)
        } else if rest.starts_with("<![CDATA[") {
            rest.find("]]>").map(|i| i + 3)
        } else {
            rest.find('>').map(|i| i + 1)
        };
        end.map_or(self.src.len(), |end| at + end)
    }

    /// Position of the end tag closing raw-text element `name` at or after
    /// `from` (the end of the source when there is none).
    fn raw_end(&self, from: usize, name: &str) -> usize {
        if name == "plaintext" {
            return self.src.len();
        }
        let bytes = self.src.as_bytes();
        let mut i = from;
        while let Some(lt) = self.src.get(i..).and_then(|rest| rest.find("</")) {
            let at = i + lt;
            let name_end = at + 2 + name.len();
            let matches = self
                .src
                .get(at + 2..name_end)
                .is_some_and(|found| found.eq_ignore_ascii_case(name))
                && bytes.get(name_end).is_none_or(|&b| {
                    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'/' | b'>')
                });
            if matches {
                return at;
            }
            i = at + 2;
        }
        self.src.len()
    }
}

impl<'s> Iterator for Scanner<'s> {
    type Item = Token<'s>;

    fn next(&mut self) -> Option<Token<'s>> {
        let bytes = self.src.as_bytes();
        loop {
            if let Some(name) = self.raw.take() {
                self.pos = self.raw_end(self.pos, name);
            }
            let start = self.pos;
            let first = *bytes.get(start)?;
            if first != b'<' {
                let end = find_byte(bytes, b'<', start + 1).unwrap_or(bytes.len());
                self.pos = end;
                return Some(Token::Text { start, end });
            }
            match bytes.get(start + 1) {
                Some(b'!') => self.pos = self.skip_declaration(start),
                Some(b'?') => {
                    self.pos = find_byte(bytes, b'>', start + 1).map_or(bytes.len(), |i| i + 1);
                }
                Some(b'/') => match bytes.get(start + 2) {
                    Some(b) if b.is_ascii_alphabetic() => {
                        let Some((name, end, _)) = read_tag(self.src, start + 2, |_, _| {}) else {
                            self.pos = bytes.len();
                            return None;
                        };
                        self.pos = end;
                        return Some(Token::End { name });
                    }
                    Some(b'>') => self.pos = start + 3,
                    _ => {
                        self.pos = find_byte(bytes, b'>', start + 2).map_or(bytes.len(), |i| i + 1);
                    }
                },
                Some(b) if b.is_ascii_alphabetic() => {
                    let Some((name, end, self_closing)) = read_tag(self.src, start + 1, |_, _| {})
                    else {
                        self.pos = bytes.len();
                        return None;
                    };
                    self.pos = end;
                    self.raw = RAW_TEXT
                        .iter()
                        .find(|raw| raw.eq_ignore_ascii_case(name))
                        .copied();
                    return Some(Token::Start {
                        name,
                        start,
                        self_closing,
                    });
                }
                _ => {
                    let end = find_byte(bytes, b'<', start + 1).unwrap_or(bytes.len());
                    self.pos = end;
                    return Some(Token::Text { start, end });
                }
            }
        }
    }
}

/// Reads the tag whose name starts at `at`: returns its name, the offset
/// just past it and whether it ends with `/>`, calling `on_attr` with every
/// attribute's name and raw value. `None` when the source ends inside the tag
/// (the parser drops such a tag).
fn read_tag<'s>(
    src: &'s str,
    at: usize,
    mut on_attr: impl FnMut(&'s str, &'s str),
) -> Option<(&'s str, usize, bool)> {
    let bytes = src.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c);
    let mut i = at;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'/' && bytes[i] != b'>' {
        i += 1;
    }
    let name = src.get(at..i)?;
    loop {
        let mut slash = false;
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            slash = bytes[i] == b'/';
            i += 1;
        }
        match bytes.get(i) {
            None => return None,
            Some(b'>') => return Some((name, i + 1, slash)),
            Some(_) => {}
        }
        // The attribute name (its first character may be `=`).
        let name_start = i;
        i += 1;
        while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let attr_name = src.get(name_start..i)?;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            on_attr(attr_name, "");
            continue;
        }
        i += 1;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&quote @ (b'"' | b'\'')) => {
                let close = find_byte(bytes, quote, i + 1)?;
                let value = src.get(i + 1..close)?;
                i = close + 1;
                value
            }
            Some(_) => {
                let value_start = i;
                while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
                    i += 1;
                }
                src.get(value_start..i)?
            }
            None => return None,
        };
        on_attr(attr_name, value);
    }
}

fn find_byte(bytes: &[u8], needle: u8, from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|i| from + i)
}

pub(super) fn one_of(list: &[&str], name: &str) -> Option<usize> {
    list.iter().position(|item| item.eq_ignore_ascii_case(name))
}

/// Start tags of the [`TRACKED`] elements, per name, in source order.
pub(super) struct SourceScan {
    pub(super) starts: Vec<Vec<usize>>,
}

impl SourceScan {
    /// `None` when the estimated nesting exceeds [`MAX_NESTING`].
    pub(super) fn new(src: &str) -> Option<Self> {
        let mut starts = vec![Vec::new(); TRACKED.len()];
        let mut depth = 0usize;
        for token in Scanner::new(src) {
            match token {
                Token::Start {
                    name,
                    start,
                    self_closing,
                } => {
                    if let Some(index) = one_of(TRACKED, name) {
                        starts[index].push(start);
                    }
                    if !self_closing && one_of(NOT_NESTING, name).is_none() {
                        depth += 1;
                        if depth > MAX_NESTING {
                            return None;
                        }
                    }
                }
                Token::End { name } => {
                    if one_of(NOT_NESTING, name).is_none() {
                        depth = depth.saturating_sub(1);
                    }
                }
                Token::Text { .. } => {}
            }
        }
        Some(SourceScan { starts })
    }
}
