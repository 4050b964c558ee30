//! Query enhancement: the language or framework a question is about, added to web queries (local
//! sources know their languages already), and the identifier terms a code search will use.

/// Words that name an ecosystem, mapped to the language web queries should mention.
const ECOSYSTEM_WORDS: &[(&str, &str)] = &[
    ("rust", "Rust"),
    ("cargo", "Rust"),
    ("crate", "Rust"),
    ("tokio", "Rust"),
    ("serde", "Rust"),
    ("axum", "Rust"),
    ("rustc", "Rust"),
    ("python", "Python"),
    ("pip", "Python"),
    ("django", "Python"),
    ("flask", "Python"),
    ("asyncio", "Python"),
    ("numpy", "Python"),
    ("pandas", "Python"),
    ("javascript", "JavaScript"),
    ("node", "JavaScript"),
    ("nodejs", "JavaScript"),
    ("npm", "JavaScript"),
    ("react", "JavaScript"),
    ("typescript", "TypeScript"),
    ("golang", "Go"),
    ("goroutine", "Go"),
    ("java", "Java"),
    ("maven", "Java"),
    ("spring", "Java"),
    ("kotlin", "Kotlin"),
    ("ruby", "Ruby"),
    ("rails", "Ruby"),
    ("elixir", "Elixir"),
    ("phoenix", "Elixir"),
    ("ecto", "Elixir"),
    ("cpp", "C++"),
    ("c++", "C++"),
];

/// Display name of a language name as the indexer spells it.
fn display_language(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "rust" | "rs" => "Rust",
        "python" | "py" => "Python",
        "javascript" | "js" => "JavaScript",
        "typescript" | "ts" | "tsx" => "TypeScript",
        "go" | "golang" => "Go",
        "java" => "Java",
        "c" => "C",
        "cpp" | "c++" => "C++",
        "ruby" | "rb" => "Ruby",
        "elixir" | "ex" => "Elixir",
        _ => return None,
    })
}

/// What enhancement decided, for the sources and for `--explain`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Enhancement {
    /// The language or framework context, if one was found.
    pub context: Option<String>,
    /// Where it came from: `--lang`, `query`, or `collections`.
    pub context_from: Option<&'static str>,
    /// The query web sources send.
    pub web_query: String,
    /// The terms a keyword search of code uses (identifiers split: `parseTable` → `parse`, `table`;
    /// each word with its stem: `~pars`, `~tabl`).
    pub code_terms: Vec<String>,
}

/// Enhances `query`. `explicit` are `--lang` values; `collection_languages` the dominant languages
/// of the collections searched, most frequent first.
pub fn enhance(query: &str, explicit: &[String], collection_languages: &[String]) -> Enhancement {
    let lower = query.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '+'))
        .filter(|word| !word.is_empty())
        .collect();
    let mentioned = ECOSYSTEM_WORDS
        .iter()
        .find(|(word, _)| words.contains(word))
        .map(|(_, language)| *language);
    let (context, context_from) =
        if let Some(language) = explicit.iter().find_map(|l| display_language(l)) {
            (Some(language), Some("--lang"))
        } else if let Some(language) = mentioned {
            (Some(language), Some("query"))
        } else if let Some(language) = collection_languages
            .iter()
            .find_map(|l| display_language(l))
        {
            (Some(language), Some("collections"))
        } else {
            (None, None)
        };
    // A context the query already states is not repeated.
    let web_query = match context {
        Some(language) if !words.contains(&language.to_lowercase().as_str()) => {
            format!("{} {language}", query.trim())
        }
        _ => query.trim().to_string(),
    };
    Enhancement {
        context: context.map(str::to_string),
        context_from,
        web_query,
        code_terms: aiex_indexer::store::keyword::query_terms(query),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_adds_context() {
        let e = enhance(
            "how do I share state between threads",
            &[],
            &["rust".into()],
        );
        assert_eq!(e.context.as_deref(), Some("Rust"));
        assert_eq!(e.context_from, Some("collections"));
        assert_eq!(e.web_query, "how do I share state between threads Rust");

        let e = enhance(
            "tokio spawn_blocking vs block_in_place",
            &[],
            &["python".into()],
        );
        assert_eq!(e.context.as_deref(), Some("Rust"));
        assert_eq!(e.context_from, Some("query"));

        let e = enhance("rust lifetimes explained", &[], &[]);
        assert_eq!(e.web_query, "rust lifetimes explained", "not repeated");

        let e = enhance("list comprehension", &["py".into()], &["rust".into()]);
        assert_eq!(e.context.as_deref(), Some("Python"));
        assert_eq!(e.context_from, Some("--lang"));

        let e = enhance("parseTable helper", &[], &[]);
        assert_eq!(e.context, None);
        assert_eq!(
            e.code_terms,
            ["parse", "~pars", "table", "~tabl", "helper", "~helper"]
        );
    }
}
