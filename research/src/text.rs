//! Small text tools: word tokens, stop words, sentences, timestamps.

use std::collections::HashSet;
use std::sync::OnceLock;

use aiex_indexer::tokenizer::{for_each_code_token, TokenMode};

const STOP_WORDS: &str = "a about above after again against all also am an and any are as at be \
because been before being below between both but by can could did do does doing down during each \
few for from further had has have having he her here hers herself him himself his how i if in into \
is it its itself just let me more most my myself no nor not now of off on once only or other our \
ours ourselves out over own same she should so some such than that the their theirs them themselves \
then there these they this those through to too under until up use used using very was we were what \
when where which while who whom why will with would you your yours yourself yourselves way ways \
get gets make makes making work works need needs want one thing things best good really much many via \
different difference differences differ";

/// Common English words that carry no topic.
pub fn is_stop_word(word: &str) -> bool {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    WORDS
        .get_or_init(|| STOP_WORDS.split_whitespace().collect())
        .contains(word)
}

/// Search tokens of `text` as the index makes them (lowercase; identifiers split into parts),
/// without stop words and without the index's stems (research relates word forms itself, see
/// [`related`]).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_code_token(text, TokenMode::Index, |token| {
        if token.text.len() > 1 && !token.is_stem() && !is_stop_word(&token.text) {
            out.push(token.text);
        }
    });
    out
}

/// Irregular verb forms that questions use and code names by the base form ("how is it
/// written" and `write_batch`): (form, base).
const IRREGULAR_FORMS: &[(&str, &str)] = &[
    ("written", "write"),
    ("wrote", "write"),
    ("built", "build"),
    ("ran", "run"),
    ("made", "make"),
    ("found", "find"),
    ("sent", "send"),
    ("kept", "keep"),
    ("held", "hold"),
    ("chosen", "choose"),
    ("chose", "choose"),
    ("taken", "take"),
    ("took", "take"),
    ("given", "give"),
    ("gave", "give"),
    ("begun", "begin"),
    ("began", "begin"),
    ("done", "do"),
    ("got", "get"),
    ("gotten", "get"),
    ("thrown", "throw"),
    ("known", "know"),
    ("shown", "show"),
    ("drawn", "draw"),
    ("spent", "spend"),
    ("bound", "bind"),
    ("fed", "feed"),
    ("led", "lead"),
    ("left", "leave"),
    ("lost", "lose"),
    ("met", "meet"),
    ("paid", "pay"),
    ("sought", "seek"),
    ("sold", "sell"),
    ("told", "tell"),
    ("thought", "think"),
    ("brought", "bring"),
    ("bought", "buy"),
    ("caught", "catch"),
    ("taught", "teach"),
    ("understood", "understand"),
    ("woken", "wake"),
    ("broken", "break"),
    ("spoken", "speak"),
    ("stolen", "steal"),
    ("frozen", "freeze"),
    ("driven", "drive"),
    ("ridden", "ride"),
    ("hidden", "hide"),
    ("forgotten", "forget"),
];

/// The base form of an irregular verb form (`written` → `write`), else the word itself.
fn base_form(word: &str) -> &str {
    IRREGULAR_FORMS
        .iter()
        .find(|(form, _)| *form == word)
        .map_or(word, |(_, base)| base)
}

/// Whether `term` (of a line of code, a comment, a function's name) stands for one of the
/// `wanted` terms: the same word (or the base form of an irregular one: `write` for `written`),
/// or one the prefix of the other when the shorter has four characters or more (`embed` and
/// `embedded`, `chunk` and `chunks`).
pub fn related(term: &str, wanted: &HashSet<String>) -> bool {
    wanted.contains(term)
        || wanted.iter().any(|wanted| {
            let wanted = base_form(wanted);
            if wanted == term {
                return true;
            }
            let (short, long) = if wanted.len() <= term.len() {
                (wanted, term)
            } else {
                (term, wanted)
            };
            short.len() >= 4 && long.starts_with(short)
        })
}

/// The first sentence of `text` (of three words or more), if any.
pub fn first_sentence(text: &str) -> Option<String> {
    sentences(text)
        .into_iter()
        .find(|sentence| sentence.split_whitespace().count() >= 3)
}

/// Distinct terms of `text`, in first-seen order.
pub fn distinct_terms(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    terms(text)
        .into_iter()
        .filter(|term| seen.insert(term.clone()))
        .collect()
}

/// Lowercase words (letters, digits, `_`, `:`, `-` inside words) with their original spelling.
pub fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '-' || c == '\''))
        .map(|word| word.trim_matches(|c: char| c == ':' || c == '-' || c == '\''))
        .filter(|word| !word.is_empty())
        .collect()
}

/// Sentences of `text` (split after `.`, `!`, `?` followed by whitespace, and at blank lines).
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in text.split("\n\n") {
        let joined = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut start = 0;
        let bytes = joined.as_bytes();
        for (index, byte) in bytes.iter().enumerate() {
            let ends = matches!(byte, b'.' | b'!' | b'?')
                && bytes.get(index + 1).is_none_or(|next| *next == b' ');
            if ends {
                let sentence = joined[start..=index].trim();
                if !sentence.is_empty() {
                    out.push(sentence.to_string());
                }
                start = index + 1;
            }
        }
        let rest = joined[start..].trim();
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    out
}

/// The prose of `text`: fenced code blocks, Markdown heading lines and table rows removed.
pub fn prose(text: &str) -> String {
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
            out.push("");
            continue;
        }
        if in_fence || trimmed.starts_with('#') || trimmed.starts_with('|') {
            out.push("");
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

/// Approximate token count of `text` (about four bytes per token).
pub fn approx_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text[..end].trim_end())
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// RFC 3339 UTC timestamp (`2026-01-02T03:04:05Z`) of `millis` since the epoch.
pub fn rfc3339(millis: u64) -> String {
    let secs = millis / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let day_of_year = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_words_share_a_stem_or_a_base_form() {
        let wanted: HashSet<String> = ["embedded", "written", "chunks", "ran"]
            .iter()
            .map(|word| word.to_string())
            .collect();
        for term in ["embed", "write", "chunk", "chunks", "run"] {
            assert!(related(term, &wanted), "{term}");
        }
        for term in ["wrapper", "emb", "chu", "batch", "wrote"] {
            assert!(!related(term, &wanted), "{term}");
        }
    }

    #[test]
    fn timestamps_and_sentences() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199_000), "2024-02-29T23:59:59Z");
        assert_eq!(
            sentences("One two. Three four!\n\nFive six"),
            vec!["One two.", "Three four!", "Five six"]
        );
        assert!(terms("How does the Mutex work").contains(&"mutex".to_string()));
        assert!(!terms("How does the Mutex work").contains(&"the".to_string()));
        assert_eq!(truncate("héllo", 2), "h…");
    }
}
