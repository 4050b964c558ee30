//! Removal of `<think>…</think>` blocks, also when a tag is split across streamed chunks.

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Streaming filter: feed chunks in order, get the visible text back.
#[derive(Debug, Default)]
pub(crate) struct ThinkFilter {
    inside: bool,
    /// Text held back because it may be the start of a tag.
    pending: String,
    /// Whitespace after a leading block is dropped until visible text follows.
    trim_start: bool,
    /// Whether any visible text was produced.
    emitted: bool,
}

impl ThinkFilter {
    /// The visible part of `chunk`.
    pub(crate) fn push(&mut self, chunk: &str) -> String {
        let mut buffer = std::mem::take(&mut self.pending);
        buffer.push_str(chunk);
        let mut visible = String::new();
        let mut rest = buffer.as_str();
        loop {
            let tag = if self.inside { CLOSE } else { OPEN };
            if let Some(at) = rest.find(tag) {
                if !self.inside {
                    self.emit(&mut visible, &rest[..at]);
                }
                rest = &rest[at + tag.len()..];
                self.inside = !self.inside;
                if !self.inside && !self.emitted {
                    self.trim_start = true;
                }
                continue;
            }
            let keep = partial_tag_suffix(rest, tag);
            let (done, held) = rest.split_at(rest.len() - keep);
            if !self.inside {
                self.emit(&mut visible, done);
            }
            self.pending = held.to_owned();
            break;
        }
        visible
    }

    /// What is left at the end of the stream: a held-back partial tag was plain text; an
    /// unclosed block is dropped.
    pub(crate) fn finish(&mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        if self.inside {
            return String::new();
        }
        let mut visible = String::new();
        self.emit(&mut visible, &pending);
        visible
    }

    fn emit(&mut self, visible: &mut String, text: &str) {
        let text = if self.trim_start {
            text.trim_start()
        } else {
            text
        };
        if !text.is_empty() {
            self.trim_start = false;
            self.emitted = true;
            visible.push_str(text);
        }
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `tag`.
fn partial_tag_suffix(text: &str, tag: &str) -> usize {
    (1..tag.len())
        .rev()
        .find(|len| text.ends_with(&tag[..*len]))
        .unwrap_or(0)
}

/// `text` without its `<think>…</think>` blocks.
pub fn strip_think(text: &str) -> String {
    let mut filter = ThinkFilter::default();
    let mut visible = filter.push(text);
    visible.push_str(&filter.finish());
    visible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_text() {
        assert_eq!(strip_think("<think>hmm</think>\n\nAnswer."), "Answer.");
        assert_eq!(strip_think("a<think>x</think>b<think>y</think>c"), "abc");
        assert_eq!(strip_think("no tags <thin"), "no tags <thin");
        assert_eq!(strip_think("2 < 3 and <b>"), "2 < 3 and <b>");
        assert_eq!(strip_think("<think>never closed"), "");
    }

    #[test]
    fn any_chunk_boundary_gives_the_same_text() {
        let text = "<think>plan: a < b</think>\n The answer <is> 42.<think>more</think> Done.";
        let expected = strip_think(text);
        assert_eq!(expected, "The answer <is> 42. Done.");
        let chars: Vec<char> = text.chars().collect();
        for size in 1..=chars.len() {
            let mut filter = ThinkFilter::default();
            let mut out = String::new();
            for piece in chars.chunks(size) {
                out.push_str(&filter.push(&piece.iter().collect::<String>()));
            }
            out.push_str(&filter.finish());
            assert_eq!(out, expected, "chunk size {size}");
        }
    }
}
