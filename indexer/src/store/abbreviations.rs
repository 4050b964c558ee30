//! Prose words and the abbreviations code spells them with: a description says "the iterator
//! over the characters of the buffer" where the code says `iter`, `chars` and `buf`. Stems do not
//! bridge that gap (`~iter` is not a stem of `iterator`'s), so a keyword-mode query is expanded
//! with the abbreviations of its prose words, each counting [`ABBREVIATION_WEIGHT`] of a word of
//! the query: enough to rank the chunk that holds `iter` above one that does not, too little to
//! outrank a chunk that holds the query's own words.
//!
//! Measured on the three evaluation sets (README, retrieval benchmark): keyword MRR@10 rises on
//! all six corpora at weight 0.3; at weight 1 the documented corpora lose, the abbreviations then
//! counting as much as the words of the documentation. Hybrid search does not expand: its vector
//! side already reads the prose, and with expansion it loses on two of the documented corpora.

/// What a match on an abbreviation counts for, against 1 for a word of the query.
pub const ABBREVIATION_WEIGHT: f32 = 0.3;

/// Prose words (lowercase, as written: plurals and verb forms are entries of their own) and the
/// abbreviations code uses for them; sorted by word.
const ABBREVIATIONS: &[(&str, &[&str])] = &[
    ("address", &["addr"]),
    ("allocate", &["alloc"]),
    ("allocation", &["alloc"]),
    ("argument", &["arg"]),
    ("arguments", &["args"]),
    ("asynchronous", &["async"]),
    ("attribute", &["attr"]),
    ("attributes", &["attrs"]),
    ("boolean", &["bool"]),
    ("buffer", &["buf"]),
    ("buffers", &["buf"]),
    ("calculate", &["calc"]),
    ("callback", &["cb"]),
    ("character", &["char"]),
    ("characters", &["chars"]),
    ("compare", &["cmp"]),
    ("comparison", &["cmp"]),
    ("configuration", &["config", "cfg"]),
    ("context", &["ctx"]),
    ("current", &["cur"]),
    ("decimal", &["dec"]),
    ("descriptor", &["fd"]),
    ("destination", &["dst"]),
    ("dictionary", &["dict"]),
    ("directories", &["dirs"]),
    ("directory", &["dir"]),
    ("document", &["doc"]),
    ("element", &["elem"]),
    ("elements", &["elems"]),
    ("environment", &["env"]),
    ("equal", &["eq"]),
    ("equals", &["eq"]),
    ("error", &["err"]),
    ("errors", &["err"]),
    ("exception", &["exc"]),
    ("execute", &["exec"]),
    ("executes", &["exec"]),
    ("expression", &["expr"]),
    ("format", &["fmt"]),
    ("formatted", &["fmt"]),
    ("formatting", &["fmt"]),
    ("function", &["fn", "func"]),
    ("hexadecimal", &["hex"]),
    ("identifier", &["ident", "id"]),
    ("index", &["idx"]),
    ("indices", &["idx"]),
    ("information", &["info"]),
    ("initial", &["init"]),
    ("initialise", &["init"]),
    ("initialize", &["init"]),
    ("initializes", &["init"]),
    ("instance", &["inst"]),
    ("integer", &["int"]),
    ("integers", &["int"]),
    ("iterate", &["iter"]),
    ("iterates", &["iter"]),
    ("iterating", &["iter"]),
    ("iteration", &["iter"]),
    ("iterator", &["iter"]),
    ("iterators", &["iter"]),
    ("length", &["len"]),
    ("maximum", &["max"]),
    ("message", &["msg"]),
    ("messages", &["msg"]),
    ("millisecond", &["ms"]),
    ("milliseconds", &["ms"]),
    ("minimum", &["min"]),
    ("number", &["num"]),
    ("numbers", &["num"]),
    ("object", &["obj"]),
    ("operation", &["op"]),
    ("operations", &["ops"]),
    ("operator", &["op"]),
    ("parameter", &["param"]),
    ("parameters", &["params"]),
    ("pointer", &["ptr"]),
    ("position", &["pos"]),
    ("previous", &["prev"]),
    ("reference", &["ref"]),
    ("references", &["refs"]),
    ("request", &["req"]),
    ("response", &["resp"]),
    ("sequence", &["seq"]),
    ("source", &["src"]),
    ("specification", &["spec"]),
    ("statement", &["stmt"]),
    ("string", &["str"]),
    ("strings", &["str"]),
    ("synchronous", &["sync"]),
    ("temporary", &["tmp"]),
    ("unsigned", &["u"]),
    ("utility", &["util"]),
    ("value", &["val"]),
    ("values", &["vals"]),
    ("variable", &["var"]),
];

/// The abbreviations of the prose words of `query`, in the order their words come, each once;
/// none that the query holds already (as a word or as a part of an identifier).
///
/// A prose word is a run of ASCII letters between spaces and punctuation, lowercase or
/// capitalised (`Iterator`; `buffer's` is `buffer`). Identifiers and code are asked for as
/// written: `fresh_function`, `parseTomlTable`, `u128` and `Result::Ok` bring nothing.
pub fn abbreviations(query: &str) -> Vec<&'static str> {
    let asked: Vec<String> = query
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|part| !part.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut found: Vec<&'static str> = Vec::new();
    for word in query.split_whitespace().filter_map(prose_word) {
        let Ok(at) = ABBREVIATIONS.binary_search_by_key(&word.as_str(), |(prose, _)| prose) else {
            continue;
        };
        for &abbreviation in ABBREVIATIONS[at].1 {
            if !found.contains(&abbreviation) && !asked.iter().any(|part| part == abbreviation) {
                found.push(abbreviation);
            }
        }
    }
    found
}

/// `token` (a run without whitespace) lowercased when it is a prose word, after the punctuation
/// around it and a possessive are taken off.
fn prose_word(token: &str) -> Option<String> {
    let token = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let word = token.split_once('\'').map_or(token, |(word, _)| word);
    let mut letters = word.chars();
    let prose = letters.next()?.is_ascii_alphabetic() && letters.all(|c| c.is_ascii_lowercase());
    prose.then(|| word.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_lowercase() {
        for pair in ABBREVIATIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (word, abbreviations) in ABBREVIATIONS {
            assert_eq!(*word, word.to_ascii_lowercase());
            assert!(!abbreviations.is_empty());
        }
    }

    #[test]
    fn prose_words_bring_their_abbreviations_once() {
        assert_eq!(
            abbreviations("Return an Iterator over the characters of this buffer's iterators"),
            ["iter", "chars", "buf"]
        );
        assert_eq!(abbreviations("the configuration"), ["config", "cfg"]);
    }

    #[test]
    fn words_without_abbreviations_and_abbreviations_already_asked_bring_nothing() {
        assert!(abbreviations("parse the toml table").is_empty());
        assert!(abbreviations("").is_empty());
        // `len` is in the query already.
        assert!(abbreviations("length len").is_empty());
    }

    #[test]
    fn identifiers_and_code_are_not_prose() {
        assert!(abbreviations("fresh_function").is_empty());
        assert!(abbreviations("the string_length field").is_empty());
        assert!(abbreviations("parseString StringBuffer u128 Result::Ok self.buffer").is_empty());
        // A capitalised word and one in punctuation are prose.
        assert_eq!(
            abbreviations("Iterator (buffer), \"string\"."),
            ["iter", "buf", "str"]
        );
        // ... and an abbreviation that an identifier holds already is not asked again.
        assert!(abbreviations("the buffer of read_buf").is_empty());
    }
}
